package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

var errPoison = errors.New("poison: the broker refuses this event")

// collect returns a publish func that records what it is handed and fails events of the
// aggregates in fail.
func collect(handed *[]string, fail ...string) func(context.Context, events.Envelope) error {
	return func(_ context.Context, e events.Envelope) error {
		*handed = append(*handed, e.ID)
		if slices.Contains(fail, e.Subject) {
			return errPoison
		}
		return nil
	}
}

// drainUntil drains store until it hands out something, or fails the test at the bound.
func drainUntil(t *testing.T, store outbox.Store, publish func(context.Context, events.Envelope) error, handed *[]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(*handed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing handed out within 20s")
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := store.Drain(context.Background(), 10, publish); err != nil && !errors.Is(err, outbox.ErrNotPublished) {
			t.Fatal(err)
		}
	}
}

func sorted(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

// A failing event holds its aggregate (and only it) until its retry time; after
// ParkAfter failures it is parked, listed, counted and no longer tried, until Rearm.
func testPark(t *testing.T, s *suite) {
	ctx := context.Background()
	a1, a2, b1, b2 := s.event(t, "a", 1), s.event(t, "a", 2), s.event(t, "b", 1), s.event(t, "b", 2)
	s.commit(t, a1, a2)
	s.commit(t, b1)
	store := s.store(t, outbox.Policy{ParkAfter: 2, RetryMin: 300 * time.Millisecond, RetryMax: 300 * time.Millisecond})

	var handed []string
	n, err := store.Drain(ctx, 10, collect(&handed, "a"))
	if !errors.Is(err, outbox.ErrNotPublished) || n != 1 {
		t.Errorf("first Drain = %d, %v; want 1 and ErrNotPublished", n, err)
	}
	if diff := cmp.Diff(sorted(handed), sorted([]string{a1.ID, b1.ID})); diff != "" {
		t.Errorf("first drain handed (-got +want):\n%s", diff)
	}

	// At once: a is held, b goes on.
	s.commit(t, b2)
	handed = nil
	if n, err := store.Drain(ctx, 10, collect(&handed, "a")); n != 1 || err != nil {
		t.Errorf("Drain while a waits = %d, %v; want 1, nil", n, err)
	}
	if diff := cmp.Diff(handed, []string{b2.ID}); diff != "" {
		t.Errorf("drain while a waits handed (-got +want): a must wait for its retry time\n%s", diff)
	}

	// After the retry time a1 is tried again; its second failure parks it.
	handed = nil
	drainUntil(t, store, collect(&handed, "a"), &handed)
	if diff := cmp.Diff(handed, []string{a1.ID}); diff != "" {
		t.Errorf("retry handed (-got +want):\n%s", diff)
	}
	parked, err := store.Parked(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range parked {
		if parked[i].ParkedAt.IsZero() || !strings.Contains(parked[i].LastError, errPoison.Error()) {
			t.Errorf("parked event %+v: want a parking time and the last error", parked[i])
		}
		parked[i].ParkedAt, parked[i].LastError = time.Time{}, ""
	}
	want := []outbox.Parked{{ID: a1.ID, Aggregate: "a", Type: a1.Type, Attempts: 2}}
	if diff := cmp.Diff(parked, want); diff != "" {
		t.Errorf("Parked (-got +want):\n%s", diff)
	}
	st, err := store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 2 || st.Parked != 1 || st.Oldest.IsZero() {
		t.Errorf("Stats = %+v; want 2 pending, 1 parked, an oldest time", st)
	}

	// Parked stays parked, however long one waits.
	time.Sleep(400 * time.Millisecond)
	handed = nil
	if n, err := store.Drain(ctx, 10, collect(&handed)); n != 0 || err != nil || len(handed) != 0 {
		t.Errorf("Drain with a parked = %d, %v, handed %v; want nothing", n, err, handed)
	}

	rearms := []struct {
		id   string
		want error
	}{
		{uuid.NewString(), outbox.ErrNotParked},
		{"not-a-uuid", outbox.ErrNotParked},
		{b1.ID, outbox.ErrNotParked}, // published, not parked
		{a1.ID, nil},
		{a1.ID, outbox.ErrNotParked}, // already re-armed
	}
	for _, r := range rearms {
		if err := store.Rearm(ctx, r.id); !errors.Is(err, r.want) {
			t.Errorf("Rearm(%s) = %v, want %v", r.id, err, r.want)
		}
	}
	handed = nil
	if n, err := store.Drain(ctx, 10, collect(&handed)); n != 2 || err != nil {
		t.Errorf("Drain after Rearm = %d, %v; want 2, nil", n, err)
	}
	if diff := cmp.Diff(handed, []string{a1.ID, a2.ID}); diff != "" {
		t.Errorf("after Rearm (-got +want):\n%s", diff)
	}
	st, err = store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, outbox.Stats{}); diff != "" {
		t.Errorf("Stats after everything was sent (-got +want):\n%s", diff)
	}
}

// A drain in which every aggregate fails and nothing is published looks like a broker
// outage: nothing is recorded against the events, so none waits or is parked for it.
func testOutage(t *testing.T, s *suite) {
	ctx := context.Background()
	c1, d1 := s.event(t, "c", 1), s.event(t, "d", 1)
	s.commit(t, c1)
	s.commit(t, d1)
	store := s.store(t, outbox.Policy{ParkAfter: 1, RetryMin: time.Hour, RetryMax: time.Hour})
	for range 3 {
		var handed []string
		if n, err := store.Drain(ctx, 10, collect(&handed, "c", "d")); n != 0 || !errors.Is(err, outbox.ErrNotPublished) {
			t.Fatalf("Drain during the outage = %d, %v; want 0, ErrNotPublished", n, err)
		}
		if diff := cmp.Diff(sorted(handed), sorted([]string{c1.ID, d1.ID})); diff != "" {
			t.Errorf("during the outage (-got +want): both are tried every time\n%s", diff)
		}
	}
	if p, err := store.Parked(ctx, 10); err != nil || len(p) != 0 {
		t.Errorf("Parked after an outage = %v, %v; want none", p, err)
	}
	var handed []string
	if n, err := store.Drain(ctx, 10, collect(&handed)); n != 2 || err != nil {
		t.Errorf("Drain after the outage = %d, %v; want 2, nil", n, err)
	}
}

// poisonPublisher publishes to the broker but refuses aggregate "poison" until healed.
type poisonPublisher struct {
	s      *suite
	healed atomic.Bool
}

func (p *poisonPublisher) Publish(ctx context.Context, e events.Envelope) error {
	if e.Subject == "poison" && !p.healed.Load() {
		return errPoison
	}
	return p.s.c.Publish(ctx, e)
}

// One event that can never be published: every other aggregate's events (1,000 of them)
// are delivered, in order, within a generous bound; the poison event is parked, its
// aggregate's later event waits behind it, and a re-arm delivers both in order.
func testPoison(t *testing.T, s *suite) {
	const aggs, perAgg = 100, 10
	ctx := context.Background()
	p1, p2 := s.event(t, "poison", 1), s.event(t, "poison", 2)
	s.commit(t, p1)
	s.commit(t, p2)
	store := s.store(t, outbox.Policy{ParkAfter: 3, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	pub := &poisonPublisher{s: s}
	runRelay(t, store, pub, outbox.WithBatch(50))
	for a := range aggs {
		agg := fmt.Sprintf("agg%03d", a)
		evs := make([]events.Envelope, perAgg)
		for i := range evs {
			evs[i] = s.event(t, agg, int64(i+1))
		}
		s.commit(t, evs...)
	}

	got := map[string][]int64{}
	for _, e := range s.publishedWithin(t, aggs*perAgg, 3*time.Minute) {
		got[e.Subject] = append(got[e.Subject], e.Sequence)
	}
	want := map[string][]int64{}
	for a := range aggs {
		for i := range perAgg {
			want[fmt.Sprintf("agg%03d", a)] = append(want[fmt.Sprintf("agg%03d", a)], int64(i+1))
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("delivered per aggregate (-got +want): the poison aggregate must not appear\n%s", diff)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		parked, err := store.Parked(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(parked) == 1 && parked[0].ID == p1.ID && parked[0].Attempts == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Parked = %+v; want %s after 3 attempts", parked, p1.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}

	pub.healed.Store(true)
	if err := store.Rearm(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	all := s.publishedWithin(t, aggs*perAgg+2, time.Minute)
	var tail []string
	for _, e := range all {
		if e.Subject == "poison" {
			tail = append(tail, e.ID)
		}
	}
	if diff := cmp.Diff(tail, []string{p1.ID, p2.ID}); diff != "" {
		t.Errorf("poison aggregate after re-arm (-got +want):\n%s", diff)
	}
}

// Prune removes what published events leave behind and never a pending or parked event.
func testPrune(t *testing.T, s *suite) {
	if s.f.Footprint == nil {
		t.Skip("the harness has no Footprint")
	}
	ctx := context.Background()
	s.history(t, []string{"r1", "r2", "r3"}, 5, 5)
	p1, p2 := s.event(t, "poison", 1), s.event(t, "poison", 2)
	s.commit(t, p1, p2)
	store := s.store(t, outbox.Policy{ParkAfter: 1})
	for {
		var handed []string
		n, err := store.Drain(ctx, 4, collect(&handed, "poison"))
		if err != nil && !errors.Is(err, outbox.ErrNotPublished) {
			t.Fatal(err)
		}
		if n == 0 && len(handed) == 0 {
			break
		}
	}
	footprint := func() int {
		t.Helper()
		n, err := s.f.Footprint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := footprint()
	if _, err := store.Prune(ctx, time.Hour, 4); err != nil {
		t.Fatal(err)
	}
	if got := footprint(); got != before {
		t.Errorf("footprint after Prune(1h) = %d, want %d (nothing is an hour old)", got, before)
	}
	if _, err := store.Prune(ctx, 0, 4); err != nil {
		t.Fatal(err)
	}
	if got := footprint(); got != 2 {
		t.Errorf("footprint after Prune(0) = %d, want 2 (the parked event and the one behind it)", got)
	}
	if err := store.Rearm(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	var handed []string
	if n, err := store.Drain(ctx, 10, collect(&handed)); n != 2 || err != nil {
		t.Errorf("Drain after Prune and Rearm = %d, %v; want 2, nil", n, err)
	}
	if diff := cmp.Diff(handed, []string{p1.ID, p2.ID}); diff != "" {
		t.Errorf("after Prune and Rearm (-got +want):\n%s", diff)
	}
	if _, err := store.Prune(ctx, 0, 4); err != nil {
		t.Fatal(err)
	}
	if got := footprint(); got != 0 {
		t.Errorf("footprint after everything was sent and pruned = %d, want 0", got)
	}
}

// gauge reads one series of a registry.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetType() {
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitMetric waits (bounded) until name's value is want.
func waitMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := gauge(t, reg, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 60s, want %v", name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The relay's metrics follow the outbox: backlog and oldest age before the relay runs,
// publishes, failures and the parked count while it runs, all back to 0 after a re-arm.
func testMetrics(t *testing.T, s *suite) {
	reg := prometheus.NewRegistry()
	s.history(t, []string{"m1", "m2"}, 3, 3)
	s.commit(t, s.event(t, "poison", 1))
	store := s.store(t, outbox.Policy{})
	pub := &poisonPublisher{s: s}
	r := outbox.NewRelay(store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)), outbox.WithMetrics(reg, "test"),
		outbox.WithParkAfter(2), outbox.WithRetry(10*time.Millisecond, 10*time.Millisecond), outbox.WithInterval(50*time.Millisecond))

	// Before the relay runs: everything is pending, the oldest has an age.
	waitMetric(t, reg, outbox.MetricBacklog, 7)
	if age := gauge(t, reg, outbox.MetricOldestPending); age <= 0 {
		t.Errorf("%s = %v before the relay ran, want > 0", outbox.MetricOldestPending, age)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitMetric(t, reg, outbox.MetricParked, 1)
	waitMetric(t, reg, outbox.MetricBacklog, 1)
	waitMetric(t, reg, outbox.MetricPublished, 6)
	waitMetric(t, reg, outbox.MetricFailed, 2)
	if n := gauge(t, reg, outbox.MetricPublish); n != 8 {
		t.Errorf("%s sample count = %v, want 8 (6 published, 2 failed)", outbox.MetricPublish, n)
	}
	pub.healed.Store(true)
	parked, err := store.Parked(context.Background(), 10)
	if err != nil || len(parked) != 1 {
		t.Fatalf("Parked = %v, %v", parked, err)
	}
	if err := store.Rearm(context.Background(), parked[0].ID); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, reg, outbox.MetricParked, 0)
	waitMetric(t, reg, outbox.MetricBacklog, 0)
	waitMetric(t, reg, outbox.MetricOldestPending, 0)
	waitMetric(t, reg, outbox.MetricPublished, 7)
}
