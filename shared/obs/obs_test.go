package obs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"polyshop/shared/config"
	"polyshop/shared/obs"
)

func TestContextIDs(t *testing.T) {
	ctx := context.Background()
	if got := []string{obs.CorrelationID(ctx), obs.CausationID(ctx)}; !cmp.Equal(got, []string{"", ""}) {
		t.Errorf("empty context ids = %q", got)
	}
	ctx = obs.WithCorrelationID(ctx, "corr")
	ctx = obs.WithCausationID(ctx, "cause")
	if diff := cmp.Diff([]string{obs.CorrelationID(ctx), obs.CausationID(ctx)}, []string{"corr", "cause"}); diff != "" {
		t.Errorf("ids (-got +want):\n%s", diff)
	}
}

func logLine(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("log output %q: %v", buf, err)
	}
	delete(m, "time")
	buf.Reset()
	return m
}

func TestLogger(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	spanCtx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	traceID, spanID := span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()

	var buf bytes.Buffer
	log := obs.NewLogger(&buf, "users", slog.LevelInfo)
	tests := []struct {
		name string
		log  func()
		want map[string]any
	}{
		{"plain context", func() { log.InfoContext(context.Background(), "hello", "k", 1) },
			map[string]any{"level": "INFO", "msg": "hello", "service": "users", "k": 1.0}},
		{"span and correlation", func() {
			log.WarnContext(obs.WithCorrelationID(spanCtx, "corr-1"), "hello")
		}, map[string]any{"level": "WARN", "msg": "hello", "service": "users",
			"trace_id": traceID, "span_id": spanID, "correlation_id": "corr-1"}},
		{"with group keeps ids", func() {
			log.WithGroup("req").With("a", "b").ErrorContext(spanCtx, "boom", "c", "d")
		}, map[string]any{"level": "ERROR", "msg": "boom", "service": "users",
			"trace_id": traceID, "span_id": spanID,
			"req": map[string]any{"a": "b", "c": "d"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.log()
			if diff := cmp.Diff(logLine(t, &buf), tt.want); diff != "" {
				t.Errorf("record (-got +want):\n%s", diff)
			}
		})
	}

	log.DebugContext(spanCtx, "hidden")
	if buf.Len() != 0 {
		t.Errorf("debug record written at info level: %s", buf.String())
	}
}

func TestSetupTracingWithoutExporter(t *testing.T) {
	shutdown, err := obs.SetupTracing(context.Background(), "users", config.MapGetenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if fields := otel.GetTextMapPropagator().Fields(); !slices.Contains(fields, "traceparent") {
		t.Errorf("propagator fields = %v, want traceparent", fields)
	}
	ctx, span := obs.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	if !span.SpanContext().IsValid() {
		t.Error("span context not valid: trace ids would be missing from logs and events")
	}
	carrier := http.Header{}
	otel.GetTextMapPropagator().Inject(ctx, propagationCarrier(carrier))
	if carrier.Get("traceparent") == "" {
		t.Error("no traceparent injected")
	}
}

type propagationCarrier http.Header

func (c propagationCarrier) Get(k string) string { return http.Header(c).Get(k) }
func (c propagationCarrier) Set(k, v string)     { http.Header(c).Set(k, v) }
func (c propagationCarrier) Keys() []string {
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

func TestSetupTracingExportsOTLP(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	shutdown, err := obs.SetupTracing(context.Background(), "users",
		config.MapGetenv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	_, span := obs.Tracer("test").Start(context.Background(), "op")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if posts.Load() == 0 {
		t.Error("no spans were exported to the OTLP endpoint")
	}
}
