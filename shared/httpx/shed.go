package httpx

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxInflight bounds the requests a service serves at once when its configuration
// does not say otherwise (<SVC>_MAX_INFLIGHT). On two cores a service does not serve more
// than a few hundred requests a second, so 64 in flight already means a queue of a few
// hundred milliseconds: past that, waiting longer only makes every answer late.
const DefaultMaxInflight = 64

// DefaultRetryAfter is the Retry-After of a shed request when Limits says nothing.
const DefaultRetryAfter = time.Second

// Limits bound the work a service admits (Shed).
type Limits struct {
	// MaxInflight is how many requests are served at once; the next one is shed at once
	// (503, Retry-After) instead of waiting in a queue. Zero or less: DefaultMaxInflight.
	MaxInflight int
	// RequestTimeout, when positive, is the deadline put on every admitted request's
	// context, so a store query or an outgoing call made with r.Context() stops when the
	// answer would be too late to matter. Zero: no deadline beyond the client's.
	RequestTimeout time.Duration
	// RetryAfter is what a shed request is told to wait (rounded up to whole seconds);
	// zero: DefaultRetryAfter.
	RetryAfter time.Duration
	// Exempt, when set, names more requests left outside the bound (and without the
	// deadline), such as long-lived event streams. /healthz, /readyz and /metrics are always
	// exempt: an overloaded service must still say so, and be observed.
	Exempt func(*http.Request) bool
	// Bulkheads are shares of the bound kept for some requests: a request matching one
	// needs a slot of it as well as one of MaxInflight, so one slow kind of request fills
	// its own share and is shed there instead of taking every slot. A request is counted in
	// the first bulkhead that matches. They are checked with the bound, before any other
	// middleware, so their refusals cost as little as the bound's.
	Bulkheads []Bulkhead
}

// Bulkhead is a share of a service's in-flight bound (Limits.Bulkheads).
type Bulkhead struct {
	// Name labels the bulkhead's metrics ("<service> <name>") and its refusals' detail.
	Name string
	// Match reports whether a request belongs to the bulkhead.
	Match func(*http.Request) bool
	// MaxInflight is how many of its requests are served at once (at least 1).
	MaxInflight int
}

// Routes returns a Bulkhead.Match for routes written as "METHOD /exact/path", as ServeMux
// patterns without wildcards are ("GET" also matching HEAD, as in ServeMux).
func Routes(patterns ...string) func(*http.Request) bool {
	type route struct{ method, path string }
	rs := make([]route, len(patterns))
	for i, p := range patterns {
		m, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/") {
			panic(fmt.Sprintf("httpx.Routes: %q is not \"METHOD /path\"", p))
		}
		rs[i] = route{m, path}
	}
	return func(r *http.Request) bool {
		for _, rt := range rs {
			if r.URL.Path == rt.path && (r.Method == rt.method || rt.method == http.MethodGet && r.Method == http.MethodHead) {
				return true
			}
		}
		return false
	}
}

// exempt reports whether r is left outside the bound.
func (l Limits) exempt(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return l.Exempt != nil && l.Exempt(r)
}

// Shed bounds the requests served at once to l.MaxInflight and sheds the excess at once:
// a 503 problem with Retry-After, written without logging (under overload a log line per
// refusal would spend the very CPU that is missing). Admitted requests get l.RequestTimeout
// as a deadline on their context. Shedding instead of queueing is what keeps an
// overloaded service fast for the requests it admits and lets it recover as soon as the
// load stops: there is no backlog of abandoned requests left to work through.
//
// With reg, it exports http_inflight_requests (gauge) and http_shed_requests_total
// (counter), labelled with service, and the same for each bulkhead labelled "<service>
// <name>". It is safe for concurrent use.
func Shed(l Limits, service string, reg prometheus.Registerer) Middleware {
	if l.MaxInflight <= 0 {
		l.MaxInflight = DefaultMaxInflight
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = DefaultRetryAfter
	}
	retryAfter := strconv.Itoa(int(math.Ceil(l.RetryAfter.Seconds())))
	whole := newBound(service, l.MaxInflight, retryAfter, reg)
	shares := make([]*bound, len(l.Bulkheads))
	for i, b := range l.Bulkheads {
		shares[i] = newBound(service+" "+b.Name, max(b.MaxInflight, 1), retryAfter, reg)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if l.exempt(r) {
				next.ServeHTTP(w, r)
				return
			}
			for i, b := range l.Bulkheads {
				if b.Match(r) {
					if !shares[i].acquire(w, r) {
						return
					}
					defer shares[i].release()
					break
				}
			}
			if !whole.acquire(w, r) {
				return
			}
			defer whole.release()
			if l.RequestTimeout > 0 {
				ctx, cancel := context.WithTimeout(r.Context(), l.RequestTimeout)
				defer cancel()
				r = r.WithContext(ctx)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bound is one set of in-flight slots of Shed, with its metrics.
type bound struct {
	slots      chan struct{}
	detail     string
	retryAfter string
	inflight   prometheus.Gauge
	shed       prometheus.Counter
}

func newBound(name string, n int, retryAfter string, reg prometheus.Registerer) *bound {
	b := &bound{
		slots:      make(chan struct{}, n),
		detail:     fmt.Sprintf("The %s service is at capacity (%d requests in flight); retry after %ss.", name, n, retryAfter),
		retryAfter: retryAfter,
	}
	if reg != nil {
		labels := prometheus.Labels{"service": name}
		b.inflight = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_inflight_requests", Help: "Requests being served, inside the in-flight bound.", ConstLabels: labels,
		}))
		b.shed = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "http_shed_requests_total", Help: "Requests refused with 503 because the in-flight bound was reached.", ConstLabels: labels,
		}))
	}
	return b
}

// acquire takes a slot, or answers 503 with Retry-After and reports false.
func (b *bound) acquire(w http.ResponseWriter, r *http.Request) bool {
	select {
	case b.slots <- struct{}{}:
	default:
		if b.shed != nil {
			b.shed.Inc()
		}
		e := Unavailable(b.detail)
		e.Headers = http.Header{"Retry-After": {b.retryAfter}}
		WriteProblem(w, r, e, nil)
		return false
	}
	if b.inflight != nil {
		b.inflight.Inc()
	}
	return true
}

func (b *bound) release() {
	<-b.slots
	if b.inflight != nil {
		b.inflight.Dec()
	}
}

// StandardLimited is StandardWith with the in-flight bound and deadline of l (Shed) in
// place of the defaults that Standard and StandardWith apply (DefaultMaxInflight, no
// deadline). Shed runs right after Recover and RequestID, before tracing, metrics and the
// access log, so a refusal costs next to nothing; refusals are counted by Shed's own
// metric instead.
func StandardLimited(service string, log *slog.Logger, reg prometheus.Registerer, l Limits, mux *http.ServeMux, inner ...Middleware) http.Handler {
	var h http.Handler = routedProblems(log, mux)
	for i := len(inner) - 1; i >= 0; i-- {
		h = inner[i](h)
	}
	return Chain(h, Recover(log), RequestID, Shed(l, service, reg), Correlation, Tracing(service), Metrics(reg, service), AccessLog(log))
}

// Paths returns a Limits.Exempt that matches requests by path as http.ServeMux patterns do:
// a pattern ending in "/" names its whole subtree ("/export/"), any other exactly that path
// ("/faults").
func Paths(patterns ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, p := range patterns {
			if r.URL.Path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(r.URL.Path, p)) {
				return true
			}
		}
		return false
	}
}
