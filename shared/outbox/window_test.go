package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

func storedItem(t *testing.T, agg string, seq int64) outbox.Item {
	t.Helper()
	e, err := events.New(context.Background(), events.TypeUserDeleted, agg, seq, events.UserDeleted{UserID: agg})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Item{Aggregate: agg, ID: fmt.Sprintf("%s%d", agg, seq), Envelope: string(b)}
}

// With a window, an aggregate's next event is handed out only after the previous one's
// publish returned, and never after it failed: a failed ack followed by a later success
// cannot reorder an aggregate. Other aggregates go on.
func TestPublishAllKeepsAggregateOrderUnderFailure(t *testing.T) {
	items := []outbox.Item{
		storedItem(t, "a", 1), storedItem(t, "b", 1), storedItem(t, "a", 2), storedItem(t, "b", 2),
		storedItem(t, "c", 1), storedItem(t, "a", 3), storedItem(t, "b", 3), storedItem(t, "c", 2),
	}
	tests := []struct {
		name   string
		window int
		fail   string // "<aggregate><seq>" whose publish fails
		want   []bool
		handed map[string][]int64
	}{
		{"one at a time, no failure", 1, "", []bool{true, true, true, true, true, true, true, true},
			map[string][]int64{"a": {1, 2, 3}, "b": {1, 2, 3}, "c": {1, 2}}},
		{"window, no failure", 8, "", []bool{true, true, true, true, true, true, true, true},
			map[string][]int64{"a": {1, 2, 3}, "b": {1, 2, 3}, "c": {1, 2}}},
		{"window, b's second event fails", 8, "b2", []bool{true, true, true, false, true, true, false, true},
			map[string][]int64{"a": {1, 2, 3}, "b": {1, 2}, "c": {1, 2}}},
		{"window, a's first event fails", 2, "a1", []bool{false, true, false, true, true, false, true, true},
			map[string][]int64{"a": {1}, "b": {1, 2, 3}, "c": {1, 2}}},
		{"one at a time, a's first event fails", 1, "a1", []bool{false, true, false, true, true, false, true, true},
			map[string][]int64{"a": {1}, "b": {1, 2, 3}, "c": {1, 2}}},
	}
	for _, mode := range []string{"goroutines", "pipeline"} {
		for _, tc := range tests {
			if mode == "pipeline" && tc.window <= 1 {
				continue // one at a time never uses the start function
			}
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				var mu sync.Mutex
				handed := map[string][]int64{}
				inFlight := map[string]bool{}
				publish := func(_ context.Context, e events.Envelope) error {
					mu.Lock()
					if inFlight[e.Subject] {
						t.Errorf("%s%d handed out while an earlier event of %s is in flight", e.Subject, e.Sequence, e.Subject)
					}
					inFlight[e.Subject] = true
					handed[e.Subject] = append(handed[e.Subject], e.Sequence)
					mu.Unlock()
					defer func() {
						mu.Lock()
						inFlight[e.Subject] = false
						mu.Unlock()
					}()
					if fmt.Sprintf("%s%d", e.Subject, e.Sequence) == tc.fail {
						return errors.New("no ack")
					}
					return nil
				}
				ctx := outbox.ContextWithWindow(context.Background(), tc.window)
				if mode == "pipeline" {
					// The broker's outcome comes later, on wait; the next event of an
					// aggregate must not start before it.
					ctx = outbox.ContextWithStart(ctx, func(ctx context.Context, e events.Envelope) (func(context.Context) error, error) {
						done := make(chan error, 1)
						go func() { done <- publish(ctx, e) }()
						return func(context.Context) error { return <-done }, nil
					})
				}
				var o outbox.InOrder
				got, err := o.PublishAll(ctx, func(context.Context, events.Envelope) error {
					return errors.New("the pipeline must use its start function")
				}, items)
				if mode == "goroutines" {
					o = outbox.InOrder{}
					got, err = o.PublishAll(ctx, publish, items)
				}
				if err != nil {
					t.Fatalf("PublishAll: %v", err)
				}
				if diff := cmp.Diff(got, tc.want); diff != "" {
					t.Errorf("published (-got +want):\n%s", diff)
				}
				if diff := cmp.Diff(handed, tc.handed); diff != "" {
					t.Errorf("handed per aggregate (-got +want):\n%s", diff)
				}
				if gotErr := o.Err() != nil; gotErr != (tc.fail != "") {
					t.Errorf("Err = %v; want an error: %v", o.Err(), tc.fail != "")
				}
				if gotF := len(o.Failures()); gotF != min(len(tc.fail), 1) {
					t.Errorf("Failures = %v; want %d", o.Failures(), min(len(tc.fail), 1))
				}
			})
		}
	}
}

// The window is used: as many publishes as the window are in flight at once (the first
// ones wait until the window is full), never more.
func TestPublishAllFillsTheWindow(t *testing.T) {
	const window = 4
	var items []outbox.Item
	for a := range 3 * window {
		items = append(items, storedItem(t, fmt.Sprintf("agg%d", a), 1))
	}
	var mu sync.Mutex
	inFlight, most, arrivals := 0, 0, 0
	full := make(chan struct{})
	publish := func(ctx context.Context, e events.Envelope) error {
		mu.Lock()
		inFlight++
		arrivals++
		most = max(most, inFlight)
		if arrivals == window {
			close(full)
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		// A generous bound only keeps a broken implementation from hanging the test (it
		// then fails on the figures below).
		select {
		case <-full:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("window never filled")
		}
	}
	var o outbox.InOrder
	got, err := o.PublishAll(outbox.ContextWithWindow(context.Background(), window), publish, items)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, ok := range got {
		if ok {
			sent++
		}
	}
	if sent != len(items) || most != window {
		t.Errorf("published %d of %d, at most %d in flight; want all, %d in flight", sent, len(items), most, window)
	}
}
