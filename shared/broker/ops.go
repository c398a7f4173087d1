package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/events"
)

func (c *Conn) track(s *Subscription) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.subs = append(c.subs, s)
}

func (c *Conn) untrack(s *Subscription) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.subs = slices.DeleteFunc(c.subs, func(x *Subscription) bool { return x == s })
}

func (c *Conn) subscriptions() []*Subscription {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	return slices.Clone(c.subs)
}

func (s *Subscription) count(err error) {
	if err == nil {
		s.handled.Add(1)
	} else {
		s.failed.Add(1)
	}
}

// DeadLetter is one message of this service's dead-letter stream.
type DeadLetter struct {
	// Seq is the letter's sequence in DLQ_<SERVICE>: the id the operator API uses.
	Seq        uint64    `json:"seq"`
	Subject    string    `json:"subject"` // the original subject
	Stream     string    `json:"stream"`  // the original stream
	StreamSeq  uint64    `json:"streamSeq,omitempty"`
	Consumer   string    `json:"consumer"` // durable that gave up
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	EventID    string    `json:"eventId,omitempty"`
	Type       string    `json:"type,omitempty"`
	Time       time.Time `json:"deadLetteredAt"`
	// Data is the original message body; only DeadLetter (one letter) fills it.
	Data json.RawMessage `json:"data,omitempty"`
}

// ErrNoDeadLetter is returned for a sequence that is not a dead letter of this service.
var ErrNoDeadLetter = errors.New("broker: no such dead letter")

// ErrNoConsumer is returned by ReplayDeadLetter when the consumer that gave up on the
// letter is not running in this process, so there is no handler to replay it through.
var ErrNoConsumer = errors.New("broker: the letter's consumer is not running here")

func letter(raw *jetstream.RawStreamMsg, withData bool) DeadLetter {
	d := DeadLetter{
		Seq: raw.Sequence, Subject: raw.Header.Get(HeaderDLQSubject), Stream: raw.Header.Get(HeaderDLQStream),
		Consumer: raw.Header.Get(HeaderDLQConsumer), Reason: raw.Header.Get(HeaderDLQReason), Time: raw.Time.UTC(),
	}
	d.StreamSeq, _ = strconv.ParseUint(raw.Header.Get(HeaderDLQSequence), 10, 64)
	d.Deliveries, _ = strconv.Atoi(raw.Header.Get(HeaderDLQDeliveries))
	if e, err := events.Parse(raw.Data); err == nil {
		d.EventID, d.Type = e.ID, e.Type
	}
	if withData {
		if json.Valid(raw.Data) {
			d.Data = json.RawMessage(raw.Data)
		} else {
			b, _ := json.Marshal(string(raw.Data))
			d.Data = b
		}
	}
	return d
}

// DeadLetters lists up to limit dead letters of this service with a sequence after
// after, oldest first. A missing DLQ stream has no letters.
func (c *Conn) DeadLetters(ctx context.Context, after uint64, limit int) ([]DeadLetter, error) {
	stream, err := c.js.Stream(ctx, DLQStream(c.service))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return []DeadLetter{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	out := []DeadLetter{}
	for seq := after + 1; len(out) < limit; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("dlq."+c.service+".>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dead letters after %d: %w", seq, err)
		}
		out = append(out, letter(raw, false))
		seq = raw.Sequence + 1
	}
	return out, nil
}

// DeadLetter returns the dead letter seq with its body, or ErrNoDeadLetter.
func (c *Conn) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	raw, err := c.rawLetter(ctx, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	return letter(raw, true), nil
}

func (c *Conn) rawLetter(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	stream, err := c.js.Stream(ctx, DLQStream(c.service))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoDeadLetter
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNoDeadLetter
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return raw, nil
}

// DropDeadLetter deletes the dead letter seq without handling it, or returns
// ErrNoDeadLetter.
func (c *Conn) DropDeadLetter(ctx context.Context, seq uint64) error {
	stream, err := c.js.Stream(ctx, DLQStream(c.service))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ErrNoDeadLetter
	}
	if err != nil {
		return fmt.Errorf("drop dead letter %d: %w", seq, err)
	}
	err = stream.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return ErrNoDeadLetter
	}
	if err != nil {
		return fmt.Errorf("drop dead letter %d: %w", seq, err)
	}
	return nil
}

// ReplayDeadLetter hands the dead letter seq to the handler of the running consumer named
// in its Polyshop-Dlq-Consumer header and deletes the letter once the handler returns nil
// (see Conn.ReplayDLQ for why replay goes through the handler). It returns
// ErrNoDeadLetter, ErrNoConsumer when that consumer is not running in this process, a
// handler's error (the letter stays), or events.ErrInvalid for a malformed body.
func (c *Conn) ReplayDeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	raw, err := c.rawLetter(ctx, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	d := letter(raw, false)
	var sub *Subscription
	for _, s := range c.subscriptions() {
		if s.spec.Durable == d.Consumer {
			sub = s
			break
		}
	}
	if sub == nil {
		return d, fmt.Errorf("replay dead letter %d: consumer %q: %w", seq, d.Consumer, ErrNoConsumer)
	}
	e, err := events.Parse(raw.Data)
	if err != nil {
		return d, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	hctx, span := c.tracer().Start(e.Context(ctx), raw.Subject+" replay",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(spanAttrs(raw.Subject, e.ID)...))
	err = call(hctx, sub.h, e)
	span.End()
	if err != nil {
		return d, fmt.Errorf("replay dead letter %d (event %s): %w", seq, e.ID, err)
	}
	return d, c.DropDeadLetter(ctx, seq)
}

// Metric names of Conn.Metrics; consumer series have the labels stream and consumer.
const (
	MetricConsumerPending     = "polyshop_consumer_pending"             // gauge: messages not yet delivered
	MetricConsumerAckPending  = "polyshop_consumer_ack_pending"         // gauge: delivered, not yet acknowledged
	MetricConsumerRedelivered = "polyshop_consumer_redelivered"         // gauge: delivered more than once, not yet acknowledged
	MetricConsumerHandled     = "polyshop_consumer_handled_total"       // counter: handler runs that returned nil
	MetricConsumerFailed      = "polyshop_consumer_failed_total"        // counter: handler runs that returned an error
	MetricConsumerDead        = "polyshop_consumer_dead_lettered_total" // counter: messages this process dead-lettered
	MetricDLQDepth            = "polyshop_dlq_depth"                    // gauge: letters in DLQ_<SERVICE> (label service)
)

// Metrics returns a collector of the consumers running on c (those started by Consume,
// until they stop) and of this service's dead-letter stream. Consumer figures come from
// JetStream's consumer info, fetched when the registry is scraped (at most every 2
// seconds, 3 seconds at most per fetch). Register it once per connection:
// reg.MustRegister(nc.Metrics()).
func (c *Conn) Metrics() prometheus.Collector { return &connMetrics{c: c} }

type connMetrics struct {
	c  *Conn
	mu sync.Mutex
	at time.Time
	ms []prometheus.Metric
}

var (
	consLabels       = []string{"stream", "consumer"}
	descPending      = prometheus.NewDesc(MetricConsumerPending, "JetStream messages not yet delivered to the consumer.", consLabels, nil)
	descAckPending   = prometheus.NewDesc(MetricConsumerAckPending, "Messages delivered to the consumer and not yet acknowledged.", consLabels, nil)
	descRedelivered  = prometheus.NewDesc(MetricConsumerRedelivered, "Unacknowledged messages that were delivered more than once.", consLabels, nil)
	descHandled      = prometheus.NewDesc(MetricConsumerHandled, "Handler runs of this process that returned nil.", consLabels, nil)
	descFailed       = prometheus.NewDesc(MetricConsumerFailed, "Handler runs of this process that returned an error.", consLabels, nil)
	descDeadLettered = prometheus.NewDesc(MetricConsumerDead, "Messages this process sent to the dead-letter stream.", consLabels, nil)
	descDLQDepth     = prometheus.NewDesc(MetricDLQDepth, "Dead letters waiting in the service's DLQ stream.", []string{"service"}, nil)
)

// Describe implements prometheus.Collector.
func (m *connMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descAckPending, descRedelivered, descHandled, descFailed, descDeadLettered, descDLQDepth} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *connMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.at) >= 2*time.Second {
		m.ms = m.fetch()
		m.at = time.Now()
	}
	for _, x := range m.ms {
		ch <- x
	}
	// Process counters are always current.
	for _, s := range m.c.subscriptions() {
		lv := []string{s.spec.Stream, s.spec.Durable}
		ch <- prometheus.MustNewConstMetric(descHandled, prometheus.CounterValue, float64(s.handled.Load()), lv...)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(s.failed.Load()), lv...)
		ch <- prometheus.MustNewConstMetric(descDeadLettered, prometheus.CounterValue, float64(s.deadLettered.Load()), lv...)
	}
}

func (m *connMetrics) fetch() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out []prometheus.Metric
	seen := map[[2]string]bool{}
	for _, s := range m.c.subscriptions() {
		key := [2]string{s.spec.Stream, s.spec.Durable}
		if seen[key] {
			continue
		}
		seen[key] = true
		lv := key[:]
		cons, err := m.c.js.Consumer(ctx, s.spec.Stream, s.spec.Durable)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(ctx)
		}
		if err != nil {
			out = append(out, prometheus.NewInvalidMetric(descPending, fmt.Errorf("consumer %s: %w", s.spec.Durable, err)))
			continue
		}
		out = append(out,
			prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(info.NumPending), lv...),
			prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, float64(info.NumAckPending), lv...),
			prometheus.MustNewConstMetric(descRedelivered, prometheus.GaugeValue, float64(info.NumRedelivered), lv...))
	}
	stream, err := m.c.js.Stream(ctx, DLQStream(m.c.service))
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		out = append(out, prometheus.MustNewConstMetric(descDLQDepth, prometheus.GaugeValue, 0, m.c.service))
	case err != nil:
		out = append(out, prometheus.NewInvalidMetric(descDLQDepth, fmt.Errorf("dlq stream: %w", err)))
	default:
		// Stream returns the info it fetched; messages under the service's DLQ subjects.
		out = append(out, prometheus.MustNewConstMetric(descDLQDepth, prometheus.GaugeValue, float64(stream.CachedInfo().State.Msgs), m.c.service))
	}
	return out
}
