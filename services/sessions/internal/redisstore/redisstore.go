// Package redisstore is the Redis adapter of the sessions domain.
//
// Keys, all under a configurable prefix (default "sessions:", the only keys the service's
// ACL user may touch; tests use "sessions:t:<id>:"):
//
//	<p>s:<token sha256>   hash {id, userId, role, clientAddr, createdAt}, TTL = session TTL (sliding)
//	<p>u:<userId>         set of the user's token hashes, TTL ≥ its longest-living session
//	<p>fail:a:<email>     failed logins for an account (INCR, window from the first failure)
//	<p>fail:c:<address>   failed logins from a client address
//	<p>outbox             the redisoutbox stream (sessions.started / sessions.ended)
//
// Every state change and its events go through one MULTI/EXEC (TxPipelined); deletions
// WATCH the keys they read so a concurrent change retries instead of being lost.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"polyshop/services/sessions/internal/sessions"
	"polyshop/shared/events"
	"polyshop/shared/outbox/redisoutbox"
)

// DefaultPrefix is the key prefix of the service's ACL user.
const DefaultPrefix = "sessions:"

// Store implements sessions.Store.
type Store struct {
	rdb    *redis.Client
	prefix string
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store using keys under prefix (DefaultPrefix when empty).
func New(rdb *redis.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: prefix}
}

// OutboxStream is the key of the outbox stream, for redisoutbox.New.
func (s *Store) OutboxStream() string { return s.prefix + "outbox" }

func (s *Store) sessionKey(hash string) string { return s.prefix + "s:" + hash }
func (s *Store) userKey(userID string) string  { return s.prefix + "u:" + userID }
func (s *Store) deletedKey(userID string) string {
	return s.prefix + "d:" + userID
}

// MarkUserDeleted implements sessions.Store.
func (s *Store) MarkUserDeleted(ctx context.Context, userID string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.deletedKey(userID), "1", ttl).Err(); err != nil {
		return fmt.Errorf("mark user deleted: %w", err)
	}
	return nil
}

// Create implements sessions.Store. The user's deletion marker is watched: a marker set
// between the check and EXEC makes the transaction fail and the check run again.
func (s *Store) Create(ctx context.Context, sess sessions.Session, ttl time.Duration, evs ...events.Envelope) error {
	dk := s.deletedKey(sess.UserID)
	err := s.watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, dk).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return sessions.ErrUserDeleted
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			return s.addSession(ctx, p, sess, ttl, evs...)
		})
		return err
	}, dk)
	if errors.Is(err, sessions.ErrUserDeleted) {
		return err
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// addSession queues the writes of a new session and its events on p.
func (s *Store) addSession(ctx context.Context, p redis.Pipeliner, sess sessions.Session, ttl time.Duration, evs ...events.Envelope) error {
	k, uk := s.sessionKey(sess.TokenHash), s.userKey(sess.UserID)
	p.HSet(ctx, k, "id", sess.ID, "userId", sess.UserID, "role", sess.Role,
		"clientAddr", sess.ClientAddr, "createdAt", sess.CreatedAt.UnixMilli())
	p.PExpire(ctx, k, ttl)
	p.SAdd(ctx, uk, sess.TokenHash)
	// Every session has the same TTL, so now+ttl is at least the expiry of each of the
	// user's sessions.
	p.PExpire(ctx, uk, ttl)
	return redisoutbox.Add(ctx, p, s.OutboxStream(), evs...)
}

func parse(hash string, m map[string]string, pttl time.Duration, now time.Time) (sessions.Session, bool) {
	if len(m) == 0 || m["id"] == "" {
		return sessions.Session{}, false
	}
	ms, _ := strconv.ParseInt(m["createdAt"], 10, 64)
	return sessions.Session{ID: m["id"], TokenHash: hash, UserID: m["userId"], Role: m["role"],
		ClientAddr: m["clientAddr"], CreatedAt: time.UnixMilli(ms).UTC(),
		ExpiresAt: now.Add(pttl).UTC().Truncate(time.Millisecond)}, true
}

// Touch implements sessions.Store.
func (s *Store) Touch(ctx context.Context, hash string, ttl time.Duration) (sessions.Session, error) {
	k := s.sessionKey(hash)
	var get *redis.MapStringStringCmd
	var ok *redis.BoolCmd
	now := time.Now()
	// PEXPIRE on a missing key does nothing, so reading and extending can share one round
	// trip; PEXPIRE cannot resurrect an expired session.
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HGetAll(ctx, k)
		ok = p.PExpire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return sessions.Session{}, fmt.Errorf("touch session: %w", err)
	}
	sess, found := parse(hash, get.Val(), ttl, now)
	if !found || !ok.Val() {
		return sessions.Session{}, sessions.ErrNotFound
	}
	if err := s.rdb.PExpire(ctx, s.userKey(sess.UserID), ttl).Err(); err != nil {
		return sessions.Session{}, fmt.Errorf("touch user sessions: %w", err)
	}
	return sess, nil
}

// Delete implements sessions.Store.
func (s *Store) Delete(ctx context.Context, hash string, evs sessions.EventsFunc) (sessions.Session, error) {
	k := s.sessionKey(hash)
	var out sessions.Session
	err := s.watch(ctx, func(tx *redis.Tx) error {
		m, err := tx.HGetAll(ctx, k).Result()
		if err != nil {
			return err
		}
		sess, found := parse(hash, m, 0, time.Now())
		if !found {
			return sessions.ErrNotFound
		}
		list, err := evs(sess)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, k)
			p.SRem(ctx, s.userKey(sess.UserID), hash)
			return redisoutbox.Add(ctx, p, s.OutboxStream(), list...)
		})
		out = sess
		return err
	}, k)
	if err != nil {
		return sessions.Session{}, err
	}
	return out, nil
}

// watch runs fn in a WATCH of keys, retrying when a watched key changed before EXEC.
func (s *Store) watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	for range 20 {
		err := s.rdb.Watch(ctx, fn, keys...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil && !errors.Is(err, sessions.ErrNotFound) {
			return fmt.Errorf("sessions store: %w", err)
		}
		return err
	}
	return errors.New("sessions store: too much contention, giving up")
}

// members returns the live sessions among the user's set, and the stale hashes.
func (s *Store) members(ctx context.Context, c redis.Cmdable, userID string) ([]sessions.Session, []string, error) {
	hashes, err := c.SMembers(ctx, s.userKey(userID)).Result()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	gets := make([]*redis.MapStringStringCmd, len(hashes))
	ttls := make([]*redis.DurationCmd, len(hashes))
	if len(hashes) > 0 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, h := range hashes {
				gets[i] = p.HGetAll(ctx, s.sessionKey(h))
				ttls[i] = p.PTTL(ctx, s.sessionKey(h))
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	var live []sessions.Session
	var stale []string
	for i, h := range hashes {
		sess, ok := parse(h, gets[i].Val(), ttls[i].Val(), now)
		if !ok || ttls[i].Val() <= 0 {
			stale = append(stale, h)
			continue
		}
		live = append(live, sess)
	}
	return live, stale, nil
}

// List implements sessions.Store. Hashes of expired sessions are pruned from the set.
func (s *Store) List(ctx context.Context, userID string) ([]sessions.Session, error) {
	live, stale, err := s.members(ctx, s.rdb, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	if len(stale) > 0 {
		_ = s.rdb.SRem(ctx, s.userKey(userID), toAny(stale)...).Err() // best effort
	}
	sortByCreated(live)
	return live, nil
}

// DeleteAll implements sessions.Store. The user's set is watched: a session created while
// this runs makes EXEC fail and the whole revocation retry, so it is revoked too.
func (s *Store) DeleteAll(ctx context.Context, userID string, evs sessions.EventsFunc) (int, error) {
	uk := s.userKey(userID)
	n := 0
	err := s.watch(ctx, func(tx *redis.Tx) error {
		live, stale, err := s.members(ctx, tx, userID)
		if err != nil {
			return err
		}
		if len(live) == 0 && len(stale) == 0 {
			n = 0
			return nil
		}
		var all []events.Envelope
		for _, sess := range live {
			list, err := evs(sess)
			if err != nil {
				return err
			}
			all = append(all, list...)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, sess := range live {
				p.Del(ctx, s.sessionKey(sess.TokenHash))
			}
			p.Del(ctx, uk)
			return redisoutbox.Add(ctx, p, s.OutboxStream(), all...)
		})
		n = len(live)
		return err
	}, uk)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// attemptScript counts a login attempt against every counter, or against none when one is
// at its limit, in one atomic step; KEYS are the counters, ARGV[1] the window in
// milliseconds, ARGV[1+i] the limit of KEYS[i]. It returns {i, pttl} of the first counter
// at its limit, or {0, 0} after counting. INCR and PEXPIRE in one script also mean a
// counter can never be left without expiry.
var attemptScript = redis.NewScript(`
for i, k in ipairs(KEYS) do
  local n = tonumber(redis.call("GET", k) or "0")
  if n >= tonumber(ARGV[i + 1]) then
    return {i, redis.call("PTTL", k)}
  end
end
for _, k in ipairs(KEYS) do
  local n = redis.call("INCR", k)
  if n == 1 or redis.call("PTTL", k) < 0 then
    redis.call("PEXPIRE", k, ARGV[1])
  end
end
return {0, 0}`)

// Attempt implements sessions.Store.
func (s *Store) Attempt(ctx context.Context, window time.Duration, limits []int64, keys ...string) (int, time.Duration, error) {
	if len(limits) != len(keys) {
		return -1, 0, fmt.Errorf("count login attempt: %d limits for %d keys", len(limits), len(keys))
	}
	full := make([]string, len(keys))
	args := []any{window.Milliseconds()}
	for i, k := range keys {
		full[i] = s.prefix + k
		args = append(args, limits[i])
	}
	res, err := attemptScript.Run(ctx, s.rdb, full, args...).Int64Slice()
	if err != nil {
		return -1, 0, fmt.Errorf("count login attempt: %w", err)
	}
	if len(res) != 2 || res[0] == 0 {
		return -1, 0, nil
	}
	return int(res[0]) - 1, max(time.Duration(res[1])*time.Millisecond, 0), nil
}

// refundScript decrements every counter that is above zero, keeping its window.
var refundScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if tonumber(redis.call("GET", k) or "0") > 0 then
    redis.call("DECR", k)
  end
end
return 1`)

// Refund implements sessions.Store.
func (s *Store) Refund(ctx context.Context, keys ...string) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.prefix + k
	}
	if err := refundScript.Run(ctx, s.rdb, full).Err(); err != nil {
		return fmt.Errorf("refund login attempt: %w", err)
	}
	return nil
}

// ResetFailures implements sessions.Store.
func (s *Store) ResetFailures(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("reset login failures: %w", err)
	}
	return nil
}

// Ready implements sessions.Store.
func (s *Store) Ready(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sortByCreated(ss []sessions.Session) {
	slices.SortFunc(ss, func(a, b sessions.Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
}
