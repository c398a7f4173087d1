// Package httpapi is the inventory service's internal HTTP API (documented in
// openapi.yaml): stock reads, restock, reservations by order, and the fault switches,
// with the one table that maps domain errors to HTTP statuses. It is reached by other
// services (the gateway, orders), never by end users.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
)

// API serves the inventory service's HTTP endpoints.
type API struct {
	svc    *inventory.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
}

// DefaultMaxInflight is the in-flight bound unless INVENTORY_MAX_INFLIGHT says otherwise.
// Every request waits on PostgreSQL through a pool of 16 connections (shared/pgpool) that
// the relays and the reservation consumer share: 32 is twice what can run at once, enough
// to keep the pool busy; beyond it a request would only queue for a connection.
const DefaultMaxInflight = 32

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound (httpx.Shed). The export (a rebuild pages through it)
// and the operator's /faults (a fault must be switchable off under overload) stay
// outside it, as do /healthz, /readyz and /metrics.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *inventory.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}}
	for _, o := range opts {
		o(a)
	}
	a.limits.Exempt = httpx.Paths("/export/", "/faults", "/faults/")
	return a
}

// Handler returns every route wrapped in the shared middleware. While the down fault is
// on, the business routes answer 503; /faults, /healthz, /readyz and /metrics stay up.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	biz := func(fn httpx.HandlerFunc) http.Handler {
		return h(func(w http.ResponseWriter, r *http.Request) error {
			if a.svc.Faults().Down {
				return httpx.Unavailable("Inventory is down (lab fault switch); try again later.")
			}
			return fn(w, r)
		})
	}
	mux.Handle("GET /stock", biz(a.listStock))
	mux.Handle("GET /stock/{productId}", biz(a.getStock))
	mux.Handle("PUT /stock/{productId}", biz(a.restock))
	mux.Handle("GET /stock/{productId}/ledger", biz(a.ledger))
	mux.Handle("GET /reservations", biz(a.reservations))
	mux.Handle("GET /export/stock", biz(a.exportStock))
	mux.Handle("GET /ledgers", biz(a.ledgers))
	mux.Handle("POST /stock/{productId}/reconcile", biz(a.reconcile))
	mux.Handle("GET /faults", h(a.getFaults))
	mux.Handle("PUT /faults", h(a.putFaults))
	mux.Handle("DELETE /faults", h(a.deleteFaults))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	return httpx.StandardLimited("inventory", a.log, a.reg, a.limits, mux)
}

type stockJSON struct {
	ProductID string `json:"productId"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Version   int64  `json:"version"`
}

func toStock(s inventory.Stock) stockJSON {
	return stockJSON{ProductID: s.ProductID, Available: s.Available, Reserved: s.Reserved, Version: s.Version}
}

type ledgerJSON struct {
	ProductID string `json:"productId"`
	Initial   int64  `json:"initial"`
	Restocked int64  `json:"restocked"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
	Released  int64  `json:"released"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
	Retired   bool   `json:"retired"`
	// Held is what the product's active reservations hold: equal to Reserved unless a
	// reserve was applied twice (lab pattern switch inventory.dedup off).
	Held int64 `json:"held"`
}

func toLedger(st inventory.Stock) ledgerJSON {
	return ledgerJSON{ProductID: st.ProductID, Initial: st.Initial, Restocked: st.Restocked, Reserved: st.Reserved,
		Sold: st.Sold, Released: st.Released, Available: st.Available, Version: st.Version, Retired: st.Retired, Held: st.Held}
}

func (a *API) getStock(w http.ResponseWriter, r *http.Request) error {
	st, err := a.svc.Stock(r.Context(), r.PathValue("productId"))
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toStock(st))
}

func (a *API) listStock(w http.ResponseWriter, r *http.Request) error {
	var ids []string
	if raw := r.URL.Query().Get("ids"); raw != "" {
		ids = strings.Split(raw, ",")
	}
	list, err := a.svc.Stocks(r.Context(), ids)
	if err != nil {
		return problem(err)
	}
	items := make([]stockJSON, len(list))
	for i, st := range list {
		items[i] = toStock(st)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *API) ledger(w http.ResponseWriter, r *http.Request) error {
	st, err := a.svc.Ledger(r.Context(), r.PathValue("productId"))
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toLedger(st))
}

type restockRequest struct {
	Available *int64 `json:"available"`
	Version   *int64 `json:"version"`
}

func (a *API) restock(w http.ResponseWriter, r *http.Request) error {
	var req restockRequest
	if err := httpx.DecodeJSON(r, &req, 4<<10); err != nil {
		return err
	}
	var missing []httpx.FieldError
	if req.Available == nil {
		missing = append(missing, httpx.FieldError{Field: "available", Reason: "is required"})
	}
	if req.Version == nil {
		missing = append(missing, httpx.FieldError{Field: "version", Reason: "is required"})
	}
	if missing != nil {
		return httpx.Unprocessable("Some fields are missing; see errors.", missing...)
	}
	st, err := a.svc.Restock(r.Context(), r.PathValue("productId"), *req.Available, *req.Version)
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toStock(st))
}

type reservationJSON struct {
	ID        string             `json:"id"`
	OrderID   string             `json:"orderId"`
	UserID    string             `json:"userId"`
	Status    string             `json:"status"`
	Items     []events.StockItem `json:"items"`
	CreatedAt time.Time          `json:"createdAt"`
	ExpiresAt *time.Time         `json:"expiresAt"`
	UpdatedAt time.Time          `json:"updatedAt"`
}

func (a *API) reservations(w http.ResponseWriter, r *http.Request) error {
	list, err := a.svc.Reservations(r.Context(), r.URL.Query().Get("orderId"))
	if err != nil {
		return problem(err)
	}
	items := make([]reservationJSON, len(list))
	for i, res := range list {
		its := res.Items
		if its == nil {
			its = []events.StockItem{}
		}
		items[i] = reservationJSON{ID: res.ID, OrderID: res.OrderID, UserID: res.UserID, Status: string(res.Status),
			Items: its, CreatedAt: res.CreatedAt.UTC(), ExpiresAt: utc(res.ExpiresAt), UpdatedAt: res.UpdatedAt.UTC()}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (a *API) getFaults(w http.ResponseWriter, r *http.Request) error {
	f, err := a.svc.RefreshFaults(r.Context())
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, f)
}

type faultsRequest struct {
	LatencyMs *int  `json:"latencyMs"`
	Down      *bool `json:"down"`
}

func (a *API) putFaults(w http.ResponseWriter, r *http.Request) error {
	var req faultsRequest
	if err := httpx.DecodeJSON(r, &req, 4<<10); err != nil {
		return err
	}
	f, err := a.svc.SetFaults(r.Context(), inventory.FaultsPatch{LatencyMs: req.LatencyMs, Down: req.Down})
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, f)
}

func (a *API) deleteFaults(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.svc.ClearFaults(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// problem is the one table from domain errors to HTTP problems. Anything it does not know
// is returned as is and becomes a logged 500.
func problem(err error) error {
	var verr *inventory.ValidationError
	switch {
	case errors.As(err, &verr):
		return httpx.Unprocessable("A field is invalid; see errors.", httpx.FieldError{Field: verr.Field, Reason: verr.Reason})
	case errors.Is(err, inventory.ErrNotFound):
		return httpx.NotFound("No stock is known for this product.")
	case errors.Is(err, inventory.ErrStaleVersion):
		return httpx.Conflict("The stock changed since the version you sent; read it again and retry.")
	case errors.Is(err, inventory.ErrHeldExceedsReserved):
		return httpx.Conflict("Active reservations hold more than this product counts as reserved; nothing was changed (inspect GET /stock/{productId}/ledger).")
	}
	return err
}

// reconcile serves POST /stock/{productId}/reconcile: the operator's repair after the lab
// pattern switch inventory.dedup was off. Units counted as reserved beyond what the
// product's active reservations hold go back to available (counted as released, with a
// stock_changed event); 200 {"returned": n, "ledger": <ledger after>}, n = 0 when there was
// nothing to give back.
func (a *API) reconcile(w http.ResponseWriter, r *http.Request) error {
	st, returned, err := a.svc.Reconcile(r.Context(), r.PathValue("productId"))
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"returned": returned, "ledger": toLedger(st)})
}
