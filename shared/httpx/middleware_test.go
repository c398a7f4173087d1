package httpx_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"polyshop/shared/httpx"
	"polyshop/shared/obs"
)

func TestRequestIDAndCorrelation(t *testing.T) {
	tests := []struct {
		name           string
		reqID, corr    string
		keepID, keepCo bool
	}{
		{"given", "abc-123", "corr-9", true, true},
		{"absent", "", "", false, false},
		{"unsafe replaced", "bad id\nforged", strings.Repeat("x", 129), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotID, gotCorr string
			h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotID, gotCorr = httpx.RequestIDFrom(r.Context()), obs.CorrelationID(r.Context())
			}), httpx.RequestID, httpx.Correlation)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.reqID != "" {
				req.Header.Set(httpx.HeaderRequestID, tt.reqID)
			}
			if tt.corr != "" {
				req.Header.Set(httpx.HeaderCorrelationID, tt.corr)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if diff := cmp.Diff([]string{rec.Header().Get(httpx.HeaderRequestID), rec.Header().Get(httpx.HeaderCorrelationID)},
				[]string{gotID, gotCorr}); diff != "" {
				t.Errorf("response headers vs context (-got +want):\n%s", diff)
			}
			checkID := func(what, got, given string, keep bool) {
				if keep && got != given {
					t.Errorf("%s = %q, want %q kept", what, got, given)
				}
				if !keep {
					if _, err := uuid.Parse(got); err != nil {
						t.Errorf("%s = %q, want a generated UUID", what, got)
					}
				}
			}
			checkID("request id", gotID, tt.reqID, tt.keepID)
			checkID("correlation id", gotCorr, tt.corr, tt.keepCo)
		})
	}
}

// newMux is a small service: one route per outcome.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", httpx.Handler(nil, func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("id") == "missing" {
			return httpx.NotFound("no such item")
		}
		return httpx.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	}))
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) { // a plain handler
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
	return mux
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpx.Chain(newMux(), httpx.RequestID, httpx.Correlation, httpx.Metrics(reg, "users"))
	// A second chain on the same registry must not panic and must share the counters.
	h2 := httpx.Chain(newMux(), httpx.Metrics(reg, "users"))
	for _, req := range []struct{ method, path string }{
		{"GET", "/items/1"}, {"GET", "/items/2"}, {"GET", "/items/missing"}, {"POST", "/items"}, {"GET", "/nowhere"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	h2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items/3", nil))

	const want = `
# HELP http_requests_total HTTP requests served, by route pattern, method and status code.
# TYPE http_requests_total counter
http_requests_total{code="200",method="GET",route="/items/{id}",service="users"} 3
http_requests_total{code="201",method="POST",route="/items",service="users"} 1
http_requests_total{code="404",method="GET",route="/items/{id}",service="users"} 1
http_requests_total{code="404",method="GET",route="unmatched",service="users"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "http_request_duration_seconds"); n != 3 {
		t.Errorf("duration series = %d, want 3", n)
	}
}

func TestAccessLog(t *testing.T) {
	log, logs := newLogger()
	h := httpx.Chain(newMux(), httpx.RequestID, httpx.Correlation, httpx.AccessLog(obs.NewLogger(logs, "users", 0)))
	_ = log
	req := httptest.NewRequest("GET", "/items/7", nil)
	req.Header.Set(httpx.HeaderCorrelationID, "corr-7")
	req.Header.Set(httpx.HeaderRequestID, "req-7")
	h.ServeHTTP(httptest.NewRecorder(), req)

	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("access log %q: %v", logs, err)
	}
	got := map[string]any{}
	for _, k := range []string{"msg", "method", "path", "route", "status", "request_id", "correlation_id", "service"} {
		got[k] = line[k]
	}
	want := map[string]any{"msg": "http request", "method": "GET", "path": "/items/7", "route": "/items/{id}",
		"status": 200.0, "request_id": "req-7", "correlation_id": "corr-7", "service": "users"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("access log (-got +want):\n%s", diff)
	}
}

func TestRecover(t *testing.T) {
	log, logs := newLogger()
	h := httpx.Chain(newMux(), httpx.Recover(log), httpx.RequestID)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/panic", nil))
	if diff := cmp.Diff([]any{rec.Code, rec.Header().Get("Content-Type")}, []any{500, "application/problem+json"}); diff != "" {
		t.Errorf("response (-got +want):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "kaboom") || !strings.Contains(logs.String(), "stack") {
		t.Errorf("panic not logged with its stack: %s", logs)
	}

	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler re-raised", v)
		}
	}()
	httpx.Recover(log)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	var logged string
	mux := newMux()
	mux.HandleFunc("GET /log", func(w http.ResponseWriter, r *http.Request) {
		logged = obs.CorrelationID(r.Context())
	})
	// Correlation after Tracing copies the request: the span must still get its route.
	h := httpx.Chain(mux, httpx.RequestID, httpx.Tracing("users"), httpx.Correlation)
	req := httptest.NewRequest("GET", "/items/5", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/log", nil))

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	s := spans[0]
	got := []string{s.Name(), s.SpanContext().TraceID().String(), s.Parent().SpanID().String()}
	want := []string{"GET /items/{id}", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("server span (-got +want):\n%s", diff)
	}
	if logged == "" {
		t.Error("correlation id lost inside the traced handler")
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) httpx.Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	httpx.Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "h") }),
		mw("a"), mw("b")).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if diff := cmp.Diff(order, []string{"a", "b", "h"}); diff != "" {
		t.Errorf("order (-got +want):\n%s", diff)
	}
}

func TestFlushThroughMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	log, _ := newLogger()
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("middleware hides http.Flusher: server-sent events would not stream")
			return
		}
		w.Write([]byte("data: x\n\n"))
		f.Flush()
	}), httpx.Recover(log), httpx.Metrics(reg, "gateway"), httpx.AccessLog(log))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/events", nil).WithContext(context.Background()))
	if !rec.Flushed {
		t.Error("response not flushed")
	}
}
