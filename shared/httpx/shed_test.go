package httpx

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// blocking is a mux whose /slow requests wait until release is closed, each signalling
// entered first; /healthz, /readyz, /metrics, /stream and /fast answer at once.
func blocking(entered chan<- struct{}, release <-chan struct{}) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/stream", "/fast"} {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	}
	return mux
}

func TestShedRefusesBeyondTheBoundAndRecoversAtOnce(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	reg := prometheus.NewRegistry()
	lim := Limits{MaxInflight: 2, RetryAfter: 1500 * time.Millisecond,
		Exempt: func(r *http.Request) bool { return r.URL.Path == "/stream" }}
	h := StandardLimited("test", slog.New(slog.NewTextHandler(io.Discard, nil)), reg, lim, blocking(entered, release))
	srv := httptest.NewServer(h)
	defer srv.Close()

	var wg sync.WaitGroup
	for range 2 { // fill the bound
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/slow")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("admitted request: %d", resp.StatusCode)
			}
		})
		<-entered
	}
	type answer struct {
		Status     int
		RetryAfter string
		Type       string
	}
	get := func(path string) (answer, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type")}, b
	}
	tests := []struct {
		path string
		want answer
	}{
		{"/fast", answer{503, "2", ContentTypeProblem}}, // shed at once, Retry-After rounded up
		{"/healthz", answer{200, "", ""}},
		{"/readyz", answer{200, "", ""}},
		{"/metrics", answer{200, "", ""}},
		{"/stream", answer{200, "", ""}}, // exempt by Limits.Exempt
	}
	for _, tc := range tests {
		got, body := get(tc.path)
		if got.Status == 200 {
			got.Type = ""
		}
		if diff := cmp.Diff(got, tc.want); diff != "" {
			t.Errorf("while full, GET %s (-got +want):\n%s", tc.path, diff)
		}
		if got.Status == 503 {
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != 503 || !strings.Contains(p.Detail, "at capacity") || p.RequestID == "" {
				t.Errorf("shed body = %s (%v), want a 503 problem with a request id", body, err)
			}
		}
	}
	if got := testutil.ToFloat64(gaugeOf(t, reg, "http_inflight_requests")); got != 2 {
		t.Errorf("http_inflight_requests = %v, want 2", got)
	}
	close(release)
	wg.Wait()
	// The moment the admitted requests are done, the next one is served: no backlog.
	if got, body := get("/fast"); got.Status != 200 {
		t.Errorf("after the load, GET /fast = %d %s, want 200", got.Status, body)
	}
	if got := testutil.ToFloat64(gaugeOf(t, reg, "http_shed_requests_total")); got != 1 {
		t.Errorf("http_shed_requests_total = %v, want 1", got)
	}
}

// A bulkhead is a share of the bound: with its slots held, another of its requests is shed
// (counted under "<service> <name>", not written to the access log: refusals cost next to
// nothing), while requests outside it are still served from the rest of the bound.
func TestBulkheadShedsItsOwnRequestsOnly(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	reg := prometheus.NewRegistry()
	var logged strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(syncWriter{&logMu, &logged}, nil))
	lim := Limits{MaxInflight: 4, Bulkheads: []Bulkhead{{Name: "slow", Match: Routes("GET /slow"), MaxInflight: 1}}}
	srv := httptest.NewServer(StandardLimited("test", log, reg, lim, blocking(entered, release)))
	defer srv.Close()

	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered // the share is full
	logMu.Lock()
	logged.Reset()
	logMu.Unlock()
	status := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/slow"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /slow with its share full: %d, want 503", got)
	}
	logMu.Lock()
	if logged.Len() > 0 {
		t.Errorf("the refusal was logged: %s", logged.String())
	}
	logMu.Unlock()
	for range 3 {
		if got := status("/fast"); got != http.StatusOK {
			t.Errorf("GET /fast with the slow share full: %d, want 200", got)
		}
	}
	close(release)
	go func() { // later /slow requests pass at once
		for range entered {
		}
	}()
	if got := <-done; got != http.StatusNoContent {
		t.Errorf("the admitted /slow: %d, want 204", got)
	}
	if got := status("/slow"); got != http.StatusNoContent {
		t.Errorf("GET /slow after the share emptied: %d, want 204", got)
	}
	shed := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "http_shed_requests_total" {
			for _, m := range mf.GetMetric() {
				shed[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if diff := cmp.Diff(shed, map[string]float64{"test": 0, "test slow": 1}); diff != "" {
		t.Errorf("http_shed_requests_total by service (-got +want):\n%s", diff)
	}
}

type syncWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// gaugeOf finds the one collector named name in reg (a gauge or a counter without labels).
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			switch {
			case m.GetGauge() != nil:
				g.Set(m.GetGauge().GetValue())
			case m.GetCounter() != nil:
				g.Set(m.GetCounter().GetValue())
			}
			return g
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func TestShedPutsTheRequestTimeoutOnTheContext(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		path        string
		wantDeadine bool
	}{
		{"admitted, with a timeout", time.Minute, "/work", true},
		{"admitted, no timeout", 0, "/work", false},
		{"exempt", time.Minute, "/healthz", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got bool
			h := Shed(Limits{RequestTimeout: tc.timeout}, "test", nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, got = r.Context().Deadline()
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tc.path, nil))
			if got != tc.wantDeadine {
				t.Errorf("deadline set = %v, want %v", got, tc.wantDeadine)
			}
		})
	}
}

// Standard applies the default bound: DefaultMaxInflight requests are admitted, the next
// is shed.
func TestStandardBoundsInflightByDefault(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := Standard("test", slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), blocking(entered, release))
	var wg sync.WaitGroup
	for range DefaultMaxInflight {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil)) })
		<-entered
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/fast", nil))
	close(release)
	wg.Wait()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("request %d: %d (Retry-After %q), want 503 with Retry-After 1", DefaultMaxInflight+1, rec.Code, rec.Header().Get("Retry-After"))
	}
}

// Paths matches as ServeMux patterns do: "/x/" its subtree, "/x" that path only.
func TestPaths(t *testing.T) {
	exempt := Paths("/export/", "/faults")
	got := map[string]bool{}
	for _, p := range []string{"/export/", "/export/products", "/exports", "/faults", "/faults/chaos", "/stock/1"} {
		got[p] = exempt(httptest.NewRequest("GET", p, nil))
	}
	want := map[string]bool{"/export/": true, "/export/products": true, "/exports": false,
		"/faults": true, "/faults/chaos": false, "/stock/1": false}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("exempt (-got +want):\n%s", diff)
	}
}

// Routes matches the method and the exact path, GET also matching HEAD as in ServeMux.
func TestRoutes(t *testing.T) {
	match := Routes("GET /api/products", "POST /sessions")
	got := map[string]bool{}
	for _, r := range []string{"GET /api/products", "HEAD /api/products", "POST /api/products", "GET /api/products/1",
		"POST /sessions", "GET /sessions", "POST /sessions/validate"} {
		m, p, _ := strings.Cut(r, " ")
		got[r] = match(httptest.NewRequest(m, p, nil))
	}
	want := map[string]bool{"GET /api/products": true, "HEAD /api/products": true, "POST /api/products": false,
		"GET /api/products/1": false, "POST /sessions": true, "GET /sessions": false, "POST /sessions/validate": false}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("match (-got +want):\n%s", diff)
	}
}
