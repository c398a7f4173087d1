package search_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex/estest"
	"polyshop/services/search/internal/search"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/testenv/natstest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// End to end through NATS: stock events published in the tests' own namespace (as the test
// user, on a test-only type in TEST_INVENTORY; the live INVENTORY never sees them), out of
// order and duplicated, reach the index through a consumer attached the way main attaches
// search's (broker.Conn.ConsumeWhenReady). The test's handler gives them the stock_changed
// type before the real handler sees them.
func TestStockEventsFromTheInventoryStreamReachTheIndex(t *testing.T) {
	inv := natstest.TestConn(t)
	stream := natstest.Stream(t, inv, "inventory")
	typ := natstest.EventType(t, "inventory")
	nc := natstest.TestConn(t) // dead letters, if any, go to DLQ_TEST
	x := estest.New(t)
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())

	handled := make(chan events.Envelope, 16)
	h := func(ctx context.Context, e events.Envelope) error {
		e.Type = events.TypeStockChanged
		if err := svc.Handle(ctx, e); err != nil {
			return err
		}
		handled <- e
		return nil
	}
	c := nc.ConsumeWhenReady(context.Background(), broker.ConsumerSpec{
		Stream: stream, Durable: natstest.Durable(t, nc, stream, "search-test"),
		Subjects: []string{events.SubjectFor(typ)}, Concurrency: 4,
	}, h, 10*time.Millisecond)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := uuid.NewString(), uuid.NewString()
	type stock struct {
		id       string
		seq, qty int64
	}
	sent := []stock{{a, 2, 0}, {a, 1, 5}, {b, 1, 3}, {a, 3, 4}, {a, 2, 0}, {b, 2, 0}}
	for _, s := range sent {
		e, err := events.New(ctx, typ, s.id, s.seq, events.StockChanged{ProductID: s.id, Available: s.qty, Version: s.seq})
		if err != nil {
			t.Fatal(err)
		}
		if err := inv.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for range sent {
		select {
		case <-handled:
		case <-ctx.Done():
			t.Fatalf("not every event was handled: %v (consumer: %v)", ctx.Err(), c.Ready(ctx))
		}
	}
	got := map[string]string{}
	for _, id := range []string{a, b} {
		d, found, err := x.Get(ctx, id)
		if err != nil || !found {
			t.Fatalf("get %s: found %v, %v", id, found, err)
		}
		got[id] = fmt.Sprintf("v%d available %d inStock %v visible %v", d.StockVersion, *d.Available, d.InStock, d.Visible())
	}
	want := map[string]string{a: "v3 available 4 inStock true visible false", b: "v2 available 0 inStock false visible false"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("stock parts (-got +want):\n%s", diff)
	}
}
