package httpx_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"polyshop/shared/httpx"
	"polyshop/shared/obs"
)

func TestHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "polyshop_test_total", Help: "x"}))
	// A check that ignores its context and returns only once the test releases it: /readyz
	// must answer without waiting for it (if it waited, ServeHTTP would never return).
	release := make(chan struct{})
	defer close(release)
	tests := []struct {
		name       string
		checks     map[string]func(context.Context) error
		path       string
		wantStatus int
		wantBody   string
	}{
		{"healthz", nil, "/healthz", 200, `{"status":"ok"}`},
		{"ready without checks", nil, "/readyz", 200, `{"status":"ok","checks":{}}`},
		{"ready", map[string]func(context.Context) error{
			"postgres": func(context.Context) error { return nil },
			"nats":     func(context.Context) error { return nil },
		}, "/readyz", 200, `{"status":"ok","checks":{"nats":{"status":"ok"},"postgres":{"status":"ok"}}}`},
		{"one failing", map[string]func(context.Context) error{
			"postgres": func(context.Context) error { return nil },
			"nats":     func(context.Context) error { return errors.New("no servers available") },
		}, "/readyz", 503, `{"status":"unavailable","checks":{"nats":{"status":"error","error":"no servers available"},"postgres":{"status":"ok"}}}`},
		{"hanging check times out", map[string]func(context.Context) error{
			"redis": func(context.Context) error { <-release; return nil },
		}, "/readyz", 503, `{"status":"unavailable","checks":{"redis":{"status":"error","error":"context deadline exceeded"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			httpx.Health{Checks: tt.checks, Timeout: 100 * time.Millisecond}.Register(mux, reg)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			got := []any{rec.Code, strings.TrimSpace(rec.Body.String())}
			if diff := cmp.Diff(got, []any{tt.wantStatus, tt.wantBody}); diff != "" {
				t.Errorf("response (-got +want):\n%s", diff)
			}
		})
	}

	mux := http.NewServeMux()
	httpx.Health{}.Register(mux, reg)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "polyshop_test_total 0") {
		t.Errorf("/metrics does not expose the registry:\n%s", rec.Body)
	}
}

// startServer runs Listen on a free port and returns its URL, the cancel that starts the
// shutdown, and a channel with Listen's result.
func startServer(t *testing.T, h http.Handler, opts ...httpx.ServeOption) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpx.Listen(ctx, ln, h, log, opts...) }()
	t.Cleanup(cancel)
	return "http://" + ln.Addr().String(), cancel, done
}

func TestServeGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		if r.Context().Err() != nil {
			t.Error("in-flight request cancelled by shutdown")
		}
		io.WriteString(w, "done")
	})
	url, cancel, done := startServer(t, h)

	resc := make(chan string, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			resc <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		resc <- string(b)
	}()
	<-started
	cancel()
	if got := <-resc; got != "done" {
		t.Errorf("in-flight request got %q, want it completed", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Listen = %v, want nil after a clean shutdown", err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func TestServeShutdownTimeout(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})
	url, cancel, done := startServer(t, h, httpx.WithShutdownTimeout(100*time.Millisecond))
	go http.Get(url)
	<-started
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Listen = nil, want an error when requests outlive the shutdown timeout")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return after the shutdown timeout")
	}
}

func TestServeListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log, _ := newLogger()
	if err := httpx.Serve(context.Background(), ln.Addr().String(), http.NotFoundHandler(), log); err == nil {
		t.Error("Serve on a used port = nil")
	}
}

func TestClientForwardsIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		httpx.WriteProblem(w, r, httpx.Conflict("taken"), nil)
	}))
	defer srv.Close()

	ctx, span := tp.Tracer("test").Start(context.Background(), "caller")
	defer span.End()
	ctx = obs.WithCorrelationID(httpx.WithRequestID(ctx, "req-1"), "corr-1")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := httpx.NewClient(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := <-got
	traceID := span.SpanContext().TraceID().String()
	if diff := cmp.Diff([]any{h.Get(httpx.HeaderCorrelationID), h.Get(httpx.HeaderRequestID), strings.Contains(h.Get("traceparent"), traceID)},
		[]any{"corr-1", "req-1", true}); diff != "" {
		t.Errorf("forwarded headers (-got +want):\n%s", diff)
	}
	if req.Header.Get(httpx.HeaderCorrelationID) != "" {
		t.Error("the client modified the caller's request")
	}
	pe := httpx.ReadProblem(resp)
	if diff := cmp.Diff(pe, &httpx.Error{Status: 409, Title: "Conflict", Detail: "taken"}); diff != "" {
		t.Errorf("ReadProblem (-got +want):\n%s", diff)
	}
}
