package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPct(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 50, 3 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 100, 5 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
			31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
			61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90,
			91, 92, 93, 94, 95, 96, 97, 98, 99, 100), 99, 99 * time.Millisecond},
	} {
		if got := pct(tc.ds, tc.p); got != tc.want {
			t.Errorf("pct(%v, %v) = %v, want %v", tc.ds, tc.p, got, tc.want)
		}
	}
}

// TestRecordMeasuresFromIntendedTime checks that latency counts from the intended send
// time and the order's own timestamps, and that paging stops only when every open order
// was seen.
func TestRecordMeasuresFromIntendedTime(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, b := &sample{intended: t0}, &sample{intended: t0}
	cu := &customer{open: map[string]*sample{"a": a, "b": b}}
	var o orderView
	o.ID, o.Status, o.CreatedAt, o.UpdatedAt = "a", "CONFIRMED", t0.Add(30*time.Millisecond), t0.Add(250*time.Millisecond)
	o.Steps = append(o.Steps, struct {
		Name string
		At   time.Time
	}{"reserve", t0.Add(80 * time.Millisecond)})
	if unseen := cu.record([]orderView{o}, map[string]bool{"a": true}); unseen != 1 {
		t.Errorf("unseen = %d, want 1 (b)", unseen)
	}
	if a.confirmed != 250*time.Millisecond || a.status != "CONFIRMED" {
		t.Errorf("sample = %+v", a)
	}
	if diff := cmp.Diff(a.steps, map[string]time.Duration{"placement": 30 * time.Millisecond, "reserve": 50 * time.Millisecond}); diff != "" {
		t.Errorf("steps (-got +want):\n%s", diff)
	}
	line, _ := report(10, time.Second, []*sample{a, b})
	if want := "10\t2\t0\t1\t0\t1\t"; !strings.HasPrefix(line, want) {
		t.Errorf("report line %q, want prefix %q", line, want)
	}
}
