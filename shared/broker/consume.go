package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/events"
)

// Headers added to a dead letter, next to the original message's headers.
const (
	HeaderDLQReason     = "Polyshop-Dlq-Reason"     // why it was dead-lettered (handler error)
	HeaderDLQStream     = "Polyshop-Dlq-Stream"     // stream the message came from
	HeaderDLQConsumer   = "Polyshop-Dlq-Consumer"   // durable consumer that gave up
	HeaderDLQDeliveries = "Polyshop-Dlq-Deliveries" // how many times it was delivered
	HeaderDLQSubject    = "Polyshop-Dlq-Subject"    // original subject
	HeaderDLQSequence   = "Polyshop-Dlq-Sequence"   // original stream sequence
	HeaderDLQMsgID      = "Polyshop-Dlq-Msg-Id"     // original Nats-Msg-Id
)

// Handler processes one event. Returning nil acknowledges the message. Returning an error
// asks for redelivery after a backoff, unless the error is Permanent (or wraps
// events.ErrInvalid), in which case the message goes to the dead-letter stream at once.
// Handlers must be idempotent: the same event may be delivered more than once.
type Handler func(ctx context.Context, e events.Envelope) error

// ConsumerSpec describes a durable pull consumer. Zero values take the documented defaults.
type ConsumerSpec struct {
	// Stream is the stream to consume, e.g. broker.StreamName("users").
	Stream string
	// Durable is the consumer's durable name; instances of a service sharing it share the
	// work. Conventionally "<service>-<purpose>", e.g. "search-users".
	Durable string
	// Subjects filters the stream; empty means every subject in it. List exact event
	// subjects rather than "<owner>.>" so new event types do not reach old handlers.
	Subjects []string
	// MaxDeliver is how many failed handler runs a message gets before it is dead-lettered
	// (default 5). Only runs this process saw fail count: a delivery lost to a crash or a
	// restart is not the message's fault, so a consumer that is killed again and again does
	// not dead-letter healthy messages (see DeliveryLimit for the backstop).
	MaxDeliver int
	// DeliveryLimit dead-letters a message after this many deliveries of any kind, failed
	// runs and lost ones alike (default 100): the backstop for a message that kills the
	// process itself, which no handler error ever reports.
	DeliveryLimit int
	// Backoff is the redelivery delay after the 1st, 2nd, … failed delivery; the last value
	// repeats (default 1s, 5s, 15s, 30s).
	Backoff []time.Duration
	// AckWait is how long the server waits for word from the holder of a message before it
	// delivers it again (default 10s). A running handler reports progress every AckWait/3,
	// so AckWait does not bound the handler (HandlerTimeout does): it bounds how long a
	// message held by a process that died (a crash, a SIGKILL) waits before another
	// delivery.
	AckWait time.Duration
	// HandlerTimeout is how long one handler run may take; its ctx ends then and the run
	// counts as failed (default 30s).
	HandlerTimeout time.Duration
	// DeliverNew starts a newly created consumer at the end of the stream instead of the
	// beginning. It has no effect on a consumer that already exists.
	DeliverNew bool
	// Concurrency is how many messages are handled at once (default 1). With 1 the consumer
	// has at most one unacknowledged message (MaxAckPending 1), so events are handled in
	// stream order and a failing event holds back the ones after it until it succeeds or is
	// dead-lettered. With more, order is not guaranteed; handlers then rely on per-aggregate
	// sequence checks (see package inbox).
	Concurrency int
}

// Default consumer settings.
var (
	DefaultMaxDeliver     = 5
	DefaultDeliveryLimit  = 100
	DefaultBackoff        = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}
	DefaultAckWait        = 10 * time.Second
	DefaultHandlerTimeout = 30 * time.Second
)

func (s ConsumerSpec) withDefaults() ConsumerSpec {
	if s.MaxDeliver <= 0 {
		s.MaxDeliver = DefaultMaxDeliver
	}
	if s.DeliveryLimit <= 0 {
		s.DeliveryLimit = DefaultDeliveryLimit
	}
	if s.DeliveryLimit < s.MaxDeliver {
		s.DeliveryLimit = s.MaxDeliver
	}
	if len(s.Backoff) == 0 {
		s.Backoff = DefaultBackoff
	}
	if s.AckWait <= 0 {
		s.AckWait = DefaultAckWait
	}
	if s.HandlerTimeout <= 0 {
		s.HandlerTimeout = DefaultHandlerTimeout
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 1
	}
	return s
}

func (s ConsumerSpec) backoff(delivered uint64) time.Duration {
	i := int(delivered) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s.Backoff) {
		i = len(s.Backoff) - 1
	}
	return s.Backoff[i]
}

// Subscription is a running consumer. Stop it before closing the connection.
type Subscription struct {
	c    *Conn
	spec ConsumerSpec
	h    Handler
	it   jetstream.MessagesContext
	wg   sync.WaitGroup
	once sync.Once
	done chan struct{}

	handled, failed, deadLettered atomic.Int64 // for metrics (ops.go)

	failures failureCounts // failed handler runs per stream sequence, this process's own
}

// failureCounts counts failed handler runs per message (by stream sequence) in this
// process. It is forgotten on a restart, which errs towards retrying: JetStream's delivery
// count cannot tell a failed run from a delivery lost to a crash.
type failureCounts struct {
	mu sync.Mutex
	m  map[uint64]int
}

// maxTracked bounds the map; past it the counts start over (more retries, never fewer).
const maxTracked = 10000

func (f *failureCounts) add(seq uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= maxTracked {
		f.m = make(map[uint64]int)
	}
	f.m[seq]++
	return f.m[seq]
}

func (f *failureCounts) forget(seq uint64) {
	f.mu.Lock()
	delete(f.m, seq)
	f.mu.Unlock()
}

// Consume creates (or updates) the durable pull consumer spec describes and handles its
// messages with h until Stop is called or ctx ends; ctx also bounds the set-up.
//
// Delivery semantics: explicit ack, at least once. A handler that returns nil has its
// message acknowledged, and the acknowledgement is confirmed by the server before the next
// message is taken (so Stop loses nothing it reported as done). An error is negatively
// acknowledged with the spec's backoff; on the MaxDeliver-th failed run (deliveries lost to a
// crash do not count; DeliveryLimit is their backstop), for a
// Permanent error, or for a body that is not a valid envelope, the message is published to
// "dlq.<service>.<subject>" (stream DLQ_<SERVICE>, see EnsureDLQ) with its original headers
// and the Polyshop-Dlq-* headers, then terminated. If that publish fails the message is
// redelivered later and dead-lettered again; nothing is dropped.
//
// The ctx passed to h carries e's correlation id, e.id as causation id, and a consumer
// span that is a child of the producer's traceparent. It is not cancelled by Stop, only by
// HandlerTimeout, so in-flight work finishes.
func (c *Conn) Consume(ctx context.Context, spec ConsumerSpec, h Handler) (*Subscription, error) {
	spec = spec.withDefaults()
	if spec.Stream == "" || spec.Durable == "" {
		return nil, errors.New("broker: consumer needs a stream and a durable name")
	}
	if h == nil {
		return nil, errors.New("broker: nil handler")
	}
	cfg := jetstream.ConsumerConfig{
		Durable:   spec.Durable,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   spec.AckWait,
		// The server's own limit stays unlimited: the handler code counts deliveries and
		// dead-letters at MaxDeliver, so a message whose dead-letter publish failed is
		// delivered again instead of being silently abandoned by the server. Backoff is
		// applied per Nak rather than as the consumer's BackOff, which would also shorten
		// the ack wait of a slow but healthy handler to the first backoff step.
		MaxDeliver:    -1,
		MaxAckPending: spec.Concurrency,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if spec.DeliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	switch len(spec.Subjects) {
	case 0:
	case 1:
		cfg.FilterSubject = spec.Subjects[0]
	default:
		cfg.FilterSubjects = spec.Subjects
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(spec.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", spec.Durable, err)
	}
	s := &Subscription{c: c, spec: spec, h: h, it: it, done: make(chan struct{})}
	c.track(s)
	base := context.WithoutCancel(ctx)
	for range spec.Concurrency {
		s.wg.Add(1)
		go s.work(base)
	}
	go func() {
		s.wg.Wait()
		c.untrack(s)
		close(s.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.drain()
		case <-s.done:
		}
	}()
	return s, nil
}

// Stop stops taking new messages, waits until the handlers in flight (and the messages
// already fetched) are done and acknowledged, and returns; or returns ctx's error if ctx
// ends first. Messages not yet fetched stay in the stream for the next start.
func (s *Subscription) Stop(ctx context.Context) error {
	s.drain()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop consumer %s: %w", s.spec.Durable, ctx.Err())
	}
}

// Durable returns the consumer's durable name.
func (s *Subscription) Durable() string { return s.spec.Durable }

func (s *Subscription) drain() { s.once.Do(s.it.Drain) }

func (s *Subscription) work(base context.Context) {
	defer s.wg.Done()
	for {
		msg, err := s.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// Missed heartbeats and similar are transient: the iterator re-issues its pulls.
			s.c.log.WarnContext(base, "consumer fetch", "consumer", s.spec.Durable, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.handle(base, msg)
	}
}

func (s *Subscription) handle(base context.Context, msg jetstream.Msg) {
	var delivered uint64 = 1
	var md *jetstream.MsgMetadata
	if m, err := msg.Metadata(); err == nil {
		md, delivered = m, m.NumDelivered
	}
	log := s.c.log.With("consumer", s.spec.Durable, "subject", msg.Subject(), "delivered", delivered)
	e, err := events.Parse(msg.Data())
	if err != nil {
		log.ErrorContext(base, "malformed envelope", "err", err)
		s.deadLetter(base, msg, md, delivered, fmt.Sprintf("malformed envelope: %v", err))
		return
	}
	var seq uint64
	if md != nil {
		seq = md.Sequence.Stream
	}
	if delivered > uint64(s.spec.DeliveryLimit) {
		// Delivered that often without a failure this process saw through to the end: the
		// message keeps killing the process, or every earlier dead-letter publish failed.
		s.deadLetter(base, msg, md, delivered, "exceeded max deliveries")
		return
	}

	ctx := e.Context(base)
	ctx, span := s.c.tracer().Start(ctx, msg.Subject()+" process",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(spanAttrs(msg.Subject(), e.ID)...))
	defer span.End()
	hctx, cancel := context.WithTimeout(ctx, s.spec.HandlerTimeout)
	stopBeat := s.inProgress(msg)
	err = call(hctx, s.h, e)
	stopBeat()
	cancel()
	s.count(err)

	failures := 0
	if err != nil && !IsPermanent(err) {
		failures = s.failures.add(seq)
	}
	switch {
	case err == nil:
		s.failures.forget(seq)
		if f := s.c.onHandled.Load(); f != nil {
			(*f)(s.spec.Durable, e) // chaos hook: a crash point between commit and ack
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := msg.DoubleAck(actx); err != nil {
			// The server redelivers after AckWait; the handler is idempotent.
			log.WarnContext(ctx, "ack not confirmed", "event_id", e.ID, "err", err)
		}
	case IsPermanent(err):
		span.SetStatus(codes.Error, err.Error())
		log.ErrorContext(ctx, "permanent handler error", "event_id", e.ID, "err", err)
		s.deadLetter(ctx, msg, md, delivered, err.Error())
	case failures >= s.spec.MaxDeliver || delivered >= uint64(s.spec.DeliveryLimit):
		span.SetStatus(codes.Error, err.Error())
		log.ErrorContext(ctx, "handler failed on last delivery", "event_id", e.ID, "failures", failures, "err", err)
		s.deadLetter(ctx, msg, md, delivered, err.Error())
	default:
		span.SetStatus(codes.Error, err.Error())
		delay := s.spec.backoff(uint64(failures))
		log.WarnContext(ctx, "handler failed; will retry", "event_id", e.ID, "retry_in", delay, "err", err)
		if err := msg.NakWithDelay(delay); err != nil {
			log.WarnContext(ctx, "nak", "err", err)
		}
	}
}

// inProgress tells the server every AckWait/3 that msg is still being handled, until the
// returned stop is called, so a handler may outlive AckWait without a second delivery. A
// timer, not a goroutine: most handlers end long before the first report is due.
func (s *Subscription) inProgress(msg jetstream.Msg) (stop func()) {
	every := max(s.spec.AckWait/3, time.Millisecond)
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock() // t is set before the first report can read it
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = msg.InProgress() // a lost one only risks a harmless second delivery
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// call runs h, turning a panic into an error so one bad event cannot kill the consumer.
func call(ctx context.Context, h Handler, e events.Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, e)
}

func (s *Subscription) deadLetter(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, delivered uint64, reason string) {
	hdr := nats.Header{}
	for k, v := range msg.Headers() {
		// Nats-* headers are instructions to the server (expectations, msg id, TTL); they
		// must not apply to the dead letter. The original id is kept under HeaderDLQMsgID.
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		hdr[k] = append([]string(nil), v...)
	}
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		hdr.Set(HeaderDLQMsgID, id)
	}
	hdr.Set(HeaderDLQReason, headerValue(reason))
	hdr.Set(HeaderDLQStream, s.spec.Stream)
	hdr.Set(HeaderDLQConsumer, s.spec.Durable)
	hdr.Set(HeaderDLQDeliveries, strconv.FormatUint(delivered, 10))
	hdr.Set(HeaderDLQSubject, msg.Subject())
	// The dead letter's own id makes a retried dead-letter publish idempotent while keeping
	// letters of different consumers for the same event apart.
	var msgID string
	if md != nil {
		hdr.Set(HeaderDLQSequence, strconv.FormatUint(md.Sequence.Stream, 10))
		msgID = fmt.Sprintf("%s:%d:%s", md.Stream, md.Sequence.Stream, s.spec.Durable)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.c.publish(pctx, DLQSubject(s.c.service, msg.Subject()), msgID, msg.Data(), hdr); err != nil {
		s.c.log.ErrorContext(ctx, "dead-letter publish failed; will retry", "consumer", s.spec.Durable, "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(s.spec.backoff(delivered))
		return
	}
	s.deadLettered.Add(1)
	if md != nil {
		s.failures.forget(md.Sequence.Stream)
	}
	if err := msg.Term(); err != nil {
		s.c.log.WarnContext(ctx, "term after dead-letter", "err", err)
	}
}

// headerValue keeps a header value on one line and of reasonable size.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that redelivery cannot fix, so the consumer dead-letters the
// message at once instead of retrying. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked with Permanent, or is a malformed-event error
// (events.ErrInvalid), anywhere in its chain.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrInvalid)
}
