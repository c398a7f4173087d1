package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/config"
)

// LogGate holds a service in the middle of a request, for tests of its in-flight bound
// without a sleep or a test-only route. Wrapped around the service's run (Wrap), it passes
// the service's log through and blocks the first log line that contains its marker until
// Release. The access-log line of a request is written inside the in-flight bound
// (httpx.StandardLimited runs Shed outside AccessLog), so a request whose path holds the
// marker keeps its slot until Release, and Held says when it does.
//
// While a line is held the service's logger is blocked too (slog writes under a lock): the
// other requests that a test makes meanwhile must be ones that log nothing, such as those
// the bound refuses.
type LogGate struct {
	marker  []byte
	held    chan struct{}
	release chan struct{}
	hold    sync.Once
	free    sync.Once
}

// NewLogGate returns a gate for the first log line that contains marker.
func NewLogGate(marker string) *LogGate {
	return &LogGate{marker: []byte(marker), held: make(chan struct{}), release: make(chan struct{})}
}

// Wrap returns run with its log passed through the gate.
func (g *LogGate) Wrap(run RunFunc) RunFunc {
	return func(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
		return run(ctx, getenv, io.MultiWriter(g, stdout))
	}
}

// Held is closed once a line with the marker is being held.
func (g *LogGate) Held() <-chan struct{} { return g.held }

// Release lets the held line (and every later one) through. It may be called more than once.
func (g *LogGate) Release() { g.free.Do(func() { close(g.release) }) }

// Write holds the first p that contains the marker until Release.
func (g *LogGate) Write(p []byte) (int, error) {
	if bytes.Contains(p, g.marker) {
		first := false
		g.hold.Do(func() { first = true })
		if first {
			close(g.held)
			<-g.release
		}
	}
	return len(p), nil
}

// CheckInflightBound checks a service's in-flight bound on its real wiring: run is started
// (StartService) with env, which must set the service's <SVC>_MAX_INFLIGHT to 1; a GET of
// holdPath is held inside the bound (LogGate on its access-log line), and a GET of
// probePath made meanwhile must be refused at once: 503, a problem, Retry-After. Once the
// first is let go it must be answered, not refused.
func CheckInflightBound(t *testing.T, run RunFunc, addrVar string, env map[string]string, holdPath, probePath string) {
	t.Helper()
	gate := NewLogGate(`"path":"` + holdPath + `"`)
	t.Cleanup(gate.Release)
	s := StartService(t, gate.Wrap(run), addrVar, env)

	held := make(chan int, 1)
	go func() {
		resp, err := http.Get(s.URL + holdPath)
		if err != nil {
			t.Errorf("GET %s: %v", holdPath, err)
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	select {
	case <-gate.Held():
	case <-time.After(30 * time.Second):
		t.Fatalf("GET %s was never logged:\n%s", holdPath, s.Log())
	}

	// A request the bound admits would block on the held log: the timeout turns that into
	// a failure instead of a hung test.
	probe := &http.Client{Timeout: 10 * time.Second}
	resp, err := probe.Get(s.URL + probePath)
	if err != nil {
		gate.Release()
		<-held
		t.Fatalf("GET %s while GET %s is in flight was not refused at once: %v", probePath, holdPath, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	type answer struct{ Status, RetryAfter, ContentType string }
	got := answer{resp.Status, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type")}
	want := answer{"503 Service Unavailable", "1", "application/problem+json"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("GET %s while GET %s is in flight (-got +want):\n%s%s", probePath, holdPath, diff, body)
	}

	gate.Release()
	if code := <-held; code == 0 || code == http.StatusServiceUnavailable {
		t.Errorf("GET %s (admitted first): status %d, want it served", holdPath, code)
	}
}

// HoldPost starts a POST of path to s whose body does not end, so the route's handler
// waits in its body read, inside every bound on the way; it returns once the gauge
// http_inflight_requests of shedder (the service label of an httpx.Shed, a bulkhead's
// such as "users hashing") shows the request, read from s's /metrics. finish ends the
// body with body and returns the status the request got.
func HoldPost(t *testing.T, s *Service, path, shedder, body string) (finish func() int) {
	t.Helper()
	pr, pw := io.Pipe()
	status := make(chan int, 1)
	go func() {
		resp, err := http.Post(s.URL+path, "application/json", pr)
		if err != nil {
			t.Errorf("POST %s: %v", path, err)
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	gauge := `http_inflight_requests{service="` + shedder + `"} 1` + "\n"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(m, []byte(gauge)) {
			break
		}
		if time.Now().After(deadline) {
			pw.Close()
			t.Fatalf("POST %s is not in flight in %q after 30s", path, shedder)
		}
	}
	return func() int {
		_, _ = io.WriteString(pw, body)
		pw.Close()
		return <-status
	}
}

// CheckRejectsBadBounds checks that each of names (a service's in-flight bounds) set to 0,
// -1 or a word stops run with an error that names it.
func CheckRejectsBadBounds(t *testing.T, run RunFunc, names ...string) {
	t.Helper()
	for _, name := range names {
		for _, v := range []string{"0", "-1", "many"} {
			getenv := func(k string) string {
				if k == name {
					return v
				}
				return Getenv(k)
			}
			err := run(context.Background(), getenv, io.Discard)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(name)) {
				t.Errorf("%s=%s: run = %v, want an error naming %s", name, v, err, name)
			}
		}
	}
}

// Probe is a request CheckBulkhead makes while the bulkhead is full, with the answer it
// must get: Status, and Retry-After ("" for none).
type Probe struct {
	Method, Path, Body string
	Status             int
	RetryAfter         string
}

// CheckBulkhead checks a bulkhead inside a service's bound on its real wiring: run is
// started with env (which must set the bulkhead to 1), a POST of holdPath is held inside
// it (HoldPost, shedder naming the bulkhead), each probe made meanwhile must get its
// answer, and the held POST must then be served, not refused.
func CheckBulkhead(t *testing.T, run RunFunc, addrVar string, env map[string]string, holdPath, shedder string, probes []Probe) {
	t.Helper()
	s := StartService(t, run, addrVar, env)
	finish := HoldPost(t, s, holdPath, shedder, "{}")
	type answer struct {
		Status     int
		RetryAfter string
	}
	for _, p := range probes {
		req, err := http.NewRequest(p.Method, s.URL+p.Path, bytes.NewReader([]byte(p.Body)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got, want := answer{resp.StatusCode, resp.Header.Get("Retry-After")}, answer{p.Status, p.RetryAfter}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s %s while %s is held (-got +want):\n%s", p.Method, p.Path, holdPath, diff)
		}
	}
	if code := finish(); code == 0 || code == http.StatusServiceUnavailable {
		t.Errorf("POST %s (admitted first): status %d, want it served", holdPath, code)
	}
}
