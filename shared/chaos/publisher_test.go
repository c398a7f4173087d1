package chaos

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/testenv/natstest"
)

// TestDuplicatesReachConsumers publishes through a real broker with duplicates 1..3 and
// counts what a consumer of a test-only subject receives: n copies of the same event id,
// and a relay retry of the same event (same Nats-Msg-Ids) adds nothing.
func TestDuplicatesReachConsumers(t *testing.T) {
	c := natstest.TestConn(t)
	stream := natstest.Stream(t, c, "orders")
	ctx := context.Background()
	for _, n := range []int{1, 2, 3} {
		typ := natstest.EventType(t, "orders")
		s, _ := armed(t, &memStore{})
		if _, err := s.Set(ctx, Patch{Duplicates: &n}); err != nil {
			t.Fatal(err)
		}
		pub := s.Publisher(c)
		e, err := events.New(ctx, typ, "agg-1", 1, json.RawMessage(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second publish is a relay's retry after a crash before marking sent
			if err := pub.Publish(ctx, e); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		var mu sync.Mutex
		var ids []string
		got := make(chan struct{}, 10)
		sub, err := c.Consume(ctx, broker.ConsumerSpec{Stream: stream, Durable: natstest.Durable(t, c, stream, "dup"),
			Subjects: []string{events.SubjectFor(typ)}}, func(_ context.Context, e events.Envelope) error {
			mu.Lock()
			ids = append(ids, e.ID)
			mu.Unlock()
			got <- struct{}{}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			<-got
		}
		// The stream holds exactly n messages of the subject: nothing more arrives.
		info, err := c.JetStream().Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		si, err := info.Info(ctx, jetstreamSubjects(events.SubjectFor(typ)))
		if err != nil {
			t.Fatal(err)
		}
		if got := si.State.Subjects[events.SubjectFor(typ)]; got != uint64(n) {
			t.Errorf("duplicates %d: stream holds %d copies, want %d", n, got, n)
		}
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := sub.Stop(stopCtx); err != nil {
			t.Error(err)
		}
		cancel()
		want := make([]string, n)
		for i := range want {
			want[i] = e.ID
		}
		mu.Lock()
		if diff := cmp.Diff(ids, want); diff != "" {
			t.Errorf("duplicates %d: event ids seen (-got +want):\n%s", n, diff)
		}
		mu.Unlock()
	}
}

func jetstreamSubjects(subject string) jetstream.StreamInfoOpt {
	return jetstream.WithSubjectFilter(subject)
}
