// Package consumer attaches the inventory service to the broker: one durable consumer of
// catalog events (stock rows), and two of saga commands — forward commands (reserve,
// commit) and compensations (release) apart, so a backlog of one never holds back the
// other (SAGA.md). The command consumers follow the stored down fault: they are stopped
// while it is on (nothing is fetched, nothing is nak'ed) and attached again when it is
// cleared.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/shared/broker"
	"polyshop/shared/events"
)

// Spec is one consumer's stream, durable name and exact subjects; tests point them at
// test-only subjects.
type Spec struct {
	Stream   string
	Durable  string
	Subjects []string
}

// Options configure the consumers; zero values take the defaults.
type Options struct {
	Catalog       Spec
	Forward       Spec
	Compensations Spec
	// Concurrency is how many commands each command consumer handles at once (default 4);
	// commands of one order serialize on its reservation row.
	Concurrency int
	// AckWait is how long one command may take (the broker's HandlerTimeout; default 90s:
	// longer than the largest latency fault). A message held by a process that died is
	// delivered again after the broker's AckWait (10 s), not after this.
	AckWait time.Duration
	// PollEvery is how often the stored faults are read (default 1s).
	PollEvery time.Duration
	// RetryEvery is the pause before attaching again to a stream that does not exist yet
	// (default 2s; see broker.Conn.ConsumeWhenReady).
	RetryEvery time.Duration
	// DeliverNew starts newly created consumers at the end of their stream (tests).
	DeliverNew bool
	// OnChange, if set, is called with the attached durable names after every change.
	OnChange func(attached []string)
}

// Default names and subjects.
var (
	CatalogSpec = Spec{Stream: broker.StreamName("catalog"), Durable: "inventory-catalog", Subjects: []string{
		events.SubjectFor(events.TypeProductCreated), events.SubjectFor(events.TypeProductDeleted)}}
	ForwardSpec = Spec{Stream: broker.StreamName("orders"), Durable: "inventory-commands", Subjects: []string{
		events.SubjectFor(events.TypeCmdReserveStock), events.SubjectFor(events.TypeCmdCommitStock)}}
	CompensationSpec = Spec{Stream: broker.StreamName("orders"), Durable: "inventory-compensations", Subjects: []string{
		events.SubjectFor(events.TypeCmdReleaseStock)}}
)

func (o Options) withDefaults() Options {
	if o.Catalog.Durable == "" {
		o.Catalog = CatalogSpec
	}
	if o.Forward.Durable == "" {
		o.Forward = ForwardSpec
	}
	if o.Compensations.Durable == "" {
		o.Compensations = CompensationSpec
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.AckWait <= 0 {
		o.AckWait = 90 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = 2 * time.Second
	}
	return o
}

// Runner owns the running consumers. Stop it before closing the connection.
type Runner struct {
	c    *broker.Conn
	svc  *inventory.Service
	log  *slog.Logger
	opts Options

	mu   sync.Mutex
	atts map[string]*broker.Attachment // by durable: attaching or attached

	cancel context.CancelFunc
	done   chan struct{}
}

// Start attaches the catalog consumer and, unless the down fault is on, the command
// consumers, each retrying in the background while its stream does not exist yet (streams
// are created by their owners: broker.Conn.ConsumeWhenReady); it returns at once.
func Start(ctx context.Context, c *broker.Conn, svc *inventory.Service, log *slog.Logger, opts Options) *Runner {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	r := &Runner{c: c, svc: svc, log: log, opts: opts, atts: map[string]*broker.Attachment{},
		cancel: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

func (r *Runner) catalogSpec() broker.ConsumerSpec {
	return broker.ConsumerSpec{Stream: r.opts.Catalog.Stream, Durable: r.opts.Catalog.Durable,
		Subjects: r.opts.Catalog.Subjects, DeliverNew: r.opts.DeliverNew}
}

func (r *Runner) commandSpecs() []broker.ConsumerSpec {
	var out []broker.ConsumerSpec
	for _, s := range []Spec{r.opts.Forward, r.opts.Compensations} {
		out = append(out, broker.ConsumerSpec{Stream: s.Stream, Durable: s.Durable, Subjects: s.Subjects,
			Concurrency: r.opts.Concurrency, HandlerTimeout: r.opts.AckWait, DeliverNew: r.opts.DeliverNew})
	}
	return out
}

// loop reads the faults every PollEvery and attaches or detaches consumers to match; it
// reports the attached set to OnChange whenever it changed.
func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	var last []string
	for {
		f, err := r.svc.RefreshFaults(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "read faults; keeping the last known", "err", err)
		}
		want := []broker.ConsumerSpec{r.catalogSpec()}
		if !f.Down {
			want = append(want, r.commandSpecs()...)
		}
		for _, spec := range r.commandSpecs() {
			if f.Down && r.detach(ctx, spec.Durable) {
				r.log.InfoContext(ctx, "down fault on: command consumer stopped", "durable", spec.Durable)
			}
		}
		for _, spec := range want {
			r.attach(ctx, spec)
		}
		if now := r.Attached(); !slices.Equal(now, last) {
			last = now
			if r.opts.OnChange != nil {
				r.opts.OnChange(now)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.opts.PollEvery):
		}
	}
}

// attach starts attaching spec unless it is already attaching or attached.
func (r *Runner) attach(ctx context.Context, spec broker.ConsumerSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.atts[spec.Durable] != nil {
		return
	}
	h := r.handler(r.svc.HandleCommand)
	if spec.Durable == r.opts.Catalog.Durable {
		h = r.handler(r.svc.ApplyCatalog)
	}
	r.atts[spec.Durable] = r.c.ConsumeWhenReady(context.WithoutCancel(ctx), spec, h, r.opts.RetryEvery)
}

func (r *Runner) detach(ctx context.Context, durable string) bool {
	r.mu.Lock()
	a := r.atts[durable]
	delete(r.atts, durable)
	r.mu.Unlock()
	if a == nil {
		return false
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.AckWait)
	defer cancel()
	if err := a.Stop(sctx); err != nil {
		r.log.WarnContext(ctx, "stop consumer", "durable", durable, "err", err)
	}
	return true
}

// handler makes an unhandled type permanent (dead-lettered at once), like a malformed
// payload (events.ErrInvalid, which the broker already treats as permanent). Store errors
// are retried with backoff.
func (r *Runner) handler(h broker.Handler) broker.Handler {
	return func(ctx context.Context, e events.Envelope) error {
		err := h(ctx, e)
		if errors.Is(err, inventory.ErrUnhandledType) {
			return broker.Permanent(err)
		}
		return err
	}
}

// Attached returns the durable names of the consumers attached now, sorted.
func (r *Runner) Attached() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.atts))
	for n, a := range r.atts {
		if a.Attached() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Stop ends the loop and stops every consumer, waiting (bounded by ctx) until the messages
// in flight are handled and acknowledged.
func (r *Runner) Stop(ctx context.Context) error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	atts := r.atts
	r.atts = map[string]*broker.Attachment{}
	r.mu.Unlock()
	var errs []error
	for name, a := range atts {
		if err := a.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
