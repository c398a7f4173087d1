// Package consumer attaches the activity projection to the broker: one durable JetStream
// consumer per owner stream (USERS, SESSIONS, CATALOG, …), filtered to the exact subjects of
// the event types in the activity rule table.
package consumer

import (
	"context"
	"errors"
	"fmt"
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
	// yet (default broker.DefaultAttachEvery).
	RetryEvery time.Duration
	// StreamOf names an owner's stream (default broker.StreamName) and SubjectPrefix goes
	// before every subject (default none): tests point the consumers at their own
	// namespace (natstest.StreamName, natstest.Namespace).
	StreamOf      func(owner string) string
	SubjectPrefix string
}

// Group is the set of running consumers. Stop it before closing the connection.
type Group struct {
	atts []*broker.Attachment
}

// Start attaches one consumer per owner in activity.Subscriptions, with apply as handler
// (activity.Service.Apply). The owners' streams are created by their owners, whom activity
// may not impersonate (its NATS user may create only its own streams), so a stream that
// does not exist yet is retried in the background (broker.Conn.ConsumeWhenReady) until it
// appears or Stop is called; Start itself does not wait for it.
func Start(ctx context.Context, c *broker.Conn, apply broker.Handler, opts Options) *Group {
	if opts.DurablePrefix == "" {
		opts.DurablePrefix = "activity"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.StreamOf == nil {
		opts.StreamOf = broker.StreamName
	}
	g := &Group{}
	h := handler(apply)
	for _, sub := range activity.Subscriptions() {
		subjects := make([]string, len(sub.Subjects))
		for i, s := range sub.Subjects {
			subjects[i] = opts.SubjectPrefix + s
		}
		spec := broker.ConsumerSpec{
			Stream:      opts.StreamOf(sub.Owner),
			Durable:     opts.DurablePrefix + "-" + sub.Owner,
			Subjects:    subjects,
			Concurrency: opts.Concurrency,
			DeliverNew:  opts.DeliverNew,
		}
		g.atts = append(g.atts, c.ConsumeWhenReady(ctx, spec, h, opts.RetryEvery))
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
	var names []string
	for _, a := range g.atts {
		if a.Attached() {
			names = append(names, a.Durable())
		}
	}
	return names
}

// Stop ends the attach retries and stops every consumer, waiting (bounded by ctx) until the
// events in flight are handled and acknowledged.
func (g *Group) Stop(ctx context.Context) error {
	var errs []error
	for _, a := range g.atts {
		if err := a.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", a.Durable(), err))
		}
	}
	return errors.Join(errs...)
}
