// Package httpapi is the orders service's internal HTTP API (documented in openapi.yaml):
// routes, JSON shapes, and the one table that maps domain errors to HTTP statuses. It is
// reached only by the gateway and operators, on loopback.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/orders/internal/orders"
	"polyshop/shared/httpx"
	"polyshop/shared/rebuild"
)

// API serves the orders service's HTTP endpoints.
type API struct {
	svc    *orders.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
}

// DefaultMaxInflight is the in-flight bound unless ORDERS_MAX_INFLIGHT says otherwise.
// Every request waits on PostgreSQL through a pool of 16 connections (shared/pgpool) that
// the relays, the saga timers and the reply consumer share — a placement also on users for
// the address, at most ORDERS_ADDRESS_TIMEOUT: 32 is twice what the pool runs at once;
// beyond it a request would only queue for a connection.
const DefaultMaxInflight = 32

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound (httpx.Shed). The operator's /admin routes and
// /faults (a fault must be switchable off under overload) stay outside it, as do /healthz,
// /readyz and /metrics.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *orders.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}}
	for _, o := range opts {
		o(a)
	}
	a.limits.Exempt = httpx.Paths("/admin/", "/faults", "/faults/")
	return a
}

// Handler returns every route wrapped in the shared middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("POST /orders", h(a.place))
	mux.Handle("GET /orders/{id}", h(a.get))
	mux.Handle("GET /orders", h(a.list))
	mux.Handle("GET /sagas", h(a.sagas))
	mux.Handle("GET /faults", h(a.getFaults))
	mux.Handle("PUT /faults", h(a.putFaults))
	mux.Handle("DELETE /faults", h(a.deleteFaults))
	mux.Handle("POST /admin/rebuild-copies", h(a.rebuildCopies))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	return httpx.StandardLimited("orders", a.log, a.reg, a.limits, mux)
}

type itemJSON struct {
	ProductID string       `json:"productId"`
	Name      string       `json:"name"`
	Quantity  int          `json:"quantity"`
	UnitPrice orders.Money `json:"unitPrice"`
}

type stepJSON struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	StartedAt time.Time `json:"startedAt"`
	At        time.Time `json:"at"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"`
}

type orderJSON struct {
	ID              string          `json:"id"`
	UserID          string          `json:"userId"`
	Status          string          `json:"status"`
	CancelReason    string          `json:"cancelReason,omitempty"`
	Items           []itemJSON      `json:"items"`
	Total           orders.Money    `json:"total"`
	ShippingAddress *orders.Address `json:"shippingAddress"`
	Steps           []stepJSON      `json:"steps"`
	CreatedAt       time.Time       `json:"createdAt"`
	UpdatedAt       time.Time       `json:"updatedAt"`
}

func toJSON(o orders.Order) orderJSON {
	j := orderJSON{ID: o.ID, UserID: o.UserID, Status: string(o.Status), CancelReason: o.CancelReason,
		Items: make([]itemJSON, len(o.Items)), Total: o.Total, ShippingAddress: o.ShippingAddress,
		Steps: make([]stepJSON, len(o.Steps)), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	for i, it := range o.Items {
		j.Items[i] = itemJSON{ProductID: it.ProductID, Name: it.Name, Quantity: it.Quantity, UnitPrice: it.UnitPrice}
	}
	for i, st := range o.Steps {
		j.Steps[i] = stepJSON{Name: st.Name, Status: st.Status, StartedAt: st.StartedAt, At: st.At, Attempts: st.Attempts, Error: st.Error}
	}
	return j
}

type placeRequest struct {
	UserID string `json:"userId"`
	Items  []struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	} `json:"items"`
}

type placedJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (a *API) place(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return httpx.BadRequest("The Idempotency-Key header is required.", httpx.FieldError{Field: "Idempotency-Key", Reason: "header is required"})
	}
	var req placeRequest
	if err := httpx.DecodeJSON(r, &req, 64<<10); err != nil {
		return err
	}
	lines := make([]orders.Line, len(req.Items))
	for i, it := range req.Items {
		lines[i] = orders.Line{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	p, err := a.svc.Place(r.Context(), req.UserID, key, lines)
	if err != nil {
		return problem(err)
	}
	w.Header().Set("Location", "/orders/"+p.ID)
	status := http.StatusAccepted
	if !p.Created {
		status = http.StatusOK
	}
	return httpx.WriteJSON(w, status, placedJSON{ID: p.ID, Status: string(p.Status)})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	o, err := a.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toJSON(o))
}

type pageJSON struct {
	Items      []orderJSON `json:"items"`
	NextCursor string      `json:"nextCursor,omitempty"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	q := orders.ListQuery{UserID: qs.Get("userId"), Status: orders.Status(qs.Get("status"))}
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return problem(&orders.BadRequestError{Field: "limit", Reason: "must be an integer from 1 to 100"})
		}
		if n < 1 || n > 100 {
			return problem(&orders.ValidationError{Field: "limit", Reason: "must be from 1 to 100"})
		}
		q.Limit = n
	}
	if v := qs.Get("cursor"); v != "" {
		c, err := orders.ParseCursor(v)
		if err != nil {
			return problem(err)
		}
		q.After = &c
	}
	p, err := a.svc.List(r.Context(), q)
	if err != nil {
		return problem(err)
	}
	out := pageJSON{Items: make([]orderJSON, len(p.Items))}
	for i, o := range p.Items {
		out.Items[i] = toJSON(o)
	}
	if p.Next != nil {
		out.NextCursor = p.Next.Encode()
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

type oldestJSON struct {
	OrderID string    `json:"orderId"`
	State   string    `json:"state"`
	Since   time.Time `json:"since"`
}

type sagasJSON struct {
	Counts        map[string]int `json:"counts"`
	OldestPending *oldestJSON    `json:"oldestPending"`
}

func (a *API) sagas(w http.ResponseWriter, r *http.Request) error {
	st, err := a.svc.Sagas(r.Context(), orders.State(r.URL.Query().Get("status")))
	if err != nil {
		return problem(err)
	}
	out := sagasJSON{Counts: map[string]int{}}
	for k, v := range st.Counts {
		out.Counts[string(k)] = v
	}
	if o := st.OldestPending; o != nil {
		out.OldestPending = &oldestJSON{OrderID: o.OrderID, State: string(o.State), Since: o.Since}
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

type faultsJSON struct {
	StepTimeoutMs *int `json:"stepTimeoutMs"`
}

func (a *API) writeFaults(w http.ResponseWriter, r *http.Request) error {
	ms, err := a.svc.Faults(r.Context())
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, faultsJSON{StepTimeoutMs: &ms})
}

func (a *API) getFaults(w http.ResponseWriter, r *http.Request) error { return a.writeFaults(w, r) }

func (a *API) putFaults(w http.ResponseWriter, r *http.Request) error {
	var req faultsJSON
	if err := httpx.DecodeJSON(r, &req, 4<<10); err != nil {
		return err
	}
	if req.StepTimeoutMs != nil {
		if err := a.svc.SetStepTimeout(r.Context(), *req.StepTimeoutMs); err != nil {
			return problem(err)
		}
	}
	return a.writeFaults(w, r)
}

func (a *API) deleteFaults(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.ClearFaults(r.Context()); err != nil {
		return problem(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// problem is the one table from domain errors to HTTP problems. Anything it does not know
// is returned as is and becomes a logged 500.
func problem(err error) error {
	var (
		invalid orders.Invalid
		verr    *orders.ValidationError
		bad     *orders.BadRequestError
	)
	switch {
	case errors.As(err, &invalid):
		fields := make([]httpx.FieldError, len(invalid))
		for i, v := range invalid {
			fields[i] = httpx.FieldError{Field: v.Field, Reason: v.Reason}
		}
		return httpx.Unprocessable("Some fields are invalid; see errors.", fields...)
	case errors.As(err, &verr):
		return httpx.Unprocessable("A field is invalid; see errors.", httpx.FieldError{Field: verr.Field, Reason: verr.Reason})
	case errors.As(err, &bad):
		return httpx.BadRequest("The request is not valid.", httpx.FieldError{Field: bad.Field, Reason: bad.Reason})
	case errors.Is(err, orders.ErrNotFound):
		return httpx.NotFound("No such order.")
	case errors.Is(err, orders.ErrRebuildRunning):
		return httpx.Conflict("A rebuild of the local copies is already running.")
	case errors.Is(err, rebuild.ErrTailGone):
		return httpx.Conflict("The stream no longer holds the start of the rebuild's tail (retention removed it meanwhile); run the rebuild again.")
	case errors.Is(err, orders.ErrUsersUnavailable):
		return httpx.Unavailable("Users did not answer the address read (pattern switch orders.addressCopy is sync: orders asks users at order time); retry shortly.")
	case isUnavailable(err):
		return httpx.Unavailable("An owner's export (users or catalog) is unavailable; retry shortly.")
	case errors.Is(err, orders.ErrKeyReused):
		return httpx.Unprocessable("This Idempotency-Key was already used for an order with different items.",
			httpx.FieldError{Field: "Idempotency-Key", Reason: "already used by this user for different items; use a new key for a new order"})
	}
	return err
}

// isUnavailable reports whether err is an owner's export that failed (5xx) or did not answer.
func isUnavailable(err error) bool {
	var herr *httpx.Error
	var uerr *url.Error
	return (errors.As(err, &herr) && herr.Status >= 500) || errors.As(err, &uerr)
}

// rebuildCopies serves POST /admin/rebuild-copies: the local copies from the owners'
// exports plus the streams' tails (orders.Service.RebuildCopies).
func (a *API) rebuildCopies(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.svc.RebuildCopies(r.Context())
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, rep)
}
