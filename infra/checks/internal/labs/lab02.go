package labs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lab 02: dual write vs outbox. users publishes in mode direct (commit, then publish) with
// the crash point users.direct.before_publish armed: the learner changes ana's address,
// users dies between the commit and the publish, and orders' address copy drifts. Then the
// outbox mode, with the point armed again, loses nothing.

func init() {
	Register(2, Funcs{Start: start02, Verify: verify02, Solve: solve02, Reset: reset02})
}

const lab02Point = "users.direct.before_publish"

// address02 is a shipping address as users and orders' copy hold it.
type address02 struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// usersChaos02 is users' GET /faults/chaos, the part the lab reads.
type usersChaos02 struct {
	CrashPoints map[string]float64 `json:"crashPoints"`
	Fired       map[string]int64   `json:"fired"`
	Patterns    map[string]string  `json:"patterns"`
}

func usersChaos(ctx context.Context, e *Env) (usersChaos02, error) {
	var c usersChaos02
	_, err := e.Owner(ctx, "users", "GET", "/faults/chaos", nil, &c)
	return c, err
}

// waitUsers waits until users answers again (after the crash, the supervisor restarts it).
func waitUsers(ctx context.Context, e *Env) error {
	return Eventually(ctx, 90*time.Second, "users answering again (restarted by the supervisor)", func() (bool, error) {
		_, err := usersChaos(ctx, e)
		return err == nil, nil
	})
}

// usersAddress02 reads ana's address from users (the owner).
func usersAddress02(ctx context.Context, e *Env, userID string) (*address02, error) {
	var u struct {
		Address *address02 `json:"address"`
	}
	_, err := e.Owner(ctx, "users", "GET", "/users/"+url.PathEscape(userID), nil, &u)
	return u.Address, err
}

// copyAddress02 reads orders' copy of the user's address with orders' own credentials.
func copyAddress02(ctx context.Context, e *Env, userID string) (*address02, error) {
	conn, err := PG(ctx, e.Getenv("ORDERS_DATABASE_URL"))
	if err != nil {
		return nil, fmt.Errorf("orders' database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var street, city, postal, country *string
	err = conn.QueryRow(ctx, `SELECT street, city, postal_code, country FROM customers WHERE user_id = $1::uuid`, userID).
		Scan(&street, &city, &postal, &country)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && street == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("orders' copy: %w", err)
	}
	return &address02{Street: *street, City: *city, PostalCode: *postal, Country: *country}, nil
}

func same02(a, b *address02) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func (a *address02) String() string {
	if a == nil {
		return "none"
	}
	return fmt.Sprintf("%s, %s %s, %s", a.Street, a.PostalCode, a.City, a.Country)
}

// inSync02 waits until orders' copy of the user's address equals users'.
func inSync02(ctx context.Context, e *Env, userID string, timeout time.Duration) error {
	return Eventually(ctx, timeout, "orders' address copy equal to users'", func() (bool, error) {
		u, err := usersAddress02(ctx, e, userID)
		if err != nil {
			return false, nil // users may be restarting
		}
		c, err := copyAddress02(ctx, e, userID)
		return err == nil && same02(u, c), err
	})
}

func armPoint02(ctx context.Context, e *Env) error {
	_, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", map[string]any{"crashPoints": map[string]float64{lab02Point: 1}}, nil)
	return err
}

func start02(ctx context.Context, e *Env) error {
	ana, _ := e.User("ana")
	if err := e.SetAddress(ctx, "ana"); err != nil {
		return err
	}
	if err := inSync02(ctx, e, ana.ID, 30*time.Second); err != nil {
		return err
	}
	c, err := usersChaos(ctx, e)
	if err != nil {
		return err
	}
	e.Set("fired", strconv.FormatInt(c.Fired[lab02Point], 10))
	if err := armPoint02(ctx, e); err != nil {
		return err
	}
	e.Logf("ana's address is in orders' copy; users.publish is direct and %s is armed", lab02Point)
	return nil
}

// reset02 puts users back on the outbox and disarms the point before the runner deletes
// ana: a deletion in direct mode with the point armed would lose users.deleted.
func reset02(ctx context.Context, e *Env) error {
	if err := waitUsers(ctx, e); err != nil {
		return err
	}
	_, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", map[string]any{
		"patterns": map[string]string{"users.publish": "outbox"}, "crashPoints": map[string]float64{lab02Point: 0}}, nil)
	return err
}

func verify02(ctx context.Context, e *Env) ([]string, error) {
	ana, ok := e.User("ana")
	if !ok {
		return []string{"lab 02 is not started (./scripts/lab start 2)"}, nil
	}
	c, err := usersChaos(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("users' switches (is users restarting? ./scripts/stack status): %w", err)
	}
	var fails []string
	fired0, _ := strconv.ParseInt(e.Get("fired"), 10, 64)
	if c.Fired[lab02Point] <= fired0 {
		fails = append(fails, fmt.Sprintf("no event lost yet: %s has not fired since start — change ana's address (PUT /api/me/address as ana) while users.publish is direct and the point is armed (GET /api/admin/faults)", lab02Point))
	}
	if mode := c.Patterns["users.publish"]; mode != "outbox" {
		fails = append(fails, fmt.Sprintf("users still publishes in mode %s: switch back with PUT /api/admin/faults {\"patterns\": {\"users.publish\": \"outbox\"}}", mode))
	}
	if c.CrashPoints[lab02Point] == 0 {
		fails = append(fails, fmt.Sprintf("%s is not armed: arm it again in outbox mode ({\"crashPoints\": {\"%s\": 1}}) and change the address once more — see that nothing is lost", lab02Point, lab02Point))
	}
	u, err := usersAddress02(ctx, e, ana.ID)
	if err != nil {
		return nil, err
	}
	cp, err := copyAddress02(ctx, e, ana.ID)
	if err != nil {
		return nil, err
	}
	if !same02(u, cp) {
		fails = append(fails, fmt.Sprintf("orders' copy of ana's address (%s) differs from users' (%s): the drift is not repaired — in outbox mode change the address again, or POST /admin/rebuild-copies on orders (psql \"$ORDERS_DATABASE_URL\": SELECT * FROM customers)", cp, u))
	}
	return fails, nil
}

func solve02(ctx context.Context, e *Env) error {
	ana, _ := e.User("ana")
	// Lose an event. Any users write in direct mode passes the point, so another client's
	// write may take the crash first: then arm again and retry.
	lost := false
	for try := 1; try <= 3 && !lost; try++ {
		c, err := usersChaos(ctx, e)
		if err != nil {
			return err
		}
		before := c.Fired[lab02Point]
		if c.CrashPoints[lab02Point] == 0 {
			if err := armPoint02(ctx, e); err != nil {
				return err
			}
		}
		addr := map[string]string{"street": fmt.Sprintf("Lost Street %d", try), "city": "Dropton", "postalCode": "2000-002", "country": "PT"}
		_, perr := e.UserCall(ctx, "ana", "PUT", "/api/me/address", nil, addr, nil) // users dies answering it
		e.Logf("address change in direct mode: %v", perr)
		if err := Eventually(ctx, 90*time.Second, "the crash point to fire and users to come back", func() (bool, error) {
			c, err := usersChaos(ctx, e)
			return err == nil && c.Fired[lab02Point] > before, nil
		}); err != nil {
			return err
		}
		u, err := usersAddress02(ctx, e, ana.ID)
		if err != nil {
			return err
		}
		cp, err := copyAddress02(ctx, e, ana.ID)
		if err != nil {
			return err
		}
		lost = u != nil && u.Street == addr["street"] && !same02(u, cp)
		e.Logf("users has %s, orders' copy %s: drift %v", u, cp, lost)
	}
	if !lost {
		return errors.New("could not lose ana's event in three tries (another client's writes took the crash point)")
	}
	// Back to the outbox, the point armed again: the same change loses nothing.
	if _, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", map[string]any{
		"patterns": map[string]string{"users.publish": "outbox"}, "crashPoints": map[string]float64{lab02Point: 1}}, nil); err != nil {
		return err
	}
	addr := map[string]string{"street": "Outbox Street 3", "city": "Keepton", "postalCode": "3000-003", "country": "PT"}
	if _, err := e.UserCall(ctx, "ana", "PUT", "/api/me/address", nil, addr, nil); err != nil {
		return err
	}
	return inSync02(ctx, e, ana.ID, 30*time.Second)
}
