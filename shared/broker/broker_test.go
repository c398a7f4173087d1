package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/obs"
	"polyshop/shared/testenv/natstest"
)

// fixture is a connection as the test user, its TEST_USERS stream and DLQ_TEST, and a subject of the test's own.
type fixture struct {
	c       *broker.Conn
	typ     string
	subject string
}

func setup(t *testing.T) fixture {
	t.Helper()
	c := natstest.TestConn(t)
	natstest.Stream(t, c, "users")
	ctx := context.Background()
	if err := c.EnsureDLQ(ctx); err != nil {
		t.Fatalf("EnsureDLQ: %v", err)
	}
	typ := natstest.EventType(t, "users")
	f := fixture{c: c, typ: typ, subject: events.SubjectFor(typ)}
	t.Cleanup(func() {
		// Dead letters this test left behind.
		s, err := c.JetStream().Stream(ctx, broker.DLQStream(natstest.User))
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSubject(broker.DLQSubject(natstest.User, f.subject)))
		}
		if err != nil {
			t.Errorf("purge dead letters: %v", err)
		}
	})
	return f
}

func (f fixture) event(t *testing.T, ctx context.Context, agg string, seq int64) events.Envelope {
	t.Helper()
	e, err := events.New(ctx, f.typ, agg, seq, json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq)))
	if err != nil {
		t.Fatalf("events.New: %v", err)
	}
	return e
}

func (f fixture) consume(t *testing.T, spec broker.ConsumerSpec, h broker.Handler) *broker.Subscription {
	t.Helper()
	spec.Stream = natstest.StreamName("users")
	spec.Durable = natstest.Durable(t, f.c, natstest.StreamName("users"), "bt")
	spec.Subjects = []string{f.subject}
	return startConsumer(t, f.c, spec, h)
}

// startConsumer runs spec as it is and stops it when the test ends.
func startConsumer(t *testing.T, c *broker.Conn, spec broker.ConsumerSpec, h broker.Handler) *broker.Subscription {
	t.Helper()
	sub, err := c.Consume(context.Background(), spec, h)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sub.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return sub
}

// recorder collects what a handler saw.
type recorder struct {
	mu   sync.Mutex
	seen []string
	ch   chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1000)} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.seen = append(r.seen, s)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) wait(t *testing.T, n int) []string {
	t.Helper()
	for range n {
		select {
		case <-r.ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %d deliveries; got %v", n, r.get())
		}
	}
	return r.get()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func TestPublishConsume(t *testing.T) {
	f := setup(t)
	ctx := obs.WithCorrelationID(context.Background(), "corr-1")
	e1, e2 := f.event(t, ctx, "a1", 1), f.event(t, ctx, "a1", 2)
	for _, e := range []events.Envelope{e1, e1, e2} { // e1 twice: de-duplicated by id
		if err := f.c.Publish(ctx, e); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	rec := newRecorder()
	f.consume(t, broker.ConsumerSpec{}, func(ctx context.Context, e events.Envelope) error {
		rec.add(fmt.Sprintf("%s corr=%s cause=%s", e.ID, obs.CorrelationID(ctx), obs.CausationID(ctx)))
		return nil
	})
	got := rec.wait(t, 2)
	want := []string{
		fmt.Sprintf("%s corr=corr-1 cause=%s", e1.ID, e1.ID),
		fmt.Sprintf("%s corr=corr-1 cause=%s", e2.ID, e2.ID),
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("handled (-got +want):\n%s", diff)
	}
	// No third delivery: the duplicate never entered the stream.
	select {
	case <-rec.ch:
		t.Errorf("unexpected extra delivery: %v", rec.get())
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRetryThenSucceed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	e := f.event(t, ctx, "a1", 1)
	if err := f.c.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	var calls int
	f.consume(t, broker.ConsumerSpec{Backoff: []time.Duration{50 * time.Millisecond}}, func(ctx context.Context, e events.Envelope) error {
		calls++
		rec.add(fmt.Sprint(calls))
		if calls < 3 {
			return errors.New("transient")
		}
		return nil
	})
	got := rec.wait(t, 3)
	if diff := cmp.Diff(got, []string{"1", "2", "3"}); diff != "" {
		t.Errorf("attempts (-got +want):\n%s", diff)
	}
	assertNoDeadLetters(t, f)
}

func assertNoDeadLetters(t *testing.T, f fixture) {
	t.Helper()
	if got := deadLetters(t, f); len(got) != 0 {
		t.Errorf("dead letters = %v, want none", got)
	}
}

// deadLetters returns the dead letters on the test's subject.
func deadLetters(t *testing.T, f fixture) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := f.c.JetStream().Stream(ctx, broker.DLQStream(natstest.User))
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(broker.DLQSubject(natstest.User, f.subject)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("read dlq: %v", err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func waitDeadLetters(t *testing.T, f fixture, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := deadLetters(t, f)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name       string
		spec       broker.ConsumerSpec
		err        error
		body       []byte // published raw instead of an event when set
		wantCalls  int
		wantReason string
		wantDeliv  string
	}{
		{"permanent error", broker.ConsumerSpec{}, broker.Permanent(errors.New("no such product")), nil, 1, "no such product", "1"},
		{"invalid payload", broker.ConsumerSpec{}, fmt.Errorf("decode: %w", events.ErrInvalid), nil, 1, "decode: invalid event", "1"},
		{"max deliveries", broker.ConsumerSpec{MaxDeliver: 3, Backoff: []time.Duration{20 * time.Millisecond}}, errors.New("db down"), nil, 3, "db down", "3"},
		{"malformed envelope", broker.ConsumerSpec{}, nil, []byte(`{"not":"an event"}`), 0, "malformed envelope: invalid event: specversion: missing", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			ctx := context.Background()
			e := f.event(t, ctx, "a1", 1)
			if tc.body != nil {
				if err := f.c.PublishRaw(ctx, f.subject, "", tc.body, nats.Header{"X-Test": {"yes"}}); err != nil {
					t.Fatal(err)
				}
			} else if err := f.c.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			calls := 0
			sub := f.consume(t, tc.spec, func(ctx context.Context, e events.Envelope) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				return tc.err
			})
			dl := waitDeadLetters(t, f, 1)
			if len(dl) != 1 {
				t.Fatalf("dead letters = %d, want 1", len(dl))
			}
			h := dl[0].Header
			got := map[string]string{
				"reason":     h.Get(broker.HeaderDLQReason),
				"stream":     h.Get(broker.HeaderDLQStream),
				"consumer":   h.Get(broker.HeaderDLQConsumer),
				"deliveries": h.Get(broker.HeaderDLQDeliveries),
				"subject":    h.Get(broker.HeaderDLQSubject),
			}
			want := map[string]string{
				"reason":     tc.wantReason,
				"stream":     natstest.StreamName("users"),
				"consumer":   sub.Durable(),
				"deliveries": tc.wantDeliv,
				"subject":    f.subject,
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("dead-letter headers (-got +want):\n%s", diff)
			}
			if tc.body == nil && h.Get(broker.HeaderDLQMsgID) != e.ID {
				t.Errorf("original msg id = %q, want %q", h.Get(broker.HeaderDLQMsgID), e.ID)
			}
			time.Sleep(200 * time.Millisecond) // no further deliveries after the dead letter
			mu.Lock()
			if calls != tc.wantCalls {
				t.Errorf("handler calls = %d, want %d", calls, tc.wantCalls)
			}
			mu.Unlock()
		})
	}
}

func TestReplayDLQ(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	e1, e2 := f.event(t, ctx, "a1", 1), f.event(t, ctx, "a2", 1)
	for _, e := range []events.Envelope{e1, e2} {
		if err := f.c.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	broken := true
	var replayed []string
	sub := f.consume(t, broker.ConsumerSpec{}, func(ctx context.Context, e events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			return broker.Permanent(errors.New("bug"))
		}
		replayed = append(replayed, e.ID)
		return nil
	})
	if got := waitDeadLetters(t, f, 2); len(got) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(got))
	}
	// A replay through a failing handler stops and keeps the letter.
	if n, err := sub.ReplayDLQ(ctx, 10); err == nil || n != 0 {
		t.Errorf("ReplayDLQ with failing handler = %d, %v; want 0 and an error", n, err)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	n, err := sub.ReplayDLQ(ctx, 1)
	if err != nil || n != 1 {
		t.Fatalf("ReplayDLQ(max 1) = %d, %v", n, err)
	}
	n, err = f.c.ReplayDLQ(ctx, f.subject, 10, func(ctx context.Context, e events.Envelope) error {
		if got := obs.CausationID(ctx); got != e.ID {
			t.Errorf("causation id = %q, want %q", got, e.ID)
		}
		mu.Lock()
		defer mu.Unlock()
		replayed = append(replayed, e.ID)
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("ReplayDLQ(rest) = %d, %v", n, err)
	}
	if diff := cmp.Diff(replayed, []string{e1.ID, e2.ID}); diff != "" {
		t.Errorf("replayed (-got +want):\n%s", diff)
	}
	assertNoDeadLetters(t, f)
}

func TestStopWaitsForInFlight(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	e := f.event(t, ctx, "a1", 1)
	if err := f.c.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	started, finished := make(chan struct{}), make(chan struct{})
	spec := broker.ConsumerSpec{Stream: natstest.StreamName("users"), Durable: natstest.Durable(t, f.c, natstest.StreamName("users"), "bt"), Subjects: []string{f.subject}}
	sub, err := f.c.Consume(ctx, spec, func(ctx context.Context, e events.Envelope) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		close(finished)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sub.Stop(sctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("Stop returned before the handler finished")
	}
	cons, err := f.c.JetStream().Consumer(ctx, natstest.StreamName("users"), spec.Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("after Stop: ack pending %d, pending %d; want 0, 0", info.NumAckPending, info.NumPending)
	}
}

func TestReady(t *testing.T) {
	f := setup(t)
	if err := f.c.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{base, false},
		{broker.Permanent(base), true},
		{fmt.Errorf("wrap: %w", broker.Permanent(base)), true},
		{fmt.Errorf("decode: %w", events.ErrInvalid), true},
	}
	for _, tc := range tests {
		if got := broker.IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if broker.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if !errors.Is(broker.Permanent(base), base) {
		t.Error("Permanent hides its cause")
	}
}

// loseDeliveries publishes one event and lets n "processes" take it and die (no ack, no
// nak) on a consumer durable with ackWait, as a crash or a kill does; it returns the spec
// to consume the durable with.
func (f fixture) loseDeliveries(t *testing.T, name string, ackWait time.Duration, n int) (broker.ConsumerSpec, events.Envelope) {
	t.Helper()
	ctx := context.Background()
	stream := natstest.StreamName("users")
	durable := natstest.Durable(t, f.c, stream, name)
	cons, err := f.c.JetStream().CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
		MaxDeliver: -1, FilterSubject: f.subject,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := f.event(t, ctx, "a1", 1)
	if err := f.c.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range b.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("fetch %d: %d messages, want 1", i+1, got)
		}
		time.Sleep(2 * ackWait)
	}
	return broker.ConsumerSpec{Stream: stream, Durable: durable, Subjects: []string{f.subject}, AckWait: ackWait}, e
}

// TestLostDeliveriesDoNotDeadLetter: a message whose deliveries were lost (fetched by a
// process that died before acknowledging, as a crash or a kill does) is still handled once a
// consumer runs, however often it was delivered before; only failed handler runs count
// towards MaxDeliver.
func TestLostDeliveriesDoNotDeadLetter(t *testing.T) {
	f := setup(t)
	spec, e := f.loseDeliveries(t, "lost", 100*time.Millisecond, 8) // more than MaxDeliver
	spec.MaxDeliver, spec.Backoff = 3, []time.Duration{20 * time.Millisecond}
	rec := newRecorder()
	startConsumer(t, f.c, spec, func(ctx context.Context, e events.Envelope) error {
		rec.add(e.ID)
		return nil
	})
	if diff := cmp.Diff(rec.wait(t, 1), []string{e.ID}); diff != "" {
		t.Errorf("handled (-got +want):\n%s", diff)
	}
	if dl := deadLetters(t, f); len(dl) != 0 {
		t.Errorf("dead letters = %d, want 0 (reason %q)", len(dl), dl[0].Header.Get(broker.HeaderDLQReason))
	}
}

// TestDeliveryLimit: a message that is delivered DeliveryLimit times without any run
// reporting a failure (it kills the process, say) is dead-lettered on the next delivery.
func TestDeliveryLimit(t *testing.T) {
	f := setup(t)
	const limit = 3
	spec, _ := f.loseDeliveries(t, "limit", 100*time.Millisecond, limit)
	spec.MaxDeliver, spec.DeliveryLimit = 2, limit
	rec := newRecorder()
	startConsumer(t, f.c, spec, func(ctx context.Context, e events.Envelope) error {
		rec.add(e.ID)
		return nil
	})
	dl := waitDeadLetters(t, f, 1)
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dl))
	}
	got := []string{dl[0].Header.Get(broker.HeaderDLQReason), dl[0].Header.Get(broker.HeaderDLQDeliveries)}
	if diff := cmp.Diff(got, []string{"exceeded max deliveries", "4"}); diff != "" {
		t.Errorf("dead letter reason, deliveries (-got +want):\n%s", diff)
	}
	if n := len(rec.get()); n != 0 {
		t.Errorf("handler calls = %d, want 0", n)
	}
}

// TestLongHandlerIsNotRedelivered: a handler that runs several AckWaits long keeps its
// message (the consumer reports progress), so a second process sharing the durable does
// not get it too; AckWait only bounds how long a message held by a dead process waits.
func TestLongHandlerIsNotRedelivered(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	rec := newRecorder()
	const ackWait = 300 * time.Millisecond
	spec := broker.ConsumerSpec{Stream: natstest.StreamName("users"), Subjects: []string{f.subject},
		Durable: natstest.Durable(t, f.c, natstest.StreamName("users"), "long"), AckWait: ackWait, HandlerTimeout: 10 * time.Second}
	for range 2 { // two processes of one service
		startConsumer(t, f.c, spec, func(ctx context.Context, e events.Envelope) error {
			rec.add(e.ID)
			time.Sleep(5 * ackWait)
			return nil
		})
	}
	e := f.event(t, ctx, "a1", 1)
	if err := f.c.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
	time.Sleep(8 * ackWait) // a second delivery would have reached the other process by now
	if diff := cmp.Diff(rec.get(), []string{e.ID}); diff != "" {
		t.Errorf("handled (-got +want):\n%s", diff)
	}
}
