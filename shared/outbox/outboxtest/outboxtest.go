// Package outboxtest is the contract suite every outbox adapter runs: one set of tests,
// against a real NATS JetStream, proving what outbox.Store promises. An adapter's test
// calls Run with a Harness that knows how to set up an empty outbox and commit events
// through the adapter's write side.
package outboxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/inbox/pginbox"
	"polyshop/shared/outbox"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

// Harness adapts one outbox implementation to the suite.
type Harness struct {
	// Owner is the service whose events the adapter stores ("users", "catalog",
	// "sessions"). The suite publishes them as the test user into Owner's test stream
	// (TEST_<OWNER>, see testenv/natstest), never into the live one.
	Owner string
	// New prepares an empty outbox private to the calling test and returns its Fixture.
	New func(t *testing.T) Fixture
}

// Fixture is one empty outbox, private to a test.
type Fixture struct {
	// NewStore returns a Store over the outbox; each call is another relay's view of the
	// same outbox (another process).
	NewStore func() outbox.Store
	// Commit writes evs, which all belong to one aggregate, in one atomic unit with a
	// state change, through the adapter's write side.
	Commit func(ctx context.Context, evs ...events.Envelope) error
	// WakesOnCommit says that Wait returns promptly after a commit; otherwise the suite
	// only checks that Wait returns after its timeout.
	WakesOnCommit bool
	// Footprint counts what the outbox still stores: events (pending or published, not
	// yet pruned) and their failure records. The retention test expects it to equal the
	// pending events after Prune with retention 0.
	Footprint func(ctx context.Context) (int, error)
}

// Run runs the contract suite against h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"PublishesEveryEventOnce", testExactlyOnce},
		{"RepublishesAfterCrashAndConsumerAppliesOnce", testCrashBetweenPublishAndMark},
		{"KeepsOrderPerAggregateWithTwoRelays", testOrderTwoRelays},
		{"RelayOverBrokerConnSendsStoredEnvelopesInOrder", testRelayOverConn},
		{"FailedPublishStaysPendingAndBlocksItsAggregate", testFailedPublish},
		{"WindowFailedAckDoesNotReorder", testWindowFailedAck},
		{"DrainRespectsLimit", testLimit},
		{"Wait", testWait},
		{"FailingEventIsHeldThenParkedAndRearmed", testPark},
		{"BrokerOutageIsNotCountedAgainstEvents", testOutage},
		{"OnePoisonEventThousandOthersDelivered", testPoison},
		{"PruneKeepsPendingAndParked", testPrune},
		{"MetricsMove", testMetrics},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newSuite(t, h))
		})
	}
}

// suite is the per-test state: a fresh outbox, a broker connection and an event type (so
// a NATS subject) of the test's own.
type suite struct {
	h   Harness
	f   Fixture
	c   *broker.Conn
	typ string
}

// store returns another relay's view of the outbox with policy p. The older tests use
// noRetryDelay: a failed event is retried at the next drain and never parked.
func (s *suite) store(t *testing.T, p outbox.Policy) outbox.Operator {
	t.Helper()
	st, ok := s.f.NewStore().(outbox.Operator)
	if !ok {
		t.Fatal("the adapter's Store does not implement outbox.Operator")
	}
	st.SetPolicy(p)
	return st
}

var noRetryDelay = outbox.Policy{}

func newSuite(t *testing.T, h Harness) *suite {
	t.Helper()
	c := natstest.TestConn(t)
	natstest.Stream(t, c, h.Owner)
	return &suite{h: h, f: h.New(t), c: c, typ: natstest.EventType(t, h.Owner)}
}

func (s *suite) subject() string { return events.SubjectFor(s.typ) }

// event returns the event of aggregate agg at version seq.
func (s *suite) event(t *testing.T, agg string, seq int64) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), s.typ, agg, seq, json.RawMessage(fmt.Sprintf(`{"aggregate":%q,"seq":%d}`, agg, seq)))
	if err != nil {
		t.Fatalf("events.New: %v", err)
	}
	return e
}

func (s *suite) commit(t *testing.T, evs ...events.Envelope) {
	t.Helper()
	if err := s.f.Commit(context.Background(), evs...); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// history commits n events for each of aggs, k events per commit, and returns them by
// aggregate.
func (s *suite) history(t *testing.T, aggs []string, n, k int) map[string][]events.Envelope {
	t.Helper()
	out := map[string][]events.Envelope{}
	for _, a := range aggs {
		for i := 1; i <= n; i++ {
			out[a] = append(out[a], s.event(t, a, int64(i)))
		}
	}
	for i := 0; i < n; i += k {
		for _, a := range aggs {
			s.commit(t, out[a][i:min(i+k, n)]...)
		}
	}
	return out
}

// countingPublisher publishes to the broker and counts hand-outs per event id.
type countingPublisher struct {
	c     *broker.Conn
	mu    sync.Mutex
	count map[string]int
}

func (p *countingPublisher) Publish(ctx context.Context, e events.Envelope) error {
	p.mu.Lock()
	if p.count == nil {
		p.count = map[string]int{}
	}
	p.count[e.ID]++
	p.mu.Unlock()
	return p.c.Publish(ctx, e)
}

// runRelay runs a relay until the test ends.
func runRelay(t *testing.T, store outbox.Store, pub outbox.Publisher, opts ...outbox.Option) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := outbox.NewRelay(store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)), append([]outbox.Option{
		outbox.WithBatch(7), outbox.WithInterval(50 * time.Millisecond), outbox.WithBackoff(10*time.Millisecond, 100*time.Millisecond)},
		opts...)...)
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("Relay.Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// published waits until the test's subject holds want messages in its stream (and a
// moment longer, to catch extras) and returns them in stream order.
func (s *suite) published(t *testing.T, want int) []events.Envelope {
	t.Helper()
	return s.publishedWithin(t, want, 30*time.Second)
}

func (s *suite) publishedWithin(t *testing.T, want int, bound time.Duration) []events.Envelope {
	t.Helper()
	var got []events.Envelope
	for _, m := range s.publishedMessages(t, want, bound) {
		e, err := events.Parse(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", m.Sequence, err)
		}
		got = append(got, e)
	}
	return got
}

// publishedMessages is published's stream messages as they are, headers included.
func (s *suite) publishedMessages(t *testing.T, want int, bound time.Duration) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	stream, err := s.c.JetStream().Stream(ctx, natstest.StreamName(s.h.Owner))
	if err != nil {
		t.Fatal(err)
	}
	var got []*jetstream.RawStreamMsg
	seq := uint64(1)
	deadline := time.Now().Add(bound)
	settle := time.Time{}
	for {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(s.subject()))
		switch {
		case err == nil:
			got = append(got, m)
			seq = m.Sequence + 1
			continue
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			t.Fatalf("read stream: %v", err)
		}
		if len(got) >= want {
			if settle.IsZero() {
				settle = time.Now().Add(300 * time.Millisecond)
			} else if time.Now().After(settle) {
				return got
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("stream has %d of %d events after %v", len(got), want, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameJSON compares JSON by value: a store may keep an envelope's data in another layout
// (PostgreSQL's jsonb spaces it out).
var sameJSON = cmp.Transformer("json", func(m json.RawMessage) any {
	var v any
	if err := json.Unmarshal(m, &v); err != nil {
		return string(m)
	}
	return v
})

func ids(evs []events.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func allIDs(byAgg map[string][]events.Envelope) []string {
	var out []string
	for _, evs := range byAgg {
		out = append(out, ids(evs)...)
	}
	slices.Sort(out)
	return out
}

// (a) Every committed event reaches the stream exactly once, and the relay hands each to
// the broker once when nothing fails.
func testExactlyOnce(t *testing.T, s *suite) {
	byAgg := s.history(t, []string{"a", "b", "c"}, 6, 2)
	pub := &countingPublisher{c: s.c}
	runRelay(t, s.store(t, noRetryDelay), pub)

	got := ids(s.published(t, 18))
	slices.Sort(got)
	if diff := cmp.Diff(got, allIDs(byAgg)); diff != "" {
		t.Errorf("stream ids (-got +want):\n%s", diff)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for id, n := range pub.count {
		if n != 1 {
			t.Errorf("event %s handed to the broker %d times, want 1", id, n)
		}
	}
	if n, err := s.store(t, noRetryDelay).Drain(context.Background(), 100, failPublish); n != 0 || err != nil {
		t.Errorf("Drain after everything was sent = %d, %v; want 0, nil", n, err)
	}
}

func failPublish(context.Context, events.Envelope) error { return errors.New("must not be called") }

// (b) A relay that dies after publishing but before marking publishes again; JetStream
// drops the copy, and a consumer using pginbox applies a later redelivery once.
func testCrashBetweenPublishAndMark(t *testing.T, s *suite) {
	crashes := []struct {
		name    string
		publish func(ctx context.Context, cancel context.CancelFunc, e events.Envelope) error
	}{
		{"publish returns an error", func(ctx context.Context, _ context.CancelFunc, e events.Envelope) error {
			if err := s.c.Publish(ctx, e); err != nil {
				return err
			}
			return errors.New("lost the ack")
		}},
		{"context cancelled before the mark", func(ctx context.Context, cancel context.CancelFunc, e events.Envelope) error {
			err := s.c.Publish(ctx, e)
			cancel()
			return err
		}},
	}
	var all []events.Envelope
	for i, crash := range crashes {
		agg := fmt.Sprintf("crash%d", i)
		evs := []events.Envelope{s.event(t, agg, 1), s.event(t, agg, 2)}
		s.commit(t, evs...)
		all = append(all, evs...)
		ctx, cancel := context.WithCancel(context.Background())
		_, _ = s.store(t, noRetryDelay).Drain(ctx, 10, func(ctx context.Context, e events.Envelope) error {
			return crash.publish(ctx, cancel, e)
		})
		cancel()
	}
	// Both crashed drains published their aggregate's first event; the next drain sends
	// everything again, in order.
	var again []string
	n, err := s.store(t, noRetryDelay).Drain(context.Background(), 10, func(ctx context.Context, e events.Envelope) error {
		again = append(again, e.ID)
		return s.c.Publish(ctx, e)
	})
	if err != nil || n != len(all) {
		t.Fatalf("Drain after crash = %d, %v; want %d, nil", n, err, len(all))
	}
	slices.Sort(again)
	wantIDs := ids(all)
	slices.Sort(wantIDs)
	if diff := cmp.Diff(again, wantIDs); diff != "" {
		t.Errorf("republished (-got +want):\n%s", diff)
	}
	got := ids(s.published(t, len(all)))
	slices.Sort(got)
	if diff := cmp.Diff(got, wantIDs); diff != "" {
		t.Errorf("stream after republish (-got +want): JetStream must drop the copies\n%s", diff)
	}

	// Past the duplicate window a republish is a new message; the consumer's inbox drops it.
	dup, err := json.Marshal(all[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.c.PublishRaw(context.Background(), s.subject(), all[0].ID+":late", dup, nats.Header{}); err != nil {
		t.Fatal(err)
	}
	applied := consumeWithInbox(t, s, len(all)+1)
	if diff := cmp.Diff(applied, wantIDs); diff != "" {
		t.Errorf("applied by the consumer (-got +want):\n%s", diff)
	}
}

// consumeWithInbox consumes the test's subject with a pginbox-guarded handler until it has
// seen deliveries messages and returns the ids it applied, sorted.
func consumeWithInbox(t *testing.T, s *suite, deliveries int) []string {
	t.Helper()
	ctx := context.Background()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pginbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE applied (event_id uuid PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{}, deliveries+10)
	stream := natstest.StreamName(s.h.Owner)
	spec := broker.ConsumerSpec{
		Stream: stream, Durable: natstest.Durable(t, s.c, stream, "outboxtest"),
		Subjects: []string{s.subject()}, Backoff: []time.Duration{50 * time.Millisecond},
	}
	sub, err := s.c.Consume(ctx, spec, func(ctx context.Context, e events.Envelope) error {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			first, err := pginbox.Claim(ctx, tx, spec.Durable, e)
			if err != nil || !first {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO applied VALUES ($1)`, e.ID)
			return err
		})
		seen <- struct{}{}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for range deliveries {
		select {
		case <-seen:
		case <-time.After(30 * time.Second):
			t.Fatal("consumer did not see every delivery")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sub.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT event_id::text FROM applied ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// (c) With two relays running while events are committed, each aggregate's events reach
// the stream in sequence order.
func testOrderTwoRelays(t *testing.T, s *suite) {
	const perAgg = 15
	aggs := []string{"o1", "o2", "o3", "o4"}
	pub := &countingPublisher{c: s.c}
	runRelay(t, s.store(t, noRetryDelay), pub)
	runRelay(t, s.store(t, noRetryDelay), pub)

	var wg sync.WaitGroup
	for _, a := range aggs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); i <= perAgg; i++ {
				if err := s.f.Commit(context.Background(), s.event(t, a, i)); err != nil {
					t.Errorf("commit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := map[string][]int64{}
	for _, e := range s.published(t, perAgg*len(aggs)) {
		got[e.Subject] = append(got[e.Subject], e.Sequence)
	}
	want := map[string][]int64{}
	for _, a := range aggs {
		for i := int64(1); i <= perAgg; i++ {
			want[a] = append(want[a], i)
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("sequences per aggregate in stream order (-got +want):\n%s", diff)
	}
}

// A relay publishing through *broker.Conn itself (an EncodedPublisher: the stored
// envelopes go out as they are, a window in flight) delivers every event once, each
// aggregate in sequence order, as the envelopes committed, with the headers of each: its
// id as the de-duplication id, its traceparent and correlation id (which an adapter may
// read beside the envelope rather than from it).
func testRelayOverConn(t *testing.T, s *suite) {
	const perAgg, perCommit = 12, 3
	aggs := []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}
	byAgg := map[string][]events.Envelope{}
	committed := map[string]events.Envelope{}
	for seq := int64(1); seq <= perAgg; seq += perCommit {
		for i, a := range aggs {
			var evs []events.Envelope
			for k := range int64(perCommit) {
				e := s.event(t, a, seq+k)
				if i%2 == 0 { // half of them with a trace, a third without a correlation id
					e.TraceParent = fmt.Sprintf("00-%032x-%016x-01", seq+k, i+1)
				}
				if i%3 == 0 {
					e.CorrelationID = ""
				}
				evs = append(evs, e)
				committed[e.ID] = e
			}
			s.commit(t, evs...)
			byAgg[a] = append(byAgg[a], evs...)
		}
	}
	runRelay(t, s.store(t, noRetryDelay), s.c, outbox.WithBatch(20))
	got := map[string][]string{}
	for _, m := range s.publishedMessages(t, perAgg*len(aggs), 30*time.Second) {
		e, err := events.Parse(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", m.Sequence, err)
		}
		got[e.Subject] = append(got[e.Subject], e.ID)
		want := committed[e.ID]
		if diff := cmp.Diff(e, want, sameJSON); diff != "" {
			t.Errorf("envelope %s (-published +committed):\n%s", e.ID, diff)
		}
		headers := map[string]string{
			jetstream.MsgIDHeader:      m.Header.Get(jetstream.MsgIDHeader),
			broker.HeaderTraceParent:   m.Header.Get(broker.HeaderTraceParent),
			broker.HeaderCorrelationID: m.Header.Get(broker.HeaderCorrelationID),
		}
		wantHeaders := map[string]string{
			jetstream.MsgIDHeader:      want.ID,
			broker.HeaderTraceParent:   want.TraceParent,
			broker.HeaderCorrelationID: want.CorrelationID,
		}
		if diff := cmp.Diff(headers, wantHeaders); diff != "" {
			t.Errorf("headers of %s (-got +want):\n%s", e.ID, diff)
		}
	}
	want := map[string][]string{}
	for a, evs := range byAgg {
		want[a] = ids(evs)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("stream per aggregate (-got +want):\n%s", diff)
	}
}

// (d) An event whose publish fails stays pending, later events of its aggregate are held
// back, other aggregates go on; the next drain hands them out in order.
func testFailedPublish(t *testing.T, s *suite) {
	a1, a2, b1 := s.event(t, "a", 1), s.event(t, "a", 2), s.event(t, "b", 1)
	s.commit(t, a1, a2)
	s.commit(t, b1)
	store := s.store(t, noRetryDelay)
	ctx := context.Background()

	var handed []string
	n, err := store.Drain(ctx, 10, func(_ context.Context, e events.Envelope) error {
		handed = append(handed, e.ID)
		if e.ID == a1.ID {
			return errors.New("broker down")
		}
		return nil
	})
	if err == nil || n != 1 {
		t.Errorf("Drain with a failing publish = %d, %v; want 1 and an error", n, err)
	}
	slices.Sort(handed)
	want := []string{a1.ID, b1.ID}
	slices.Sort(want)
	if diff := cmp.Diff(handed, want); diff != "" {
		t.Errorf("handed out (-got +want): a's second event must wait for its first\n%s", diff)
	}

	handed = nil
	n, err = store.Drain(ctx, 10, func(_ context.Context, e events.Envelope) error {
		handed = append(handed, e.ID)
		return nil
	})
	if err != nil || n != 2 {
		t.Errorf("second Drain = %d, %v; want 2, nil", n, err)
	}
	if diff := cmp.Diff(handed, []string{a1.ID, a2.ID}); diff != "" {
		t.Errorf("second drain (-got +want):\n%s", diff)
	}
	if n, err := store.Drain(ctx, 10, failPublish); n != 0 || err != nil {
		t.Errorf("third Drain = %d, %v; want 0, nil", n, err)
	}
}

// (d') With a publish window (as the Relay drains), a failed publish followed by later
// successes of other events does not reorder its aggregate: the aggregate's later events
// are not handed out in that drain, and the next drain delivers the aggregate in order.
// The stream holds every aggregate in sequence order.
func testWindowFailedAck(t *testing.T, s *suite) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) { windowFailedAck(t, s, async) })
	}
}

func windowFailedAck(t *testing.T, s *suite, async bool) {
	const perAgg = 6
	aggs := []string{"w1", "w2", "w3", "w4", "w5"}
	if async {
		for i := range aggs {
			aggs[i] = "async-" + aggs[i]
		}
	}
	for i := int64(1); i <= perAgg; i++ {
		for _, a := range aggs {
			s.commit(t, s.event(t, a, i))
		}
	}
	failing := aggs[1]
	store := s.store(t, noRetryDelay)
	var mu sync.Mutex
	handed := map[string][]int64{}
	publishing := func(fail func(events.Envelope) bool) func(context.Context, events.Envelope) error {
		return func(ctx context.Context, e events.Envelope) error {
			mu.Lock()
			handed[e.Subject] = append(handed[e.Subject], e.Sequence)
			mu.Unlock()
			if fail(e) {
				return errors.New("no ack")
			}
			return s.c.Publish(ctx, e)
		}
	}
	drain := func(fail func(events.Envelope) bool) (int, error) {
		ctx := outbox.ContextWithWindow(context.Background(), 4)
		publish := publishing(fail)
		if async {
			// Through the broker's asynchronous publish, as a Relay over *broker.Conn
			// drains; the failure is the broker's outcome, known only on wait.
			ctx = outbox.ContextWithStart(ctx, func(ctx context.Context, e events.Envelope) (func(context.Context) error, error) {
				mu.Lock()
				handed[e.Subject] = append(handed[e.Subject], e.Sequence)
				mu.Unlock()
				wait, err := s.c.PublishAsync(ctx, e)
				if err != nil || !fail(e) {
					return wait, err
				}
				return func(ctx context.Context) error {
					_ = wait(ctx)
					return errors.New("no ack")
				}, nil
			})
		}
		return store.Drain(ctx, 100, publish)
	}
	// w2's third event fails; the drain goes on with the others.
	n, err := drain(func(e events.Envelope) bool { return e.Subject == failing && e.Sequence == 3 })
	if n != perAgg*len(aggs)-(perAgg-2) || !errors.Is(err, outbox.ErrNotPublished) {
		t.Errorf("Drain with w2#3 failing = %d, %v; want %d and ErrNotPublished", n, err, perAgg*len(aggs)-(perAgg-2))
	}
	want := map[string][]int64{}
	for _, a := range aggs {
		for i := int64(1); i <= perAgg; i++ {
			want[a] = append(want[a], i)
		}
	}
	want[failing] = []int64{1, 2, 3}
	if diff := cmp.Diff(handed, want); diff != "" {
		t.Errorf("handed out (-got +want): nothing of %s after its failed event\n%s", failing, diff)
	}

	handed = map[string][]int64{}
	if n, err := drain(func(events.Envelope) bool { return false }); n != perAgg-2 || err != nil {
		t.Errorf("next Drain = %d, %v; want %d, nil", n, err, perAgg-2)
	}
	if diff := cmp.Diff(handed, map[string][]int64{failing: {3, 4, 5, 6}}); diff != "" {
		t.Errorf("next drain (-got +want):\n%s", diff)
	}

	got := map[string][]int64{}
	total := perAgg * len(aggs)
	if async {
		total *= 2 // the stream also holds the first mode's events
	}
	for _, e := range s.published(t, total) {
		if slices.Contains(aggs, e.Subject) {
			got[e.Subject] = append(got[e.Subject], e.Sequence)
		}
	}
	for _, a := range aggs {
		want[a] = want[aggs[0]]
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("stream order per aggregate (-got +want):\n%s", diff)
	}
}

// Drain hands out at most limit events, oldest first.
func testLimit(t *testing.T, s *suite) {
	evs := []events.Envelope{s.event(t, "a", 1), s.event(t, "a", 2), s.event(t, "a", 3), s.event(t, "a", 4), s.event(t, "a", 5)}
	s.commit(t, evs...)
	store := s.store(t, noRetryDelay)
	var handed []string
	collect := func(_ context.Context, e events.Envelope) error {
		handed = append(handed, e.ID)
		return nil
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{2, ids(evs[:2])},
		{2, ids(evs[2:4])},
		{10, ids(evs[4:])},
		{10, nil},
	}
	for _, tc := range tests {
		handed = nil
		n, err := store.Drain(context.Background(), tc.limit, collect)
		if err != nil || n != len(tc.want) {
			t.Errorf("Drain(%d) = %d, %v; want %d, nil", tc.limit, n, err, len(tc.want))
		}
		if diff := cmp.Diff(handed, tc.want); diff != "" {
			t.Errorf("Drain(%d) handed (-got +want):\n%s", tc.limit, diff)
		}
	}
}

// (e) Wait returns after its timeout, on a commit when the adapter can be woken, and when
// its context ends.
func testWait(t *testing.T, s *suite) {
	store := s.store(t, noRetryDelay)
	ctx := context.Background()
	// A first short wait sets up whatever the adapter listens with.
	if err := store.Wait(ctx, time.Millisecond); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := store.Drain(ctx, 10, failPublish); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := store.Wait(ctx, 200*time.Millisecond); err != nil {
		t.Errorf("Wait timing out: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Wait(200ms) took %v", el)
	}

	if s.f.WakesOnCommit {
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- store.Wait(ctx, 20*time.Second) }()
		time.Sleep(100 * time.Millisecond)
		s.commit(t, s.event(t, "w", 1))
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Wait woken by commit: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait was not woken by a commit")
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- store.Wait(cctx, 20*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if s.f.WakesOnCommit && err == nil {
			// A late notification may legitimately end the wait first; nothing to check.
			break
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return when its context ended")
	}
}
