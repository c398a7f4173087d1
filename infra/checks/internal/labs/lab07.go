package labs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Lab 07: choreography. Deleting an account is one call to users; every other owner
// cleans up its own store when it hears users.deleted. Verify reads each store with its
// owner's credentials: the users row erased, no session left, orders' address copy gone,
// activity's feed erased with a tombstone.

func init() {
	Register(7, Funcs{Start: start07, Verify: verify07, Solve: solve07})
}

// traces07 is what each store still holds of a user.
type traces07 struct {
	usersLive   bool // email not erased, deleted_at null
	sessions    int  // session hashes in the user's set + session keys still present
	addressCopy bool // orders.customers row
	feedRows    int  // activity.user_feed rows over the user's buckets
	buckets     int
	tombstone   bool // activity.deleted_users row
}

func readTraces07(ctx context.Context, e *Env, userID string, hashes []string) (traces07, error) {
	var t traces07
	users, err := PG(ctx, e.Getenv("USERS_DATABASE_URL"))
	if err != nil {
		return t, fmt.Errorf("users' database: %w", err)
	}
	defer users.Close(ctx)
	if err := users.QueryRow(ctx, `SELECT deleted_at IS NULL OR email IS NOT NULL FROM users WHERE id = $1`, userID).Scan(&t.usersLive); err != nil {
		return t, fmt.Errorf("users.users: %w", err)
	}
	orders, err := PG(ctx, e.Getenv("ORDERS_DATABASE_URL"))
	if err != nil {
		return t, fmt.Errorf("orders' database: %w", err)
	}
	defer orders.Close(ctx)
	if err := orders.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM customers WHERE user_id = $1)`, userID).Scan(&t.addressCopy); err != nil {
		return t, fmt.Errorf("orders.customers: %w", err)
	}
	rdb, err := Redis(ctx, e.Getenv("SESSIONS_REDIS_URL"))
	if err != nil {
		return t, fmt.Errorf("sessions' redis: %w", err)
	}
	defer rdb.Close()
	prefix := getenv("SESSIONS_KEY_PREFIX", "sessions:")
	n, err := rdb.SCard(ctx, prefix+"u:"+userID).Result()
	if err != nil {
		return t, err
	}
	t.sessions = int(n)
	for _, h := range hashes {
		k, err := rdb.Exists(ctx, prefix+"s:"+h).Result()
		if err != nil {
			return t, err
		}
		t.sessions += int(k)
	}
	cs, err := e.ActivityCassandra()
	if err != nil {
		return t, fmt.Errorf("activity's cassandra: %w", err)
	}
	defer cs.Close()
	var buckets []int
	iter := cs.Query(`SELECT bucket FROM user_buckets WHERE user_id = ?`, userID).WithContext(ctx).Iter()
	var b int
	for iter.Scan(&b) {
		buckets = append(buckets, b)
	}
	if err := iter.Close(); err != nil {
		return t, err
	}
	t.buckets = len(buckets)
	// the current month too: a feed row without its bucket entry would hide from paging
	buckets = append(buckets, time.Now().UTC().Year()*100+int(time.Now().UTC().Month()))
	for _, b := range buckets {
		var c int
		if err := cs.Query(`SELECT count(*) FROM user_feed WHERE user_id = ? AND bucket = ?`, userID, b).WithContext(ctx).Scan(&c); err != nil {
			return t, err
		}
		t.feedRows += c
	}
	var id string
	err = cs.Query(`SELECT user_id FROM deleted_users WHERE user_id = ?`, userID).WithContext(ctx).Scan(&id)
	t.tombstone = err == nil
	return t, nil
}

func start07(ctx context.Context, e *Env) error {
	ana, _ := e.User("ana")
	if err := e.SetAddress(ctx, "ana"); err != nil {
		return err
	}
	if _, err := e.GW.Login(ctx, ana.Email, ana.Password); err != nil { // a second session
		return err
	}
	// Note the session hashes now (the set is deleted with them) and wait for the copies.
	var t traces07
	err := Eventually(ctx, 30*time.Second, "ana's copies in orders and activity", func() (bool, error) {
		var err error
		t, err = readTraces07(ctx, e, ana.ID, nil)
		return err == nil && t.addressCopy && t.feedRows > 0 && t.sessions >= 2, err
	})
	if err != nil {
		return err
	}
	rdb, err := Redis(ctx, e.Getenv("SESSIONS_REDIS_URL"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	hashes, err := rdb.SMembers(ctx, getenv("SESSIONS_KEY_PREFIX", "sessions:")+"u:"+ana.ID).Result()
	if err != nil {
		return err
	}
	e.Set("sessionHashes", strings.Join(hashes, ","))
	e.Logf("ana %s: %d sessions, an address copy in orders, %d feed rows in activity", ana.ID, t.sessions, t.feedRows)
	return nil
}

func verify07(ctx context.Context, e *Env) ([]string, error) {
	ana, ok := e.User("ana")
	if !ok {
		return []string{"lab 07 is not started (./scripts/lab start 7)"}, nil
	}
	var hashes []string
	if h := e.Get("sessionHashes"); h != "" {
		hashes = strings.Split(h, ",")
	}
	var t traces07
	// The owners hear users.deleted a moment after the users row is erased.
	err := Eventually(ctx, 10*time.Second, "every owner's clean-up", func() (bool, error) {
		var err error
		t, err = readTraces07(ctx, e, ana.ID, hashes)
		if err == nil && t.usersLive {
			return true, nil // not deleted: nothing to wait for
		}
		return err == nil && t.sessions == 0 && !t.addressCopy && t.feedRows == 0 && t.buckets == 0 && t.tombstone, err
	})
	if err != nil && !strings.Contains(err.Error(), "not within") {
		return nil, err
	}
	var fails []string
	if t.usersLive {
		fails = append(fails, fmt.Sprintf("users still holds ana's account (users database, table users, id %s: email set, deleted_at null) — delete the account (DELETE /api/me as ana, or the shop's account page)", ana.ID))
		return fails, nil // the rest follows from the deletion
	}
	if t.sessions > 0 {
		fails = append(fails, fmt.Sprintf("sessions still holds %d of ana's session keys (Redis sessions:u:%s and sessions:s:<hash>)", t.sessions, ana.ID))
	}
	if t.addressCopy {
		fails = append(fails, fmt.Sprintf("orders still holds ana's address copy (orders database, table customers, user_id %s)", ana.ID))
	}
	if t.feedRows > 0 || t.buckets > 0 {
		fails = append(fails, fmt.Sprintf("activity still holds %d feed rows / %d buckets of ana (Cassandra activity.user_feed, user_buckets)", t.feedRows, t.buckets))
	}
	if !t.tombstone {
		fails = append(fails, "activity has no deletion tombstone for ana (activity.deleted_users): a late event could recreate her feed")
	}
	return fails, nil
}

func solve07(ctx context.Context, e *Env) error {
	if _, ok := e.User("ana"); !ok {
		return errors.New("lab 07 is not started")
	}
	if _, err := e.UserCall(ctx, "ana", "DELETE", "/api/me", nil, nil, nil); err != nil {
		return err
	}
	ana, _ := e.User("ana")
	var hashes []string
	if h := e.Get("sessionHashes"); h != "" {
		hashes = strings.Split(h, ",")
	}
	return Eventually(ctx, 30*time.Second, "every owner's clean-up", func() (bool, error) {
		t, err := readTraces07(ctx, e, ana.ID, hashes)
		return err == nil && t.sessions == 0 && !t.addressCopy && t.feedRows == 0 && t.tombstone, err
	})
}
