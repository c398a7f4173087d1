// Package redisoutbox is the Redis outbox: events are appended with XADD to an outbox
// stream inside the same MULTI/EXEC as the state change (Add), and an outbox.Relay drains
// the stream over Store, deleting entries once published.
//
// Keys: the outbox stream (such as "sessions:outbox"), "<stream>:lock", which serializes
// relays, "<stream>:failures", a hash of failure records of events whose publish failed
// (outbox.Policy), and "<stream>:parked", a sorted set of parked event ids by parking time.
// All must be under the prefix the service's ACL user may touch.
//
// Retention: an entry is deleted (XDEL) as soon as it is published, so the stream only
// ever holds pending entries and XLEN is the backlog; Prune removes failure records whose
// entry is gone (a relay that died between the two deletions).
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
		// The type and trace attributes beside the envelope spare the relay decoding it.
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"id", e.ID, "aggregate", e.Subject, "envelope", string(b),
			"type", e.Type, "traceparent", e.TraceParent, "correlationid", e.CorrelationID}})
	}
	return nil
}

// Store drains one outbox stream. It is safe for concurrent use, and several relays may
// drain one stream: a drain runs only while holding "<stream>:lock" (SET NX with a 30s
// expiry), so events leave in stream order, which is commit order. A relay that finds the
// lock taken hands out nothing and tries again later.
type Store struct {
	rdb      *redis.Client
	stream   string
	lock     string
	failures string
	parked   string
	policy   outbox.Policy

	mu     sync.Mutex
	lastID string // newest entry the last drain saw: Wait blocks for anything after it
	busy   bool   // the last drain found another relay holding the lock
}

var _ outbox.Operator = (*Store)(nil)

// New returns a Store draining stream, with outbox.DefaultPolicy.
func New(rdb *redis.Client, stream string) *Store {
	return &Store{
		rdb: rdb, stream: stream, lock: stream + ":lock", failures: stream + ":failures", parked: stream + ":parked",
		lastID: "0-0", policy: outbox.DefaultPolicy(),
	}
}

// SetPolicy implements outbox.Operator.
func (s *Store) SetPolicy(p outbox.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// failure is the record of an event whose publish failed.
type failure struct {
	Aggregate string `json:"aggregate"`
	Type      string `json:"type"`
	Attempts  int    `json:"attempts"`
	Next      int64  `json:"next"`             // unix ms of the next try
	Parked    int64  `json:"parked,omitempty"` // unix ms when parked
	Error     string `json:"error"`
}

// maxScan bounds how many entries one drain reads past held aggregates.
const maxScan = 10000

const lockTTL = 30 * time.Second

var release = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// Drain implements outbox.Store: under the lock, XRANGE from the start of the stream,
// leaving out aggregates held back by an entry that is parked or waiting for its retry
// time (read on, page by page, past them), publish each entry in order (skipping an
// aggregate's later entries after a failure), then XDEL the published ones and record the
// failures. A relay that dies before the XDEL leaves the entries to be published again.
func (s *Store) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	token := uuid.NewString()
	// One round trip: the lock, the count of failure records and the first page of the
	// stream (read before the lock is known to be ours; unused when it is not).
	start, scanned, page := "-", 0, max(int64(limit), 100)
	pipe := s.rdb.Pipeline()
	lockCmd := pipe.SetNX(ctx, s.lock, token, lockTTL)
	nFailCmd := pipe.HLen(ctx, s.failures)
	firstPage := pipe.XRangeN(ctx, s.stream, start, "+", page)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("outbox drain: lock, failures, xrange: %w", err)
	}
	ok := lockCmd.Val()
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

	s.mu.Lock()
	policy := s.policy
	s.mu.Unlock()
	nFail := nFailCmd.Val()
	type entry struct {
		item     outbox.Item
		attempts int
	}
	var cands []entry
	held := map[string]bool{}
	now := time.Now().UnixMilli()
	last := ""
	for len(cands) < limit && scanned < maxScan {
		msgs := firstPage.Val()
		if start != "-" {
			var err error
			if msgs, err = s.rdb.XRangeN(ctx, s.stream, start, "+", page).Result(); err != nil {
				return 0, fmt.Errorf("outbox drain: xrange: %w", err)
			}
		}
		if len(msgs) == 0 {
			break
		}
		var recs []any
		if nFail > 0 {
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			var err error
			if recs, err = s.rdb.HMGet(ctx, s.failures, ids...).Result(); err != nil {
				return 0, fmt.Errorf("outbox drain: failures: %w", err)
			}
		}
		for i, m := range msgs {
			scanned++
			last = m.ID
			field := func(k string) string { v, _ := m.Values[k].(string); return v }
			agg := field("aggregate")
			if held[agg] {
				continue
			}
			var f failure
			if recs != nil {
				if raw, ok := recs[i].(string); ok {
					_ = json.Unmarshal([]byte(raw), &f)
				}
			}
			if f.Parked != 0 || f.Next > now {
				held[agg] = true
				continue
			}
			// The envelope's id, type and trace attributes beside it (Add) spare the relay
			// decoding it; entries written before they were are decoded.
			cands = append(cands, entry{attempts: f.Attempts, item: outbox.Item{
				Aggregate: agg, ID: m.ID, Envelope: field("envelope"),
				EventID: field("id"), Type: field("type"), TraceParent: field("traceparent"), CorrelationID: field("correlationid"),
			}})
			if len(cands) == limit {
				break
			}
		}
		start = "(" + last
		if int64(len(msgs)) < page {
			break
		}
	}
	if last != "" {
		s.mu.Lock()
		s.lastID = last
		s.mu.Unlock()
	}
	var sent []string
	var pub outbox.InOrder
	byID := map[string]entry{}
	items := make([]outbox.Item, len(cands))
	for i, c := range cands {
		byID[c.item.ID] = c
		items[i] = c.item
	}
	done, err := pub.PublishAll(ctx, publish, items)
	if err != nil {
		return 0, err
	}
	for i, c := range cands {
		if done[i] {
			sent = append(sent, c.item.ID)
		}
	}
	fs := pub.Failures()
	if len(sent) > 0 || len(fs) > 0 {
		_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			if len(sent) > 0 {
				pipe.XDel(ctx, s.stream, sent...)
				if nFail > 0 {
					pipe.HDel(ctx, s.failures, sent...)
				}
			}
			for _, f := range fs {
				c := byID[f.ID]
				var typ struct {
					Type string `json:"type"`
				}
				_ = json.Unmarshal([]byte(c.item.Envelope), &typ)
				rec := failure{Aggregate: c.item.Aggregate, Type: typ.Type, Attempts: c.attempts + 1, Error: f.Err.Error()}
				rec.Next = time.Now().Add(policy.Delay(rec.Attempts)).UnixMilli()
				if policy.Parks(rec.Attempts) {
					rec.Parked = time.Now().UnixMilli()
					pipe.ZAdd(ctx, s.parked, redis.Z{Score: float64(rec.Parked), Member: f.ID})
				}
				b, _ := json.Marshal(rec)
				pipe.HSet(ctx, s.failures, f.ID, string(b))
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("outbox drain: mark sent: %w", err)
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

// Stats implements outbox.Operator: the stream's length, its first entry's time and the
// parked set's size.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	var xlen, zcard *redis.IntCmd
	var first *redis.XMessageSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		xlen = pipe.XLen(ctx, s.stream)
		first = pipe.XRangeN(ctx, s.stream, "-", "+", 1)
		zcard = pipe.ZCard(ctx, s.parked)
		return nil
	})
	if err != nil {
		return outbox.Stats{}, fmt.Errorf("outbox stats: %w", err)
	}
	st := outbox.Stats{Pending: xlen.Val(), Parked: zcard.Val()}
	if ms := first.Val(); len(ms) > 0 {
		var t, seq int64
		if _, err := fmt.Sscanf(ms[0].ID, "%d-%d", &t, &seq); err == nil {
			st.Oldest = time.UnixMilli(t)
		}
	}
	return st, nil
}

// Parked implements outbox.Operator.
func (s *Store) Parked(ctx context.Context, limit int) ([]outbox.Parked, error) {
	ids, err := s.rdb.ZRange(ctx, s.parked, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("outbox parked: %w", err)
	}
	out := []outbox.Parked{}
	if len(ids) == 0 {
		return out, nil
	}
	recs, err := s.rdb.HMGet(ctx, s.failures, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("outbox parked: %w", err)
	}
	for i, id := range ids {
		raw, _ := recs[i].(string)
		var f failure
		_ = json.Unmarshal([]byte(raw), &f)
		out = append(out, outbox.Parked{
			ID: eventID(ctx, s, id), Aggregate: f.Aggregate, Type: f.Type, Attempts: f.Attempts,
			LastError: f.Error, ParkedAt: time.UnixMilli(f.Parked).UTC(),
		})
	}
	return out, nil
}

// eventID returns the event id of stream entry id (the operator sees event ids).
func eventID(ctx context.Context, s *Store, id string) string {
	ms, err := s.rdb.XRangeN(ctx, s.stream, id, id, 1).Result()
	if err != nil || len(ms) == 0 {
		return id
	}
	v, _ := ms[0].Values["id"].(string)
	return v
}

// Rearm implements outbox.Operator. id is the event id (as Parked lists it).
func (s *Store) Rearm(ctx context.Context, id string) error {
	ids, err := s.rdb.ZRange(ctx, s.parked, 0, -1).Result()
	if err != nil {
		return fmt.Errorf("outbox rearm: %w", err)
	}
	for _, entry := range ids {
		if eventID(ctx, s, entry) != id {
			continue
		}
		_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.ZRem(ctx, s.parked, entry)
			pipe.HDel(ctx, s.failures, entry)
			return nil
		})
		if err != nil {
			return fmt.Errorf("outbox rearm %s: %w", id, err)
		}
		return nil
	}
	return outbox.ErrNotParked
}

// Prune implements outbox.Operator. Published entries are already gone (XDEL at publish),
// so retention has nothing to wait for: Prune removes failure records, and parked marks,
// whose entry is no longer in the stream, and returns how many.
func (s *Store) Prune(ctx context.Context, _ time.Duration, batch int) (int, error) {
	ids, err := s.rdb.HKeys(ctx, s.failures).Result()
	if err != nil {
		return 0, fmt.Errorf("outbox prune: %w", err)
	}
	removed := 0
	for len(ids) > 0 {
		chunk := ids[:min(batch, len(ids))]
		ids = ids[len(chunk):]
		cmds, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, id := range chunk {
				pipe.XRangeN(ctx, s.stream, id, id, 1)
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("outbox prune: %w", err)
		}
		var gone []string
		for i, c := range cmds {
			if ms, _ := c.(*redis.XMessageSliceCmd).Result(); len(ms) == 0 {
				gone = append(gone, chunk[i])
			}
		}
		if len(gone) == 0 {
			continue
		}
		if _, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HDel(ctx, s.failures, gone...)
			for _, g := range gone {
				pipe.ZRem(ctx, s.parked, g)
			}
			return nil
		}); err != nil {
			return removed, fmt.Errorf("outbox prune: %w", err)
		}
		removed += len(gone)
	}
	return removed, nil
}
