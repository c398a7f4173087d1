package labs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
)

// Lab 01: who owns what. The learner finds one customer's data in each store, with each
// service's own credentials, and sees another service's credentials refused; the answers
// go into .polyshop/labs/01/answers.json, which verify checks against the stores.

func init() {
	Register(1, Funcs{Start: start01, Verify: verify01, Solve: solve01, Reset: reset01})
}

// answers01 is the answers file's shape.
type answers01 struct {
	UserID string `json:"userId"`
	Users  struct {
		PostalCode string `json:"postalCode"`
	} `json:"users"`
	Sessions struct {
		SessionCount int64 `json:"sessionCount"`
	} `json:"sessions"`
	Orders struct {
		AddressCopyPostalCode string `json:"addressCopyPostalCode"`
	} `json:"orders"`
	Activity struct {
		Buckets []int `json:"buckets"`
	} `json:"activity"`
	Refused struct {
		Credentials string `json:"credentials"`
		Store       string `json:"store"`
		Error       string `json:"error"`
	} `json:"refused"`
}

const answers01Template = `{
  "userId": "",
  "users":    {"postalCode": ""},
  "sessions": {"sessionCount": 0},
  "orders":   {"addressCopyPostalCode": ""},
  "activity": {"buckets": []},
  "refused":  {"credentials": "", "store": "", "error": ""}
}
`

func start01(ctx context.Context, e *Env) error {
	ana, _ := e.User("ana")
	// Two addresses: users keeps the last; orders' copy follows by events.
	for i, city := range []string{"Lisbon", "Porto"} {
		pc := fmt.Sprintf("%04d-%03d", 1000+rand.IntN(8999), rand.IntN(999))
		addr := map[string]string{"street": fmt.Sprintf("Rua %d", i+1), "city": city, "postalCode": pc, "country": "PT"}
		if _, err := e.UserCall(ctx, "ana", "PUT", "/api/me/address", nil, addr, nil); err != nil {
			return err
		}
	}
	// A few more sessions: only the sessions store knows how many.
	extra := 1 + rand.IntN(3)
	for range extra {
		if _, err := e.GW.Login(ctx, ana.Email, ana.Password); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(e.StateDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(e.Path("answers.json"), []byte(answers01Template), 0o644); err != nil {
		return err
	}
	e.Logf("customer ana: %s (id %s); answers file: %s", ana.Email, ana.ID, e.Path("answers.json"))
	return nil
}

func reset01(ctx context.Context, e *Env) error { return nil } // the runner deletes ana and the state folder

// truth01 is what the stores hold for ana, read with each owner's credentials.
type truth01 struct {
	postalCode, copyPostalCode string
	sessions                   int64
	buckets                    []int
}

func readTruth01(ctx context.Context, e *Env, userID string) (truth01, error) {
	var t truth01
	users, err := PG(ctx, e.Getenv("USERS_DATABASE_URL"))
	if err != nil {
		return t, fmt.Errorf("users' database: %w", err)
	}
	defer users.Close(ctx)
	if err := users.QueryRow(ctx, `SELECT coalesce(postal_code, '') FROM users WHERE id = $1`, userID).Scan(&t.postalCode); err != nil {
		return t, fmt.Errorf("users.users: %w", err)
	}
	orders, err := PG(ctx, e.Getenv("ORDERS_DATABASE_URL"))
	if err != nil {
		return t, fmt.Errorf("orders' database: %w", err)
	}
	defer orders.Close(ctx)
	err = orders.QueryRow(ctx, `SELECT coalesce(postal_code, '') FROM customers WHERE user_id = $1`, userID).Scan(&t.copyPostalCode)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		return t, fmt.Errorf("orders.customers: %w", err)
	}
	rdb, err := Redis(ctx, e.Getenv("SESSIONS_REDIS_URL"))
	if err != nil {
		return t, fmt.Errorf("sessions' redis: %w", err)
	}
	defer rdb.Close()
	if t.sessions, err = rdb.SCard(ctx, getenv("SESSIONS_KEY_PREFIX", "sessions:")+"u:"+userID).Result(); err != nil {
		return t, fmt.Errorf("sessions' redis: %w", err)
	}
	cs, err := e.ActivityCassandra()
	if err != nil {
		return t, fmt.Errorf("activity's cassandra: %w", err)
	}
	defer cs.Close()
	iter := cs.Query(`SELECT bucket FROM user_buckets WHERE user_id = ?`, userID).WithContext(ctx).Iter()
	var b int
	for iter.Scan(&b) {
		t.buckets = append(t.buckets, b)
	}
	if err := iter.Close(); err != nil {
		return t, fmt.Errorf("activity.user_buckets: %w", err)
	}
	slices.Sort(t.buckets)
	return t, nil
}

// refusal01 tries users' credentials on orders' database, which PostgreSQL must refuse.
func refusal01(ctx context.Context, e *Env) (string, error) {
	url := strings.Replace(e.Getenv("USERS_DATABASE_URL"), "/users?", "/orders?", 1)
	c, err := PG(ctx, url)
	if err == nil {
		var n int
		qerr := c.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&n)
		c.Close(ctx)
		if qerr == nil {
			return "", errors.New("users' credentials read orders' customers table: the stores are not isolated")
		}
		return qerr.Error(), nil
	}
	return err.Error(), nil
}

var refusalWords = []string{"permission denied", "authentication failed", "not authorized", "unauthorized", "noperm", "wrongpass", "noauth", "denied", "refused", "bad credentials", "does not have"}

func verify01(ctx context.Context, e *Env) ([]string, error) {
	ana, ok := e.User("ana")
	if !ok {
		return []string{"lab 01 is not started (./scripts/lab start 1)"}, nil
	}
	b, err := os.ReadFile(e.Path("answers.json"))
	if err != nil {
		return []string{fmt.Sprintf("no answers file %s (./scripts/lab start 1 writes a template)", e.Path("answers.json"))}, nil
	}
	var a answers01
	if err := json.Unmarshal(b, &a); err != nil {
		return []string{fmt.Sprintf("%s is not valid JSON: %v", e.Path("answers.json"), err)}, nil
	}
	// The address copy and the feed follow by events: give them a moment.
	var t truth01
	err = Eventually(ctx, 10*time.Second, "ana's copies", func() (bool, error) {
		var err error
		t, err = readTruth01(ctx, e, ana.ID)
		return err == nil && t.copyPostalCode == t.postalCode && len(t.buckets) > 0, err
	})
	if err != nil && t.postalCode == "" {
		return nil, err
	}
	var fails []string
	if a.UserID != ana.ID {
		fails = append(fails, fmt.Sprintf("userId is %q: ana's id is in users' table users (column id, where email = '%s')", a.UserID, ana.Email))
	}
	if a.Users.PostalCode != t.postalCode {
		fails = append(fails, fmt.Sprintf("users.postalCode %q is not ana's postal code in the users database (table users, with USERS_DATABASE_URL)", a.Users.PostalCode))
	}
	if a.Sessions.SessionCount != t.sessions {
		fails = append(fails, fmt.Sprintf("sessions.sessionCount %d is not the number of ana's sessions in Redis (the set sessions:u:<userId>, with SESSIONS_REDIS_URL: SCARD)", a.Sessions.SessionCount))
	}
	if a.Orders.AddressCopyPostalCode != t.copyPostalCode {
		fails = append(fails, fmt.Sprintf("orders.addressCopyPostalCode %q is not the postal code of orders' copy (orders database, table customers, with ORDERS_DATABASE_URL)", a.Orders.AddressCopyPostalCode))
	}
	got := slices.Clone(a.Activity.Buckets)
	slices.Sort(got)
	if len(got) == 0 || !slices.Equal(got, t.buckets) {
		fails = append(fails, fmt.Sprintf("activity.buckets %v are not ana's month buckets in Cassandra (keyspace activity, table user_buckets, with the activity role)", a.Activity.Buckets))
	}
	r := a.Refused
	lower := strings.ToLower(r.Error)
	if r.Credentials == "" || r.Store == "" || !slices.ContainsFunc(refusalWords, func(w string) bool { return strings.Contains(lower, w) }) {
		fails = append(fails, "refused: name whose credentials you used, on which store, and paste the refusal the store answered (e.g. users' PostgreSQL password on the orders database)")
	}
	if _, err := refusal01(ctx, e); err != nil {
		fails = append(fails, err.Error())
	}
	return fails, nil
}

func solve01(ctx context.Context, e *Env) error {
	ana, ok := e.User("ana")
	if !ok {
		return errors.New("lab 01 is not started")
	}
	var t truth01
	err := Eventually(ctx, 15*time.Second, "ana's copies in orders and activity", func() (bool, error) {
		var err error
		t, err = readTruth01(ctx, e, ana.ID)
		return err == nil && t.copyPostalCode == t.postalCode && len(t.buckets) > 0, err
	})
	if err != nil {
		return err
	}
	refusal, err := refusal01(ctx, e)
	if err != nil {
		return err
	}
	var a answers01
	a.UserID = ana.ID
	a.Users.PostalCode = t.postalCode
	a.Sessions.SessionCount = t.sessions
	a.Orders.AddressCopyPostalCode = t.copyPostalCode
	a.Activity.Buckets = t.buckets
	a.Refused.Credentials = "users (USERS_DB_PASSWORD)"
	a.Refused.Store = "postgres database orders"
	a.Refused.Error = refusal
	b, _ := json.MarshalIndent(a, "", "  ")
	e.Logf("refused: %s", refusal)
	return os.WriteFile(e.Path("answers.json"), append(b, '\n'), 0o644)
}
