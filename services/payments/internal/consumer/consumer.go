// Package consumer attaches the payments service to the saga's commands: two durable
// JetStream consumers on the stream ORDERS, one for the forward command (charge) and one
// for the compensation (refund), so a backlog of retried charges never holds a refund
// back (SAGA.md). A controller polls the stored down switch and detaches both consumers
// while it is on, re-attaching them when it is cleared.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"polyshop/services/payments/internal/payments"
	"polyshop/shared/broker"
	"polyshop/shared/events"
)

// Options configure the consumers. Zero values take the defaults.
type Options struct {
	// DurablePrefix names the consumers "<prefix>-charge" and "<prefix>-refund" (default
	// "payments"); tests use a unique prefix.
	DurablePrefix string
	// ChargeSubject and RefundSubject are the command subjects (defaults
	// "orders.cmd.payments.charge.v1" and "orders.cmd.payments.refund.v1"); tests use
	// test-only subjects so they never take real commands.
	ChargeSubject, RefundSubject string
	// Stream holds the commands (default "ORDERS").
	Stream string
	// Concurrency is how many commands each consumer handles at once (default 4). Commands
	// of one order serialize on its payment row, so order between them does not matter.
	Concurrency int
	// AckWait is how long one command may take (the broker's HandlerTimeout; default 30s:
	// the largest injected latency, 20 s, plus the handling). A message held by a process
	// that died is delivered again after the broker's AckWait (10 s), not after this.
	AckWait time.Duration
	// DeliverNew makes newly created consumers start at the end of the stream (tests).
	DeliverNew bool
	// PollEvery is how often the down switch is read, and how often attaching to a stream
	// that does not exist yet is retried (default 1s).
	PollEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.DurablePrefix == "" {
		o.DurablePrefix = "payments"
	}
	if o.ChargeSubject == "" {
		o.ChargeSubject = events.SubjectFor(events.TypeCmdChargePayment)
	}
	if o.RefundSubject == "" {
		o.RefundSubject = events.SubjectFor(events.TypeCmdRefundPayment)
	}
	if o.Stream == "" {
		o.Stream = broker.StreamName("orders")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	return o
}

// Service is what the consumers call: payments.Service.
type Service interface {
	Charge(ctx context.Context, e events.Envelope) (payments.Outcome, error)
	Refund(ctx context.Context, e events.Envelope) (payments.Outcome, error)
	Faults(ctx context.Context) (payments.Faults, error)
}

// Observer is told the outcome of every handled command (for metrics); err is non-nil
// when the command was not handled and will be redelivered or dead-lettered.
type Observer func(verb string, o payments.Outcome, err error)

// Group is the pair of command consumers and their controller. Stop it before closing the
// connection.
type Group struct {
	c       *broker.Conn
	svc     Service
	log     *slog.Logger
	opts    Options
	observe Observer

	mu   sync.Mutex
	atts []*broker.Attachment // the two consumers while the down switch is off
	down bool

	stop context.CancelFunc
	done chan struct{}
}

// Start runs the controller: it reads the down switch now and every PollEvery, attaches
// the two consumers while it is off, and detaches them (Stop: in-flight commands finish and
// are acknowledged, nothing more is fetched) while it is on. The stream ORDERS belongs to
// orders, which payments may not create: while it does not exist, attaching is retried at
// every poll (broker.Conn.ConsumeWhenReady). Start does not wait for the first attach.
func Start(ctx context.Context, c *broker.Conn, svc Service, log *slog.Logger, opts Options, observe Observer) *Group {
	opts = opts.withDefaults()
	if observe == nil {
		observe = func(string, payments.Outcome, error) {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g := &Group{c: c, svc: svc, log: log, opts: opts, observe: observe, stop: cancel, done: make(chan struct{})}
	go g.control(ctx)
	return g
}

func (g *Group) control(ctx context.Context) {
	defer close(g.done)
	t := time.NewTicker(g.opts.PollEvery)
	defer t.Stop()
	for {
		f, err := g.svc.Faults(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				g.log.WarnContext(ctx, "read fault switches", "err", err)
			}
		case f.Down:
			g.setDown(true)
			if g.detach(ctx) {
				g.log.InfoContext(ctx, "down switch on: command consumers detached")
			}
		default:
			g.setDown(false)
			g.attach(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Group) spec(verb, subject string) broker.ConsumerSpec {
	return broker.ConsumerSpec{
		Stream:         g.opts.Stream,
		Durable:        g.opts.DurablePrefix + "-" + verb,
		Subjects:       []string{subject},
		Concurrency:    g.opts.Concurrency,
		HandlerTimeout: g.opts.AckWait,
		DeliverNew:     g.opts.DeliverNew,
	}
}

// attach starts attaching both consumers unless they are attaching or attached; each
// retries every PollEvery while the stream does not exist.
func (g *Group) attach(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.atts != nil {
		return
	}
	bg := context.WithoutCancel(ctx)
	g.atts = []*broker.Attachment{
		g.c.ConsumeWhenReady(bg, g.spec("charge", g.opts.ChargeSubject), g.handler("charge", g.svc.Charge), g.opts.PollEvery),
		g.c.ConsumeWhenReady(bg, g.spec("refund", g.opts.RefundSubject), g.handler("refund", g.svc.Refund), g.opts.PollEvery),
	}
}

// detach stops both consumers, waiting for their in-flight commands; it reports whether
// they were there.
func (g *Group) detach(ctx context.Context) bool {
	g.mu.Lock()
	atts := g.atts
	g.atts = nil
	g.mu.Unlock()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opts.AckWait+5*time.Second)
	defer cancel()
	for _, a := range atts {
		if err := a.Stop(stopCtx); err != nil {
			g.log.WarnContext(ctx, "stop consumer", "durable", a.Durable(), "err", err)
		}
	}
	return atts != nil
}

func (g *Group) handler(verb string, fn func(context.Context, events.Envelope) (payments.Outcome, error)) broker.Handler {
	return func(ctx context.Context, e events.Envelope) error {
		o, err := fn(ctx, e)
		g.observe(verb, o, err)
		if err != nil && errors.Is(err, payments.ErrInvalid) {
			return broker.Permanent(err)
		}
		return err
	}
}

func (g *Group) setDown(v bool) {
	g.mu.Lock()
	g.down = v
	g.mu.Unlock()
}

// State reports whether the consumers are attached and whether the controller last saw
// the down switch on.
func (g *Group) State() (attached, down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	attached = g.atts != nil
	for _, a := range g.atts {
		attached = attached && a.Attached()
	}
	return attached, g.down
}

// Durables returns the names of the two consumers.
func (g *Group) Durables() []string {
	return []string{g.opts.DurablePrefix + "-charge", g.opts.DurablePrefix + "-refund"}
}

// Stop ends the controller and stops both consumers, waiting (bounded by ctx) until the
// commands in flight are handled and acknowledged.
func (g *Group) Stop(ctx context.Context) error {
	g.stop()
	select {
	case <-g.done:
	case <-ctx.Done():
		return fmt.Errorf("stop command consumers: %w", ctx.Err())
	}
	g.mu.Lock()
	atts := g.atts
	g.atts = nil
	g.mu.Unlock()
	var errs []error
	for _, a := range atts {
		if err := a.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
