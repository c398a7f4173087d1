// Package outbox forwards events that an owner stored atomically with its state to the
// broker, so that publishing is never a dual write (the transactional outbox pattern, in
// the style of watermill's forwarder).
//
// An owner writes its events through an adapter's write side in the same atomic unit as
// the state change: pgoutbox.Add in the PostgreSQL transaction, mongooutbox.Push in the
// same single-document update, redisoutbox.Add in the same MULTI/EXEC. A Relay then drains
// the adapter's Store and publishes each event with its id as the de-duplication id.
//
// Delivery is at least once: a relay that stops between publishing and marking an event as
// sent publishes it again on its next run. The broker drops that copy when it arrives
// within its duplicate window, and consumers are idempotent for anything older. Order is
// kept per aggregate, not across aggregates. Package outboxtest holds the contract suite
// every adapter runs.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"polyshop/shared/events"
)

// Store is the contract every outbox adapter meets.
type Store interface {
	// Drain hands up to limit pending events to publish, in commit order per aggregate,
	// and marks as sent those publish accepted. An event whose publish fails stays pending,
	// and later events of the same aggregate are not handed out before it; events of other
	// aggregates still are. Drain returns how many events were marked sent and, when a
	// publish failed, the first such error. Safe for several relays at once: each event is
	// handed to one relay at a time, and a relay never hands out an event while another
	// relay still holds an earlier pending event of the same aggregate.
	Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error)
	// Wait returns when new events may be pending, or after d, or when ctx ends (with
	// ctx's error). Returning early is always allowed; it only costs an empty Drain.
	Wait(ctx context.Context, d time.Duration) error
}

// Publisher sends one event to the broker and returns once the broker has stored it.
// Publishing the same event twice must be harmless (*broker.Conn de-duplicates by id).
type Publisher interface {
	Publish(ctx context.Context, e events.Envelope) error
}

// Relay forwards events from a Store to a Publisher until its context ends. Several relays
// (in several instances of a service) may run against the same store.
type Relay struct {
	store    Store
	pub      Publisher
	log      *slog.Logger
	batch    int
	maxBatch int
	window   int
	interval time.Duration
	minBack  time.Duration
	maxBack  time.Duration
	observe  func(n int, err error)

	policy    Policy
	policySet bool
	retention time.Duration
	pruneGap  time.Duration
	lastPrune time.Time
	metrics   *relayMetrics
}

// Option configures a Relay.
type Option func(*Relay)

// WithBatch sets how many events one Drain may hand out (default 100). While drains come
// back full (a backlog) the relay doubles it for the next drain, up to WithMaxBatch, and
// goes back to it once a drain is not full.
func WithBatch(n int) Option { return func(r *Relay) { r.batch = n } }

// WithMaxBatch sets the largest drain while a backlog lasts (default DefaultMaxBatch, and
// never below WithBatch). A larger drain spreads each drain's fixed cost (its store round
// trips, its commit, waiting for the last acknowledgements) over more events: with 2,000
// aggregates' events waiting, 500 → 1,000 per drain moved the Redis relay from 0.49–0.54× to
// 0.60× of raw JetStream publishing (shared/README.md, "Relay vs raw"). A backlog is what
// it speeds up; when caught up a drain takes what there is, however large the limit.
func WithMaxBatch(n int) Option { return func(r *Relay) { r.maxBatch = n } }

// DefaultMaxBatch is the largest drain while a backlog lasts (WithMaxBatch).
const DefaultMaxBatch = 1000

// WithWindow sets how many publishes the relay keeps in flight at once (default
// DefaultWindow; 1 publishes one event at a time). Events of one aggregate are still
// published one after another, each once the previous one is acknowledged (see
// InOrder.PublishAll); the window applies across aggregates. The publisher must be safe
// for concurrent use.
func WithWindow(n int) Option { return func(r *Relay) { r.window = max(n, 1) } }

// WithInterval sets the longest wait between drains when nothing wakes the relay (default
// 1s). It is the delivery latency of adapters whose Wait only polls.
func WithInterval(d time.Duration) Option { return func(r *Relay) { r.interval = d } }

// WithBackoff sets the first and the largest pause after a failed drain (default 100ms, 10s).
func WithBackoff(min, max time.Duration) Option {
	return func(r *Relay) { r.minBack, r.maxBack = min, max }
}

// WithObserver registers f, called after every Drain with its results, for metrics.
func WithObserver(f func(n int, err error)) Option { return func(r *Relay) { r.observe = f } }

// WithParkAfter parks an event after n failed publishes (default 10; 0 never parks); see
// Policy. It applies to stores that implement Operator (every adapter in this module).
func WithParkAfter(n int) Option {
	return func(r *Relay) { r.policy.ParkAfter, r.policySet = n, true }
}

// WithRetry sets the per-aggregate delay after an event's first failed publish and its
// largest value (default 1s, 1m); see Policy.
func WithRetry(min, max time.Duration) Option {
	return func(r *Relay) { r.policy.RetryMin, r.policy.RetryMax, r.policySet = min, max, true }
}

// WithRetention sets how long published events are kept before the relay prunes them
// (default 7 days; 0 or less never prunes). The relay prunes at most once a minute, when
// it is idle, through Operator.Prune.
func WithRetention(d time.Duration) Option { return func(r *Relay) { r.retention = d } }

// NewRelay returns a relay from store to pub.
func NewRelay(store Store, pub Publisher, log *slog.Logger, opts ...Option) *Relay {
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{
		store: store, pub: pub, log: log.With("component", "outbox-relay"),
		batch: 100, maxBatch: DefaultMaxBatch, window: DefaultWindow, interval: time.Second, minBack: 100 * time.Millisecond, maxBack: 10 * time.Second,
		policy: DefaultPolicy(), retention: 7 * 24 * time.Hour, pruneGap: time.Minute,
	}
	for _, o := range opts {
		o(r)
	}
	r.batch = max(r.batch, 1)
	r.maxBatch = max(r.maxBatch, r.batch)
	if op, ok := store.(Operator); ok && r.policySet {
		op.SetPolicy(r.policy)
	}
	return r
}

// Run drains the store until ctx ends, then returns nil. It drains again at once while
// drains come back full (doubling the next drain's limit, up to the largest batch), waits
// on the store otherwise, and backs off exponentially while
// drains publish nothing and fail (a broker outage); failures are logged, never returned.
// A drain that failed on some events but published others goes on at once: the store
// holds the failing aggregates back (see Policy), so one poison event does not slow the
// rest. When idle it prunes published events older than the retention.
func (r *Relay) Run(ctx context.Context) error {
	back := time.Duration(0)
	publish := r.publishFunc()
	limit := r.batch
	for {
		n, err := r.store.Drain(r.drainContext(ctx), limit, publish)
		if ctx.Err() != nil {
			return nil
		}
		if r.observe != nil {
			r.observe(n, err)
		}
		if err != nil && n == 0 {
			back = min(max(2*back, r.minBack), r.maxBack)
			r.log.WarnContext(ctx, "outbox drain failed", "published", n, "retry_in", back, "err", err)
			if !sleep(ctx, back) {
				return nil
			}
			continue
		}
		if err != nil {
			r.log.WarnContext(ctx, "outbox drain: some events failed; their aggregates wait", "published", n, "err", err)
		}
		back = 0
		full := n >= limit
		if full && err == nil {
			limit = min(2*limit, r.maxBatch)
		} else {
			limit = r.batch
		}
		if full || err != nil {
			continue
		}
		r.prune(ctx)
		if err := r.store.Wait(ctx, r.interval); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.WarnContext(ctx, "outbox wait failed", "err", err)
			if !sleep(ctx, r.minBack) {
				return nil
			}
		}
	}
}

// prune removes published events past the retention, at most once every pruneGap.
func (r *Relay) prune(ctx context.Context) {
	op, ok := r.store.(Operator)
	if !ok || r.retention <= 0 || time.Since(r.lastPrune) < r.pruneGap {
		return
	}
	r.lastPrune = time.Now()
	n, err := op.Prune(ctx, r.retention, 1000)
	switch {
	case err != nil && ctx.Err() == nil:
		r.log.WarnContext(ctx, "outbox prune failed", "err", err)
	case n > 0:
		r.log.InfoContext(ctx, "outbox pruned", "removed", n, "retention", r.retention)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ErrNotPublished is wrapped by Drain errors for events whose publish failed.
var ErrNotPublished = errors.New("outbox: event not published")
