// Package httpapi is the payments service's internal HTTP API (documented in openapi.yaml):
// the payments of an order, and the lab's fault switches. It is reached only by other
// services (the gateway, orders' operators), never by end users.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/payments/internal/payments"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
)

// API serves the payments service's HTTP endpoints.
type API struct {
	svc    *payments.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
}

// DefaultMaxInflight is the in-flight bound unless PAYMENTS_MAX_INFLIGHT says otherwise.
// The API is the operator's (payment listings, faults): the work of payments is its command
// consumer, which must keep PostgreSQL's pool of 16 connections (shared/pgpool). 32 keeps
// the listings from queueing for connections the consumer needs.
const DefaultMaxInflight = 32

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound (httpx.Shed). The operator's /faults (a fault must be
// switchable off under overload) stays outside it, as do /healthz, /readyz and /metrics.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *payments.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}}
	for _, o := range opts {
		o(a)
	}
	a.limits.Exempt = httpx.Paths("/faults", "/faults/")
	return a
}

// Handler returns every route wrapped in the shared middleware. /faults, /healthz, /readyz
// and /metrics answer even while the down switch is on; /payments answers 503 then.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("GET /payments", h(a.listPayments))
	mux.Handle("GET /faults", h(a.getFaults))
	mux.Handle("PUT /faults", h(a.putFaults))
	mux.Handle("DELETE /faults", h(a.deleteFaults))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	return httpx.StandardLimited("payments", a.log, a.reg, a.limits, mux)
}

// paymentJSON is a payment as the API shows it.
type paymentJSON struct {
	ID        string        `json:"id"`
	OrderID   string        `json:"orderId"`
	UserID    string        `json:"userId"`
	Amount    events.Money  `json:"amount"`
	Status    string        `json:"status"`
	Refunded  *events.Money `json:"refunded"`
	Reason    string        `json:"reason,omitempty"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

type paymentList struct {
	Items []paymentJSON `json:"items"`
}

func (a *API) listPayments(w http.ResponseWriter, r *http.Request) error {
	if !r.URL.Query().Has("orderId") {
		return a.allPayments(w, r) // operator: every payment, paged (list.go)
	}
	ps, err := a.svc.ByOrder(r.Context(), r.URL.Query().Get("orderId"))
	if err != nil {
		return problem(err)
	}
	out := paymentList{Items: make([]paymentJSON, len(ps))}
	for i, p := range ps {
		out.Items[i] = toJSON(p)
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getFaults(w http.ResponseWriter, r *http.Request) error {
	f, err := a.svc.Faults(r.Context())
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, f)
}

func (a *API) putFaults(w http.ResponseWriter, r *http.Request) error {
	var p payments.FaultsPatch
	if err := httpx.DecodeJSON(r, &p, 4<<10); err != nil {
		return err
	}
	f, err := a.svc.PatchFaults(r.Context(), p)
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, f)
}

func (a *API) deleteFaults(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.ClearFaults(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// problem is the one table from domain errors to HTTP problems. Anything it does not know
// is returned as is and becomes a logged 500.
func problem(err error) error {
	var ferr *payments.FieldError
	switch {
	case errors.As(err, &ferr):
		return httpx.Unprocessable("A field is invalid; see errors.", httpx.FieldError{Field: ferr.Field, Reason: ferr.Reason})
	case errors.Is(err, payments.ErrDown):
		return httpx.Unavailable("Payments is down (the lab's down switch is on); DELETE /faults or PUT {\"down\": false} to bring it back.")
	}
	return err
}
