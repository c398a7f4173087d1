package broker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/natstest"
)

// A stream that does not exist (yet) does not stop a service: the consumer is not ready,
// keeps trying, and stops cleanly.
func TestConsumeWhenReadyRetriesAMissingStreamUntilStopped(t *testing.T) {
	c := natstest.TestConn(t)
	stream := strings.ToUpper(testenv.UniqueName(t, "nosuch"))
	a := c.ConsumeWhenReady(context.Background(), broker.ConsumerSpec{
		Stream: stream, Durable: testenv.UniqueName(t, "whenready"), Subjects: []string{"test.nosuch.x.v1"},
	}, func(context.Context, events.Envelope) error { return nil }, 10*time.Millisecond)
	// Several attempts have failed once Ready reports the stream's error instead of "not started".
	var err error
	for range 500 {
		if err = a.Ready(context.Background()); err != nil && !strings.Contains(err.Error(), "not started") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "stream not found") || a.Attached() {
		t.Errorf("Ready = %v, attached %v; want a stream-not-found error", err, a.Attached())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// On a stream that exists it attaches and handles events.
func TestConsumeWhenReadyAttaches(t *testing.T) {
	c := natstest.TestConn(t)
	stream := natstest.Stream(t, c, "users")
	typ := natstest.EventType(t, "users")
	got := make(chan string, 1)
	a := c.ConsumeWhenReady(context.Background(), broker.ConsumerSpec{
		Stream: stream, Durable: natstest.Durable(t, c, stream, "whenready"), Subjects: []string{events.SubjectFor(typ)},
	}, func(_ context.Context, e events.Envelope) error { got <- e.ID; return nil }, 10*time.Millisecond)
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := events.New(ctx, typ, "agg", 1, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != e.ID {
			t.Errorf("handled %s, want %s", id, e.ID)
		}
		// The subscription delivers as soon as it exists, a moment before the attachment
		// records it: wait for it to say attached (it failed one CI run in many asserting
		// both at once).
		for a.Ready(ctx) != nil || !a.Attached() {
			if ctx.Err() != nil {
				t.Fatalf("handled, but never reported attached: %v", a.Ready(ctx))
			}
			time.Sleep(time.Millisecond)
		}
	case <-ctx.Done():
		t.Fatalf("not handled; attach: %v", a.Ready(ctx))
	}
}
