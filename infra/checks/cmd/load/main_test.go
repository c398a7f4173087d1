package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock moves only when the scheduler sleeps; stalls make it jump further, as a paused
// load generator would.
type fakeClock struct {
	now    time.Time
	stalls map[int]time.Duration // before the i-th sleep, time jumps by this much
	sleeps int
}

func (f *fakeClock) Now() time.Time { return f.now }
func (f *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	f.now = f.now.Add(f.stalls[f.sleeps])
	f.sleeps++
	if t.After(f.now) {
		f.now = t
	}
	return ctx.Err()
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDispatchLaunchesAtIntendedTimes(t *testing.T) {
	clk := &fakeClock{now: t0}
	var got []time.Duration
	n := dispatch(context.Background(), clk, t0, 4, 5, func(i int, due time.Time) {
		if !clk.Now().Equal(due) {
			t.Errorf("arrival %d launched at %s, due %s", i, clk.Now().Sub(t0), due.Sub(t0))
		}
		got = append(got, due.Sub(t0))
	})
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second}
	if n != 5 {
		t.Errorf("launched %d, want 5", n)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("intended times (-got +want):\n%s", diff)
	}
}

// TestStalledDispatcherKeepsIntendedTimes is the coordinated-omission correction: when
// the generator falls 1 s behind at arrival 2, the arrivals due during the stall are sent
// late but keep their intended times, so their latency includes the time they waited.
func TestStalledDispatcherKeepsIntendedTimes(t *testing.T) {
	const service = 10 * time.Millisecond // every request takes 10 ms once sent
	clk := &fakeClock{now: t0, stalls: map[int]time.Duration{2: time.Second}}
	rec := newRecorder()
	var got []time.Duration
	dispatch(context.Background(), clk, t0, 10, 6, func(i int, due time.Time) {
		sent := clk.Now()
		rec.observe("step", due, sent.Add(service), 200, nil)
		got = append(got, sent.Add(service).Sub(due))
	})
	// Arrival 2 was due at 200 ms and sent at 100 ms + 1 s stall = 1.1 s; 3..5 (due 300..500 ms)
	// are sent right away, at 1.1 s too.
	want := []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 910 * time.Millisecond,
		810 * time.Millisecond, 710 * time.Millisecond, 610 * time.Millisecond}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("latencies from the intended time (-got +want):\n%s", diff)
	}
	st := rec.stats()
	if len(st) != 1 || st[0].OK != 6 {
		t.Fatalf("stats = %+v, want one step with 6 answers", st)
	}
	// A closed-loop tool would have recorded one slow request and five fast ones: p50 10 ms.
	if st[0].P50 < 600*time.Millisecond || st[0].Max < 900*time.Millisecond {
		t.Errorf("p50 %s max %s: the stall is missing from the distribution", st[0].P50, st[0].Max)
	}
}

func TestDispatchStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{now: t0}
	n := dispatch(ctx, clk, t0, 100, 1000, func(i int, _ time.Time) {
		if i == 9 {
			cancel()
		}
	})
	if n != 10 {
		t.Errorf("launched %d after cancelling at the 10th, want 10", n)
	}
}

func TestRecorderOutcomes(t *testing.T) {
	rec := newRecorder()
	rec.observe("login", t0, t0.Add(5*time.Millisecond), 201, nil)
	rec.observe("login", t0, t0.Add(time.Second), 503, nil)
	rec.observe("login", t0, t0.Add(time.Second), 0, errors.New("Get x: context deadline exceeded"))
	rec.count("login", "not sent")
	st := rec.stats()
	want := map[string]int{"201": 1, "503": 1, "timeout": 1, "not sent": 1}
	if diff := cmp.Diff(st[0].Outcomes, want); diff != "" {
		t.Errorf("outcomes (-got +want):\n%s", diff)
	}
	// HdrHistogram keeps 3 significant digits: 5 ms reads back as 5.00x ms.
	if st[0].OK != 1 || st[0].Total != 4 || st[0].Max < 5*time.Millisecond || st[0].Max > 5010*time.Microsecond {
		t.Errorf("ok %d total %d max %s; want 1, 4, 5ms (only 2xx in the latencies)", st[0].OK, st[0].Total, st[0].Max)
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		names   []string
		wantErr bool
	}{
		{"browse=50,search=30,login=10,order=10", []string{"browse", "search", "login", "order"}, false},
		{"search=1,order=0", []string{"search"}, false},
		{"browse=0", nil, true},
		{"browse=-1", nil, true},
		{"checkout=1", nil, true},
		{"browse=1,browse=2", nil, true},
		{"browse", nil, true},
	}
	for _, tt := range tests {
		m, err := parseMix(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseMix(%q) err = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(m.names, tt.names); diff != "" {
			t.Errorf("parseMix(%q) names (-got +want):\n%s", tt.in, diff)
		}
	}
}

func TestPickFollowsWeightsAndSeed(t *testing.T) {
	m, err := parseMix("browse=3,order=1")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var first []string
	for i := range 4000 {
		name := m.pick(rand.New(rand.NewPCG(7, uint64(i))))
		count[name]++
		if i < 20 {
			first = append(first, name)
		}
	}
	if count["browse"] < 2800 || count["browse"] > 3200 || count["browse"]+count["order"] != 4000 {
		t.Errorf("picks %v, want about 3000 browse and 1000 order", count)
	}
	var again []string
	for i := range 20 {
		again = append(again, m.pick(rand.New(rand.NewPCG(7, uint64(i)))))
	}
	if diff := cmp.Diff(again, first); diff != "" {
		t.Errorf("the same seed picked differently (-again +first):\n%s", diff)
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080": true, "http://[::1]:8080": true, "http://127.3.4.5": true,
		"http://10.0.0.1:8080": false, "http://192.168.1.2": false, "http://example.com": false, "ftp://127.0.0.1": false, "127.0.0.1:8080": false,
	} {
		if err := checkLoopback(url); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want allowed %v", url, err, ok)
		}
	}
}
