package outbox

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/shared/events"
)

// Metric names a relay registers with WithMetrics; every series has the label
// outbox="<name>".
const (
	MetricBacklog       = "polyshop_outbox_backlog"                  // gauge: events not yet published (parked included)
	MetricOldestPending = "polyshop_outbox_oldest_pending_seconds"   // gauge: age of the oldest of them, 0 when none
	MetricParked        = "polyshop_outbox_parked"                   // gauge: parked events
	MetricPublish       = "polyshop_outbox_publish_duration_seconds" // histogram: one publish until the broker's ack
	MetricPublished     = "polyshop_outbox_published_total"          // counter: publishes the broker accepted
	MetricFailed        = "polyshop_outbox_publish_failures_total"   // counter: publishes that failed
)

// WithMetrics registers the relay's metrics on reg, labelled outbox=name (the service).
// Backlog, oldest pending age and parked count are read from the store (Operator.Stats)
// when reg is scraped, at most once every 2 seconds; stores that are not Operators report
// only the publish metrics.
func WithMetrics(reg prometheus.Registerer, name string) Option {
	return func(r *Relay) {
		m := newRelayMetrics(name, r)
		for _, c := range []prometheus.Collector{m.latency, m.published, m.failed, m} {
			if err := reg.Register(c); err != nil {
				r.log.Warn("outbox metrics not registered", "outbox", name, "err", err)
			}
		}
		r.metrics = m
	}
}

type relayMetrics struct {
	r         *Relay
	latency   prometheus.Histogram
	published prometheus.Counter
	failed    prometheus.Counter
	backlog   *prometheus.Desc
	oldest    *prometheus.Desc
	parked    *prometheus.Desc

	mu    sync.Mutex
	at    time.Time
	stats Stats
	err   error
}

func newRelayMetrics(name string, r *Relay) *relayMetrics {
	labels := prometheus.Labels{"outbox": name}
	return &relayMetrics{
		r: r,
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: MetricPublish, Help: "Time from handing an outbox event to the broker until its acknowledgement.",
			ConstLabels: labels, Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPublished, Help: "Outbox events the broker accepted.", ConstLabels: labels}),
		failed:    prometheus.NewCounter(prometheus.CounterOpts{Name: MetricFailed, Help: "Outbox event publishes that failed.", ConstLabels: labels}),
		backlog:   prometheus.NewDesc(MetricBacklog, "Outbox events not yet published, parked ones included.", nil, labels),
		oldest:    prometheus.NewDesc(MetricOldestPending, "Age of the oldest unpublished outbox event (0 when none).", nil, labels),
		parked:    prometheus.NewDesc(MetricParked, "Outbox events parked after repeated publish failures.", nil, labels),
	}
}

func (m *relayMetrics) publish(next func(context.Context, events.Envelope) error) func(context.Context, events.Envelope) error {
	return func(ctx context.Context, e events.Envelope) error {
		start := time.Now()
		err := next(ctx, e)
		m.latency.Observe(time.Since(start).Seconds())
		if err != nil {
			m.failed.Inc()
		} else {
			m.published.Inc()
		}
		return err
	}
}

func (m *relayMetrics) begin(next begin) begin {
	return func(ctx context.Context, it Item) (func(context.Context) error, bool, error) {
		start := time.Now()
		wait, malformed, err := next(ctx, it)
		if err != nil {
			m.failed.Inc()
			return nil, malformed, err
		}
		return func(ctx context.Context) error {
			err := wait(ctx)
			m.latency.Observe(time.Since(start).Seconds())
			if err != nil {
				m.failed.Inc()
			} else {
				m.published.Inc()
			}
			return err
		}, false, nil
	}
}

// Describe implements prometheus.Collector.
func (m *relayMetrics) Describe(ch chan<- *prometheus.Desc) {
	if _, ok := m.r.store.(Operator); ok {
		ch <- m.backlog
		ch <- m.oldest
		ch <- m.parked
	}
}

// Collect implements prometheus.Collector.
func (m *relayMetrics) Collect(ch chan<- prometheus.Metric) {
	op, ok := m.r.store.(Operator)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.at) >= 2*time.Second || m.err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		m.stats, m.err = op.Stats(ctx)
		cancel()
		m.at = time.Now()
	}
	if m.err != nil {
		ch <- prometheus.NewInvalidMetric(m.backlog, m.err)
		return
	}
	age := 0.0
	if !m.stats.Oldest.IsZero() {
		age = max(time.Since(m.stats.Oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(m.stats.Pending))
	ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(m.parked, prometheus.GaugeValue, float64(m.stats.Parked))
}
