package httpx

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Standard is the handler every Polyshop service serves: mux wrapped in the standard
// middleware (Recover, RequestID, Correlation, Tracing, Metrics into reg, AccessLog), with
// requests that match no route answered as problem+json too — 404, or 405 with the Allow
// header the mux computed — instead of ServeMux's plain-text replies.
func Standard(service string, log *slog.Logger, reg prometheus.Registerer, mux *http.ServeMux) http.Handler {
	return StandardWith(service, log, reg, mux)
}

// StandardWith is Standard with extra middleware run inside the standard chain, just in
// front of the routes, so that what they answer (an edge check's problem, say) gets request
// ids, metrics and the access log like any route's answer. The first of inner runs first.
//
// Standard and StandardWith bound the requests in flight to DefaultMaxInflight and shed the
// excess with 503 (Shed); StandardLimited takes a service's own Limits.
func StandardWith(service string, log *slog.Logger, reg prometheus.Registerer, mux *http.ServeMux, inner ...Middleware) http.Handler {
	return StandardLimited(service, log, reg, Limits{}, mux, inner...)
}

// routedProblems serves matched requests with mux and unmatched ones as problems.
func routedProblems(log *slog.Logger, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Let the mux decide between 404 and 405 (and redirects for cleaned paths), then
		// replace its plain-text body with a problem.
		rec := &statusOnly{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			WriteProblem(w, r, NotFound(fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)), log)
		case http.StatusMethodNotAllowed:
			e := newError(http.StatusMethodNotAllowed,
				fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path), nil)
			e.Headers = http.Header{"Allow": rec.header.Values("Allow")}
			WriteProblem(w, r, e, log)
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		}
	})
}

// statusOnly records the status and headers of the mux's reply to an unmatched request
// and drops its body.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusOnly) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
