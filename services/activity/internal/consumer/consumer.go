// Package consumer attaches the activity projection to the broker: one durable JetStream
// consumer per owner stream (USERS, SESSIONS, CATALOG, …), filtered to the exact subjects of
// the event types in the activity rule table.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"polyshop/services/activity/internal/activity"
	"polyshop/shared/broker"
	"polyshop/shared/events"
)

// Options configure the consumers.
type Options struct {
	// DurablePrefix names the consumers "<prefix>-<owner>" (default "activity"); tests use a
	// unique prefix.
	DurablePrefix string
	// Concurrency is how many events each consumer handles at once. The projection does not
	// depend on order (rows are keyed by the event; deletion is guarded by a tombstone), so
	// more than one is safe.
	Concurrency int
	// DeliverNew makes newly created consumers start at the end of their stream (tests);
	// the service starts at the beginning, so a fresh keyspace is rebuilt by replay.
	DeliverNew bool
	// RetryEvery is the pause between attempts to attach to a stream that does not exist
	// yet (default 2s).
	RetryEvery time.Duration
}

// Group is the set of running consumers. Stop it before closing the connection.
type Group struct {
	mu   sync.Mutex
	subs []*broker.Subscription
	wg   sync.WaitGroup
	stop context.CancelFunc
}

// Start attaches one consumer per owner in activity.Subscriptions, with apply as handler
// (activity.Service.Apply). The owners' streams are created by their owners, whom activity
// may not impersonate (its NATS user may create only its own streams), so a stream that
// does not exist yet is retried in the background until it appears or Stop is called;
// Start itself does not wait for it.
func Start(ctx context.Context, c *broker.Conn, apply broker.Handler, log *slog.Logger, opts Options) *Group {
	if opts.DurablePrefix == "" {
		opts.DurablePrefix = "activity"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Group{stop: cancel}
	h := handler(apply)
	for _, sub := range activity.Subscriptions() {
		spec := broker.ConsumerSpec{
			Stream:      broker.StreamName(sub.Owner),
			Durable:     opts.DurablePrefix + "-" + sub.Owner,
			Subjects:    sub.Subjects,
			Concurrency: opts.Concurrency,
			DeliverNew:  opts.DeliverNew,
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for attempt := 1; ; attempt++ {
				s, err := c.Consume(ctx, spec, h)
				if err == nil {
					g.mu.Lock()
					g.subs = append(g.subs, s)
					g.mu.Unlock()
					log.InfoContext(ctx, "consuming", "stream", spec.Stream, "durable", spec.Durable, "subjects", spec.Subjects)
					return
				}
				if attempt == 1 || attempt%30 == 0 {
					log.WarnContext(ctx, "cannot attach consumer yet; retrying", "stream", spec.Stream, "durable", spec.Durable, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(opts.RetryEvery):
				}
			}
		}()
	}
	return g
}

// handler adapts the projection to the broker: an event type without a rule is a permanent
// error (dead-lettered at once), like a malformed payload (events.ErrInvalid, which the
// broker already treats as permanent). Store errors are retried with backoff.
func handler(apply broker.Handler) broker.Handler {
	return func(ctx context.Context, e events.Envelope) error {
		err := apply(ctx, e)
		if errors.Is(err, activity.ErrUnhandledType) {
			return broker.Permanent(err)
		}
		return err
	}
}

// Attached returns the durable names of the consumers attached so far.
func (g *Group) Attached() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, len(g.subs))
	for i, s := range g.subs {
		names[i] = s.Durable()
	}
	return names
}

// Stop ends the attach retries and stops every consumer, waiting (bounded by ctx) until the
// events in flight are handled and acknowledged.
func (g *Group) Stop(ctx context.Context) error {
	g.stop()
	g.wg.Wait()
	g.mu.Lock()
	subs := g.subs
	g.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.Durable(), err))
		}
	}
	return errors.Join(errs...)
}
