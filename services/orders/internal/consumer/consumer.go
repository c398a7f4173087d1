// Package consumer attaches the orders service to the broker: the local copies (streams
// USERS and CATALOG) and the saga's replies (streams INVENTORY and PAYMENTS), one durable
// JetStream consumer each, filtered to the exact subjects orders handles.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"polyshop/services/orders/internal/orders"
	"polyshop/shared/broker"
	"polyshop/shared/events"
)

// Spec is one consumer: its stream, durable name, subjects and handler kind.
type Spec struct {
	Stream   string
	Durable  string
	Subjects []string
	// Replies selects the saga reply handler (inbox Claim + row lock); otherwise the copy
	// handler (pginbox.Advance per aggregate).
	Replies bool
}

// Specs returns the service's consumers, durables "<prefix>-users", "-catalog",
// "-inventory", "-payments".
func Specs(prefix string) []Spec {
	subj := func(types ...string) []string {
		out := make([]string, len(types))
		for i, t := range types {
			out[i] = events.SubjectFor(t)
		}
		return out
	}
	return []Spec{
		{Stream: broker.StreamName("users"), Durable: prefix + "-users",
			Subjects: subj(events.TypeUserRegistered, events.TypeUserAddressChanged, events.TypeUserDeleted)},
		// Not product_price_changed: it shares product_updated's sequence, which already
		// carries the full state (price included).
		{Stream: broker.StreamName("catalog"), Durable: prefix + "-catalog",
			Subjects: subj(events.TypeProductCreated, events.TypeProductUpdated, events.TypeProductDeleted)},
		{Stream: broker.StreamName("inventory"), Durable: prefix + "-inventory", Replies: true,
			Subjects: subj(events.TypeReplyStockReserved, events.TypeReplyStockRejected, events.TypeReplyStockReleased,
				events.TypeReplyStockCommitted, events.TypeReplyStockCommitFailed)},
		{Stream: broker.StreamName("payments"), Durable: prefix + "-payments", Replies: true,
			Subjects: subj(events.TypeReplyPaymentCharged, events.TypeReplyPaymentDeclined, events.TypeReplyPaymentFailed,
				events.TypeReplyPaymentRefunded)},
	}
}

// Options configure the consumers.
type Options struct {
	// Concurrency is how many messages each consumer handles at once (default 8). Order
	// does not matter: copies are guarded by per-aggregate sequences, replies by the saga's
	// state under its row lock.
	Concurrency int
	// DeliverNew makes newly created consumers start at the end of their stream (tests).
	DeliverNew bool
	// RetryEvery is the pause between attempts to attach to a stream that does not exist
	// yet (its owner creates it; default 2s).
	RetryEvery time.Duration
}

// Group is the set of running consumers. Stop it before closing the connection.
type Group struct {
	atts []*broker.Attachment
}

// Handler returns the broker handler for spec: copies go to svc.ApplyEvent, replies to
// svc.HandleReply, both with the durable name as inbox consumer.
func Handler(svc *orders.Service, spec Spec) broker.Handler {
	if spec.Replies {
		return func(ctx context.Context, e events.Envelope) error { return svc.HandleReply(ctx, spec.Durable, e) }
	}
	return func(ctx context.Context, e events.Envelope) error { return svc.ApplyEvent(ctx, spec.Durable, e) }
}

// Start attaches every spec, retrying in the background for streams that do not exist yet
// (orders' NATS user may create only its own streams: broker.Conn.ConsumeWhenReady); it
// does not wait for them.
func Start(ctx context.Context, c *broker.Conn, svc *orders.Service, specs []Spec, opts Options) *Group {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	g := &Group{}
	for _, sp := range specs {
		cs := broker.ConsumerSpec{Stream: sp.Stream, Durable: sp.Durable, Subjects: sp.Subjects,
			Concurrency: opts.Concurrency, DeliverNew: opts.DeliverNew}
		g.atts = append(g.atts, c.ConsumeWhenReady(ctx, cs, Handler(svc, sp), opts.RetryEvery))
	}
	return g
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
// messages in flight are handled and acknowledged.
func (g *Group) Stop(ctx context.Context) error {
	var errs []error
	for _, a := range g.atts {
		if err := a.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", a.Durable(), err))
		}
	}
	return errors.Join(errs...)
}

// CopyFeeds returns the copy consumers of Specs(prefix) as the feeds a rebuild of the
// copies replays (same streams, subjects and inbox consumer names as the live ones).
func CopyFeeds(prefix string) (users, catalog orders.Feed) {
	for _, sp := range Specs(prefix) {
		f := orders.Feed{Stream: sp.Stream, Consumer: sp.Durable, Subjects: sp.Subjects}
		switch sp.Stream {
		case broker.StreamName("users"):
			users = f
		case broker.StreamName("catalog"):
			catalog = f
		}
	}
	return users, catalog
}
