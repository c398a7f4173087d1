// Package httpapi is the activity service's internal HTTP API (see openapi.yaml): a user's
// feed, newest first, paged with an opaque cursor, and the global recent-activity feed.
// Errors are problem+json; domain errors become statuses in one table, errorFor.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/activity/internal/activity"
	"polyshop/shared/httpx"
)

// API serves the activity endpoints.
type API struct {
	log *slog.Logger
	svc *activity.Service
}

// New returns the API over svc.
func New(log *slog.Logger, svc *activity.Service) *API {
	return &API{log: log, svc: svc}
}

// Handler returns the complete handler: routes, health endpoints and middleware. reg
// receives the HTTP metrics and serves /metrics (nil: the default registry).
func (a *API) Handler(health httpx.Health, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("GET /users/{id}/activity", h(a.userFeed))
	mux.Handle("GET /activity/recent", h(a.recent))
	health.Register(mux, reg)
	var mreg prometheus.Registerer = prometheus.DefaultRegisterer
	if reg != nil {
		mreg = reg
	}
	// Unknown paths, internal ones of other services included, are 404 problems.
	return httpx.Standard("activity", a.log, mreg, mux)
}

// errorFor is the one table from domain errors to HTTP problems; anything else is a 500
// whose cause httpx logs once.
func errorFor(err error) error {
	var in *activity.InputError
	switch {
	case errors.As(err, &in):
		return httpx.BadRequest("The request is not valid.", httpx.FieldError{Field: in.Field, Reason: in.Reason})
	}
	return err
}

func (a *API) userFeed(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := a.svc.UserFeed(r.Context(), r.PathValue("id"), q.Get("limit"), q.Get("cursor"))
	if err != nil {
		return errorFor(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) recent(w http.ResponseWriter, r *http.Request) error {
	p, err := a.svc.Recent(r.Context(), r.URL.Query().Get("limit"))
	if err != nil {
		return errorFor(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, p)
}
