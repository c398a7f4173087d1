package orders_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/orders/internal/orders"
)

// TestTimerBudget: the timer worker's pace. A full bucket lets a batch through at once;
// after that, n sagas cost n/perSecond of waiting, so resends cannot outrun the rate.
func TestTimerBudget(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	type pass struct {
		at time.Duration // since t0
		n  int
	}
	tests := []struct {
		name      string
		perSecond int
		burst     int
		passes    []pass
		want      []time.Duration
	}{
		{"unbounded", 0, 100, []pass{{0, 100}, {0, 100}}, []time.Duration{0, 0}},
		{"first batch is free, the second waits batch/rate", 20, 100, []pass{{0, 100}, {0, 100}},
			[]time.Duration{0, 5 * time.Second}},
		{"nothing claimed costs nothing", 20, 100, []pass{{0, 100}, {0, 0}}, []time.Duration{0, 0}},
		{"the bucket refills with time", 20, 100, []pass{{0, 100}, {5 * time.Second, 100}},
			[]time.Duration{0, 0}},
		{"small passes under the rate never wait", 20, 100,
			[]pass{{0, 10}, {time.Second, 10}, {2 * time.Second, 10}}, []time.Duration{0, 0, 0}},
		{"a pass larger than the burst is charged as a burst", 10, 5, []pass{{0, 5}, {0, 50}},
			[]time.Duration{0, 500 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := orders.NewTimerBudget(tc.perSecond, tc.burst)
			var got []time.Duration
			for _, p := range tc.passes {
				got = append(got, b.Spend(t0.Add(p.at), p.n))
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("pauses (-got +want):\n%s", diff)
			}
		})
	}
}
