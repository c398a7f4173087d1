package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// clock is the time source of the scheduler; tests use a fake one.
type clock interface {
	Now() time.Time
	// SleepUntil returns once t has come (or ctx is done, with its error).
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// intended is the time arrival i is due: arrivals are evenly spaced at rate per second from
// start (a constant arrival rate, the open model).
func intended(start time.Time, rate float64, i int) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// dispatch starts n arrivals at their intended times: it sleeps until each one is due and
// calls launch(i, due) without waiting for earlier arrivals to finish, so a slow server
// cannot slow the load down. When the dispatcher itself falls behind (a pause of the
// process, a busy machine), the late arrivals are launched at once, still carrying their
// intended time: their latency is counted from when they should have been sent, as wrk2
// does, which is the correction for coordinated omission. It returns how many it launched.
func dispatch(ctx context.Context, clk clock, start time.Time, rate float64, n int, launch func(i int, due time.Time)) int {
	for i := range n {
		due := intended(start, rate, i)
		if err := clk.SleepUntil(ctx, due); err != nil {
			return i
		}
		launch(i, due)
	}
	return n
}

// recorder collects the latency of every journey step in an HdrHistogram (microseconds, 3
// significant digits) and the outcomes by status. Safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	hist     map[string]*hdrhistogram.Histogram
	outcomes map[string]map[string]int // step → status ("200", "503", "timeout", ...) → count
	firstErr map[string]string
}

func newRecorder() *recorder {
	return &recorder{hist: map[string]*hdrhistogram.Histogram{}, outcomes: map[string]map[string]int{}, firstErr: map[string]string{}}
}

// observe records one step that was due at from and answered at to with status (an HTTP
// status, or 0 with err for a transport error). Only 2xx answers go into the latency
// histogram; every answer is counted in the outcomes.
func (r *recorder) observe(step string, from, to time.Time, status int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strconv.Itoa(status)
	switch {
	case err != nil && status == 0:
		key = classify(err)
		if r.firstErr[step] == "" {
			r.firstErr[step] = err.Error()
		}
	case status >= 200 && status < 300:
		h := r.hist[step]
		if h == nil {
			h = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
			r.hist[step] = h
		}
		_ = h.RecordValue(max(1, to.Sub(from).Microseconds()))
	}
	if r.outcomes[step] == nil {
		r.outcomes[step] = map[string]int{}
	}
	r.outcomes[step][key]++
}

// count records an outcome without a latency (e.g. "not sent").
func (r *recorder) count(step, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes[step] == nil {
		r.outcomes[step] = map[string]int{}
	}
	r.outcomes[step][outcome]++
}

func classify(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "deadline exceeded") || strings.Contains(s, "Timeout"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "context canceled"):
		return "cancelled"
	}
	return "error"
}

// stepStats is one line of the report.
type stepStats struct {
	Step                string
	OK, Total           int
	P50, P99, P999, Max time.Duration
	Outcomes            map[string]int
	FirstError          string
}

func (r *recorder) stats() []stepStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []stepStats
	for step, oc := range r.outcomes {
		s := stepStats{Step: step, Outcomes: oc, FirstError: r.firstErr[step]}
		for k, n := range oc {
			s.Total += n
			if len(k) == 3 && k[0] == '2' {
				s.OK += n
			}
		}
		if h := r.hist[step]; h != nil {
			q := func(p float64) time.Duration { return time.Duration(h.ValueAtQuantile(p)) * time.Microsecond }
			s.P50, s.P99, s.P999, s.Max = q(50), q(99), q(99.9), time.Duration(h.Max())*time.Microsecond
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	return out
}

// mix is the journeys' weights.
type mix struct {
	names   []string
	weights []int
	total   int
}

var journeys = []string{"browse", "search", "login", "order"}

// parseMix reads "browse=50,search=30,login=10,order=10"; journeys not named weigh 0.
func parseMix(s string) (mix, error) {
	var m mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !slices.Contains(journeys, name) || seen[name] {
			return mix{}, fmt.Errorf("--mix: %q is not journey=weight with a journey of %s, each once", part, strings.Join(journeys, ", "))
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return mix{}, fmt.Errorf("--mix: weight %q of %s is not a whole number >= 0", w, name)
		}
		seen[name] = true
		if n > 0 {
			m.names, m.weights, m.total = append(m.names, name), append(m.weights, n), m.total+n
		}
	}
	if m.total == 0 {
		return mix{}, fmt.Errorf("--mix: every weight is 0")
	}
	return m, nil
}

// pick draws a journey by weight.
func (m mix) pick(r *rand.Rand) string {
	x := r.IntN(m.total)
	for i, w := range m.weights {
		if x < w {
			return m.names[i]
		}
		x -= w
	}
	return m.names[len(m.names)-1]
}

func (m mix) has(name string) bool { return slices.Contains(m.names, name) }

// checkLoopback refuses any target that is not on this machine's loopback: a load test
// sends traffic only to 127.0.0.0/8 or ::1.
func checkLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("--gateway %q is not an http(s) URL", base)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--gateway %q: only loopback targets (127.0.0.0/8, ::1, localhost)", base)
}
