// Package httpapi is the activity service's internal HTTP API (see openapi.yaml): a user's
// feed, newest first, paged with an opaque cursor, and the global recent-activity feed.
// Errors are problem+json; domain errors become statuses in one table, problem.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/activity/internal/activity"
	"polyshop/shared/httpx"
)

// API serves the activity endpoints.
type API struct {
	svc    *activity.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
}

// DefaultMaxInflight is the in-flight bound unless ACTIVITY_MAX_INFLIGHT says otherwise.
// A feed page is one or a few single-partition reads in Cassandra, which runs on the same
// two cores with its own request threads: 32 pages at once already queue there, and the
// event consumer (ACTIVITY_CONSUMER_CONCURRENCY) writes through the same session.
const DefaultMaxInflight = 32

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound (httpx.Shed). /healthz, /readyz and /metrics stay
// outside it.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *activity.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Handler returns the complete handler: routes, health endpoints and middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("GET /users/{id}/activity", h(a.userFeed))
	mux.Handle("GET /activity/recent", h(a.recent))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	// Unknown paths, internal ones of other services included, are 404 problems.
	return httpx.StandardLimited("activity", a.log, a.reg, a.limits, mux)
}

// problem is the one table from domain errors to HTTP problems; anything else is a 500
// whose cause httpx logs once.
func problem(err error) error {
	var in *activity.InputError
	switch {
	case errors.As(err, &in) && in.Unacceptable:
		return httpx.Unprocessable("A field is invalid; see errors.", httpx.FieldError{Field: in.Field, Reason: in.Reason})
	case errors.As(err, &in):
		return httpx.BadRequest("The request is not valid.", httpx.FieldError{Field: in.Field, Reason: in.Reason})
	}
	return err
}

func (a *API) userFeed(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := a.svc.UserFeed(r.Context(), r.PathValue("id"), q.Get("limit"), q.Get("cursor"))
	if err != nil {
		return problem(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) recent(w http.ResponseWriter, r *http.Request) error {
	p, err := a.svc.Recent(r.Context(), r.URL.Query().Get("limit"))
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, p)
}
