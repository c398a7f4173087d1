package httpx

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/obs"
)

// Header names for the ids that travel with every request.
const (
	HeaderRequestID     = "X-Request-Id"
	HeaderCorrelationID = "X-Correlation-Id"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain wraps h in mws, the first outermost: Chain(mux, RequestID, Correlation, AccessLog(log))
// runs RequestID first. A typical order is Recover, RequestID, Correlation, Tracing,
// Metrics, AccessLog, so the access log sees the final status and ids.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	infoKey
)

// WithRequestID returns a copy of ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFrom returns the request id in ctx, or "" when there is none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// requestInfo is shared by every middleware of one request. ServeMux records the matched
// pattern in the *http.Request it receives, which is a copy made by the innermost middleware
// calling WithContext; each middleware copies it here on the way out so the outer ones
// (metrics, access log) see the route.
type requestInfo struct {
	mu      sync.Mutex
	pattern string
}

func withInfo(r *http.Request) (*http.Request, *requestInfo) {
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		return r, info
	}
	info := &requestInfo{}
	return r.WithContext(context.WithValue(r.Context(), infoKey, info)), info
}

// recordPattern copies r.Pattern into the request's shared info, if both exist.
func recordPattern(r *http.Request) {
	if r.Pattern == "" {
		return
	}
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.mu.Lock()
		if info.pattern == "" {
			info.pattern = r.Pattern
		}
		info.mu.Unlock()
	}
}

func (i *requestInfo) route() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.pattern
}

// serve calls next and records the pattern the mux matched, if next is the mux.
func serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	next.ServeHTTP(w, r)
	recordPattern(r)
}

// routeLabel turns a ServeMux pattern ("GET /api/users/{id}") into a bounded metric label
// ("/api/users/{id}"); requests that matched no pattern share "unmatched".
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// validID accepts ids that are safe to log and echo: 1 to 128 letters, digits, '.', '_', '-'.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// RequestID takes the request id from the X-Request-Id header, or generates a UUIDv7 when
// it is absent or malformed, stores it in the context (RequestIDFrom) and echoes it in the
// response header.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validID(id) {
			id = newID()
		}
		w.Header().Set(HeaderRequestID, id)
		r, _ = withInfo(r)
		serve(next, w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

// Correlation takes the correlation id from the X-Correlation-Id header, or starts a new one
// (a UUIDv7) when it is absent or malformed, stores it with obs.WithCorrelationID and echoes
// it in the response header.
func Correlation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderCorrelationID)
		if !validID(id) {
			id = newID()
		}
		w.Header().Set(HeaderCorrelationID, id)
		r, _ = withInfo(r)
		serve(next, w, r.WithContext(obs.WithCorrelationID(r.Context(), id)))
	})
}

// statusWriter records the status and size of a response. It forwards Flush (needed for
// server-sent events) and exposes the original writer to http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func wrap(w http.ResponseWriter) *statusWriter {
	if sw, ok := w.(*statusWriter); ok {
		return sw
	}
	return &statusWriter{ResponseWriter: w}
}

// AccessLog logs one line per request at info level (warning for 5xx) with method, path,
// route, status, size and duration, through log's ...Context methods so it carries the
// trace and correlation ids.
func AccessLog(log *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			r, info := withInfo(r)
			sw := wrap(w)
			serve(next, sw, r)
			level := slog.LevelInfo
			if sw.code() >= 500 {
				level = slog.LevelWarn
			}
			log.Log(r.Context(), level, "http request",
				"method", r.Method,
				"path", r.URL.Path,
				"route", routeLabel(info.route()),
				"status", sw.code(),
				"bytes", sw.bytes,
				"duration_ms", float64(time.Since(start).Microseconds())/1000,
				"request_id", RequestIDFrom(r.Context()),
			)
		})
	}
}

// Metrics counts requests (http_requests_total by route, method and code) and observes their
// duration (http_request_duration_seconds by route and method), with a constant service
// label. The route is the ServeMux pattern without its method, so label cardinality stays
// bounded. Registering twice with the same registerer reuses the first collectors.
func Metrics(reg prometheus.Registerer, service string) Middleware {
	labels := prometheus.Labels{"service": service}
	requests := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "http_requests_total",
		Help:        "HTTP requests served, by route pattern, method and status code.",
		ConstLabels: labels,
	}, []string{"route", "method", "code"}))
	duration := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "http_request_duration_seconds",
		Help:        "Time to serve HTTP requests, by route pattern and method.",
		ConstLabels: labels,
		Buckets:     prometheus.DefBuckets,
	}, []string{"route", "method"}))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			r, info := withInfo(r)
			sw := wrap(w)
			serve(next, sw, r)
			route := routeLabel(info.route())
			requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code())).Inc()
			duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		})
	}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("httpx: register metrics: %v", err))
	}
	return c
}

// Tracing starts a server span per request with otelhttp, continuing the caller's trace from
// the W3C traceparent header (through the global propagator that obs.SetupTracing installs).
// When the mux matched a pattern, the span is named "<METHOD> <route>" and carries
// http.route, so spans group by endpoint rather than by raw path.
func Tracing(service string) Middleware {
	return func(next http.Handler) http.Handler {
		// otelhttp renames the span from r.Pattern of the request it passed on, which the mux
		// fills in only when it receives that very request; when a middleware in between
		// copied the request, the pattern comes from the shared request info instead.
		inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, info := withInfo(r)
			serve(next, w, r)
			pattern := info.route()
			if pattern == "" {
				return
			}
			span := trace.SpanFromContext(r.Context())
			span.SetAttributes(attribute.String("http.route", routeLabel(pattern)))
			if r.Pattern == "" {
				span.SetName(r.Method + " " + routeLabel(pattern))
			}
		})
		h := otelhttp.NewHandler(inner, service)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, _ = withInfo(r)
			h.ServeHTTP(w, r)
		})
	}
}

// Recover turns a panic in a handler into a logged error and, if the response has not
// started, a 500 problem. http.ErrAbortHandler is re-raised, as net/http expects.
func Recover(log *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := wrap(w)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					WriteProblem(sw, r, &Error{Status: http.StatusInternalServerError, Detail: internalDetail}, nil)
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}
}
