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
	// AckWait of the command consumers (default 90s: longer than the largest latency fault).
	AckWait time.Duration
	// PollEvery is how often the stored faults are read (default 1s).
	PollEvery time.Duration
	// RetryEvery is the pause before attaching again to a stream that does not exist yet
	// (default 2s).
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
	subs map[string]*broker.Subscription // by durable

	failures map[string]int // failed attach attempts in a row, by durable (loop only)

	cancel context.CancelFunc
	done   chan struct{}
}

// Start attaches the catalog consumer and, unless the down fault is on, the command
// consumers, retrying in the background while a stream does not exist yet (streams are
// created by their owners); it returns at once.
func Start(ctx context.Context, c *broker.Conn, svc *inventory.Service, log *slog.Logger, opts Options) *Runner {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	r := &Runner{c: c, svc: svc, log: log, opts: opts, subs: map[string]*broker.Subscription{},
		failures: map[string]int{}, cancel: cancel, done: make(chan struct{})}
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
			Concurrency: r.opts.Concurrency, AckWait: r.opts.AckWait, DeliverNew: r.opts.DeliverNew})
	}
	return out
}

// loop reads the faults every PollEvery and attaches or detaches consumers to match.
func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	lastTry := map[string]time.Time{}
	for {
		f, err := r.svc.RefreshFaults(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "read faults; keeping the last known", "err", err)
		}
		want := []broker.ConsumerSpec{r.catalogSpec()}
		if !f.Down {
			want = append(want, r.commandSpecs()...)
		}
		changed := false
		for _, spec := range r.commandSpecs() {
			if f.Down && r.detach(ctx, spec.Durable) {
				changed = true
				r.log.InfoContext(ctx, "down fault on: command consumer stopped", "durable", spec.Durable)
			}
		}
		for _, spec := range want {
			if r.attached(spec.Durable) || time.Since(lastTry[spec.Durable]) < r.opts.RetryEvery {
				continue
			}
			lastTry[spec.Durable] = time.Now()
			if r.attach(ctx, spec) {
				changed = true
			}
		}
		if changed && r.opts.OnChange != nil {
			r.opts.OnChange(r.Attached())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.opts.PollEvery):
		}
	}
}

func (r *Runner) attached(durable string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[durable] != nil
}

func (r *Runner) attach(ctx context.Context, spec broker.ConsumerSpec) bool {
	h := r.handler(r.svc.HandleCommand)
	if spec.Durable == r.opts.Catalog.Durable {
		h = r.handler(r.svc.ApplyCatalog)
	}
	s, err := r.c.Consume(context.WithoutCancel(ctx), spec, h)
	if err != nil {
		// A stream its owner has not created yet is normal at start: say so once, then
		// every 30th attempt.
		if n := r.failures[spec.Durable]; ctx.Err() == nil && n%30 == 0 {
			r.log.WarnContext(ctx, "cannot attach consumer yet; retrying", "stream", spec.Stream,
				"durable", spec.Durable, "attempts", n+1, "err", err)
		}
		r.failures[spec.Durable]++
		return false
	}
	delete(r.failures, spec.Durable)
	r.mu.Lock()
	r.subs[spec.Durable] = s
	r.mu.Unlock()
	r.log.InfoContext(ctx, "consuming", "stream", spec.Stream, "durable", spec.Durable, "subjects", spec.Subjects)
	return true
}

func (r *Runner) detach(ctx context.Context, durable string) bool {
	r.mu.Lock()
	s := r.subs[durable]
	delete(r.subs, durable)
	r.mu.Unlock()
	if s == nil {
		return false
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.AckWait)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
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
	names := make([]string, 0, len(r.subs))
	for n := range r.subs {
		names = append(names, n)
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
	subs := r.subs
	r.subs = map[string]*broker.Subscription{}
	r.mu.Unlock()
	var errs []error
	for name, s := range subs {
		if err := s.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
