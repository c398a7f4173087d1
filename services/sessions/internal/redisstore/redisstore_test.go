package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"polyshop/services/sessions/internal/redisstore"
	"polyshop/services/sessions/internal/sessions"
	"polyshop/shared/events"
	"polyshop/shared/testenv/redistest"
)

func newStore(t *testing.T) (*redisstore.Store, *redis.Client, string) {
	t.Helper()
	rdb, prefix := redistest.Client(t, "SESSIONS_REDIS_URL")
	return redisstore.New(rdb, prefix), rdb, prefix
}

func newSession(t *testing.T, userID string) (sessions.Session, string) {
	t.Helper()
	tok, err := sessions.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	return sessions.Session{ID: uuid.NewString(), TokenHash: sessions.HashToken(tok), UserID: userID,
		Role: "customer", ClientAddr: "192.0.2.1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, tok
}

func started(t *testing.T, s sessions.Session) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), events.TypeSessionStarted, s.ID, 1,
		events.SessionStarted{SessionID: s.ID, UserID: s.UserID, StartedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ended(sess sessions.Session) ([]events.Envelope, error) {
	e, err := events.New(context.Background(), events.TypeSessionEnded, sess.ID, 2,
		events.SessionEnded{SessionID: sess.ID, UserID: sess.UserID, Reason: "logout", EndedAt: time.Now()})
	return []events.Envelope{e}, err
}

// outboxTypes returns the event types in the outbox stream, oldest first.
func outboxTypes(t *testing.T, rdb *redis.Client, s *redisstore.Store) []string {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), s.OutboxStream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		e, err := events.Parse([]byte(m.Values["envelope"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Type)
	}
	return out
}

func TestCreateTouchDelete(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t)
	sess, _ := newSession(t, uuid.NewString())
	if err := s.Create(ctx, sess, time.Hour, started(t, sess)); err != nil {
		t.Fatal(err)
	}
	// The key carries the test prefix and a TTL; shorten it, then Touch must slide it back.
	key := prefix + "s:" + sess.TokenHash
	if err := rdb.PExpire(ctx, key, 5*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Touch(ctx, sess.TokenHash, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 59*time.Minute {
		t.Errorf("TTL after Touch = %s, want about 1h", ttl)
	}
	if diff := cmp.Diff(got, sess, cmpExpiry()); diff != "" {
		t.Errorf("Touch (-got +want):\n%s", diff)
	}
	if _, err := s.Touch(ctx, sessions.HashToken("other"), time.Hour); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Touch unknown = %v, want ErrNotFound", err)
	}

	if _, err := s.Delete(ctx, sess.TokenHash, ended); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, sess.TokenHash, ended); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Touch(ctx, sess.TokenHash, time.Hour); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("Touch after Delete = %v, want ErrNotFound", err)
	}
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Errorf("session key still exists")
	}
	if diff := cmp.Diff(outboxTypes(t, rdb, s), []string{events.TypeSessionStarted, events.TypeSessionEnded}); diff != "" {
		t.Errorf("outbox (-got +want):\n%s", diff)
	}
}

// cmpExpiry treats expiry times within a minute of each other as equal: ExpiresAt is
// computed from the TTL at read time.
func cmpExpiry() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".ExpiresAt" },
		cmp.Comparer(func(a, b time.Time) bool { d := a.Sub(b); return d < time.Minute && d > -time.Minute }))
}

func TestConcurrentDeleteEmitsOnce(t *testing.T) {
	ctx := context.Background()
	s, rdb, _ := newStore(t)
	sess, _ := newSession(t, uuid.NewString())
	if err := s.Create(ctx, sess, time.Hour, started(t, sess)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if _, err := s.Delete(ctx, sess.TokenHash, ended); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, sessions.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d deletes succeeded, want 1", ok)
	}
	if got := len(outboxTypes(t, rdb, s)); got != 2 {
		t.Errorf("outbox has %d events, want 2 (started, one ended)", got)
	}
}

func TestListAndDeleteAll(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t)
	user := uuid.NewString()
	var created []sessions.Session
	for i := range 3 {
		sess, _ := newSession(t, user)
		sess.CreatedAt = sess.CreatedAt.Add(time.Duration(i) * time.Second)
		if err := s.Create(ctx, sess, time.Hour, started(t, sess)); err != nil {
			t.Fatal(err)
		}
		created = append(created, sess)
	}
	other, _ := newSession(t, uuid.NewString())
	if err := s.Create(ctx, other, time.Hour); err != nil {
		t.Fatal(err)
	}
	// An expired session leaves a stale hash in the set: List must not show it.
	if err := rdb.Del(ctx, prefix+"s:"+created[2].TokenHash).Err(); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(list, created[:2], cmpExpiry()); diff != "" {
		t.Errorf("List (-got +want):\n%s", diff)
	}
	n, err := s.DeleteAll(ctx, user, ended)
	if err != nil || n != 2 {
		t.Fatalf("DeleteAll = %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteAll(ctx, user, ended); err != nil || n != 0 {
		t.Errorf("second DeleteAll = %d, %v; want 0, nil (idempotent)", n, err)
	}
	for _, sess := range created {
		if _, err := s.Touch(ctx, sess.TokenHash, time.Hour); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("session %s survived DeleteAll: %v", sess.ID, err)
		}
	}
	if _, err := s.Touch(ctx, other.TokenHash, time.Hour); err != nil {
		t.Errorf("another user's session was revoked: %v", err)
	}
}

func TestAttemptAndRefund(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t)
	limits := []int64{3, 4}
	for i := range 3 {
		blocked, _, err := s.Attempt(ctx, time.Minute, limits, "fail:a:x", "fail:c:y")
		if err != nil || blocked != -1 {
			t.Fatalf("attempt %d = blocked %d, err %v; want counted", i, blocked, err)
		}
	}
	// The account counter is at its limit: nothing is counted, not even the client's.
	blocked, retry, err := s.Attempt(ctx, time.Minute, limits, "fail:a:x", "fail:c:y")
	if err != nil || blocked != 0 || retry <= 0 || retry > time.Minute {
		t.Fatalf("attempt at the account limit = blocked %d, retry %s, err %v; want 0 with the window left", blocked, retry, err)
	}
	if n, _ := rdb.Get(ctx, prefix+"fail:c:y").Int64(); n != 3 {
		t.Errorf("client counter = %d after a blocked attempt, want 3", n)
	}
	// Another account from the same client reaches the client's limit.
	if blocked, _, _ := s.Attempt(ctx, time.Minute, limits, "fail:a:z", "fail:c:y"); blocked != -1 {
		t.Fatalf("4th attempt of the client = blocked %d, want counted", blocked)
	}
	if blocked, _, _ := s.Attempt(ctx, time.Minute, limits, "fail:a:w", "fail:c:y"); blocked != 1 {
		t.Errorf("5th attempt of the client = blocked %d, want 1 (client)", blocked)
	}
	// Refunds take attempts back, never below zero, and keep the window.
	if err := s.Refund(ctx, "fail:c:y", "fail:a:never"); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Get(ctx, prefix+"fail:c:y").Int64(); n != 3 {
		t.Errorf("client counter after refund = %d, want 3", n)
	}
	if n, err := rdb.Exists(ctx, prefix+"fail:a:never").Result(); err != nil || n != 0 {
		t.Errorf("refund created a counter (exists %d, err %v)", n, err)
	}
	if ttl := rdb.PTTL(ctx, prefix+"fail:c:y").Val(); ttl <= 0 {
		t.Errorf("window after refund = %s, want kept", ttl)
	}
	if err := s.ResetFailures(ctx, "fail:a:x"); err != nil {
		t.Fatal(err)
	}
	if blocked, _, _ := s.Attempt(ctx, time.Minute, []int64{3, 10}, "fail:a:x", "fail:c:y"); blocked != -1 {
		t.Errorf("attempt after reset = blocked %d, want counted", blocked)
	}
}
