// Package redisoutbox is the Redis outbox: events are appended with XADD to an outbox
// stream inside the same MULTI/EXEC as the state change (Add), and an outbox.Relay drains
// the stream over Store, deleting entries once published.
//
// Keys: the outbox stream (such as "sessions:outbox") and "<stream>:lock", which serializes
// relays. Both must be under the prefix the service's ACL user may touch.
package redisoutbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// Add queues XADDs of evs to stream on pipe, which should be the pipeline of the caller's
// TxPipelined, so the events are stored in the same MULTI/EXEC as the state change.
func Add(ctx context.Context, pipe redis.Pipeliner, stream string, evs ...events.Envelope) error {
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("outbox: encode event %s: %w", e.ID, err)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"id", e.ID, "aggregate", e.Subject, "envelope", string(b)}})
	}
	return nil
}

// Store drains one outbox stream. It is safe for concurrent use, and several relays may
// drain one stream: a drain runs only while holding "<stream>:lock" (SET NX with a 30s
// expiry), so events leave in stream order, which is commit order. A relay that finds the
// lock taken hands out nothing and tries again later.
type Store struct {
	rdb    *redis.Client
	stream string
	lock   string

	mu     sync.Mutex
	lastID string // newest entry the last drain saw: Wait blocks for anything after it
	busy   bool   // the last drain found another relay holding the lock
}

var _ outbox.Store = (*Store)(nil)

// New returns a Store draining stream.
func New(rdb *redis.Client, stream string) *Store {
	return &Store{rdb: rdb, stream: stream, lock: stream + ":lock", lastID: "0-0"}
}

const lockTTL = 30 * time.Second

var release = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// Drain implements outbox.Store: under the lock, XRANGE from the start of the stream,
// publish each entry in order (skipping an aggregate's later entries after a failure),
// then XDEL the published ones. A relay that dies before the XDEL leaves the entries to be
// published again.
func (s *Store) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	token := uuid.NewString()
	ok, err := s.rdb.SetNX(ctx, s.lock, token, lockTTL).Result()
	if err != nil {
		return 0, fmt.Errorf("outbox drain: lock: %w", err)
	}
	s.mu.Lock()
	s.busy = !ok
	s.mu.Unlock()
	if !ok {
		return 0, nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = release.Run(rctx, s.rdb, []string{s.lock}, token).Err()
	}()

	entries, err := s.rdb.XRangeN(ctx, s.stream, "-", "+", int64(limit)).Result()
	if err != nil {
		return 0, fmt.Errorf("outbox drain: xrange: %w", err)
	}
	var sent []string
	var pub outbox.InOrder
	for _, m := range entries {
		agg, _ := m.Values["aggregate"].(string)
		env, _ := m.Values["envelope"].(string)
		ok, err := pub.Publish(ctx, publish, agg, m.ID, env)
		if err != nil {
			return 0, err
		}
		if ok {
			sent = append(sent, m.ID)
		}
	}
	if len(entries) > 0 {
		s.mu.Lock()
		s.lastID = entries[len(entries)-1].ID
		s.mu.Unlock()
	}
	if len(sent) > 0 {
		if err := s.rdb.XDel(ctx, s.stream, sent...).Err(); err != nil {
			return 0, fmt.Errorf("outbox drain: xdel: %w", err)
		}
	}
	return len(sent), pub.Err()
}

// Wait implements outbox.Store with XREAD BLOCK for entries newer than the last drain saw,
// so a commit wakes it at once. While another relay holds the lock it just sleeps a little.
func (s *Store) Wait(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	last, busy := s.lastID, s.busy
	s.mu.Unlock()
	if busy {
		d = min(d, 100*time.Millisecond)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.stream, last}, Count: 1, Block: max(d, time.Millisecond)}).Err()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil || errors.Is(err, redis.Nil):
		return nil
	default:
		return fmt.Errorf("outbox wait: %w", err)
	}
}
