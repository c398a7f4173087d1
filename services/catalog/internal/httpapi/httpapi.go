// Package httpapi is the catalog's internal HTTP API (see openapi.yaml): products, their
// listing by category with opaque cursors, and the category registry. Errors are
// problem+json; domain errors become statuses in one table, problem.
package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/shared/httpx"
)

// MaxBodyBytes bounds request bodies; attributes alone may take 8 KiB.
const MaxBodyBytes = 64 << 10

// API serves the catalog's HTTP endpoints.
type API struct {
	svc    *catalog.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
}

// Defaults of the in-flight bound and the per-request deadline (CATALOG_MAX_INFLIGHT,
// CATALOG_REQUEST_TIMEOUT). Every request waits on FerretDB, whose queries run in
// PostgreSQL on the same two cores: 32 at once is already several times what they can
// run in parallel. The deadline is the gateway's upstream timeout: past it nobody waits
// for the answer, so the query stops (the handlers pass r.Context() to the store).
const (
	DefaultMaxInflight    = 32
	DefaultRequestTimeout = 10 * time.Second
)

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound and deadline (httpx.Shed). The export (a rebuild
// pages through it for minutes) and the operator's /admin routes stay outside them.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *catalog.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight, RequestTimeout: DefaultRequestTimeout}}
	for _, o := range opts {
		o(a)
	}
	a.limits.Exempt = httpx.Paths("/export/", "/admin/")
	return a
}

// Handler returns the complete handler: routes, health endpoints and middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("GET /categories", h(a.categories))
	mux.Handle("POST /products", h(a.create))
	mux.Handle("GET /products", h(a.list))
	mux.Handle("GET /products/{id}", h(a.get))
	mux.Handle("PATCH /products/{id}", h(a.update))
	mux.Handle("DELETE /products/{id}", h(a.delete))
	mux.Handle("GET /export/products", h(a.exportProducts))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	// Unmatched routes become 404 and 405 problems (with Allow).
	return httpx.StandardLimited("catalog", a.log, a.reg, a.limits, mux)
}

// problem is the one table from domain errors to HTTP problems.
func problem(err error) error {
	var v *catalog.Validation
	switch {
	case errors.As(err, &v):
		fields := make([]httpx.FieldError, len(v.Fields))
		for i, f := range v.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Reason: f.Reason}
		}
		return httpx.Unprocessable("Some fields are invalid; see errors.", fields...)
	case errors.Is(err, catalog.ErrBadCursor):
		return httpx.BadRequest("The query parameters are not valid.",
			httpx.FieldError{Field: "cursor", Reason: "is not a cursor this service issued"})
	case errors.Is(err, catalog.ErrNotFound):
		return httpx.NotFound("No such product.")
	case errors.Is(err, catalog.ErrVersionConflict):
		return httpx.Conflict("The product was changed since you read it (" + strings.TrimPrefix(err.Error(), catalog.ErrVersionConflict.Error()+": ") + "); read it again and retry.")
	case errors.Is(err, catalog.ErrBusy):
		return httpx.Conflict("The product is being changed concurrently; retry.")
	}
	return err
}

type categoriesResponse struct {
	Categories []catalog.Category `json:"categories"`
}

func (a *API) categories(w http.ResponseWriter, r *http.Request) error {
	return httpx.WriteJSON(w, http.StatusOK, categoriesResponse{Categories: catalog.Categories()})
}

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	var np catalog.NewProduct
	if err := httpx.DecodeJSON(r, &np, MaxBodyBytes); err != nil {
		return err
	}
	p, err := a.svc.Create(r.Context(), np)
	if err != nil {
		return problem(err)
	}
	w.Header().Set("Location", "/products/"+p.ID)
	w.Header().Set("ETag", etag(p.Version))
	return httpx.WriteJSON(w, http.StatusCreated, p)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	p, err := a.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return problem(err)
	}
	w.Header().Set("ETag", etag(p.Version))
	return httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	var patch catalog.Patch
	if err := httpx.DecodeJSON(r, &patch, MaxBodyBytes); err != nil {
		return err
	}
	hv, err := ifMatch(r)
	if err != nil {
		return err
	}
	switch {
	case hv != nil && patch.Version != nil && *hv != *patch.Version:
		return httpx.BadRequest("If-Match and the version field disagree.",
			httpx.FieldError{Field: "version", Reason: fmt.Sprintf("is %d but If-Match says %d", *patch.Version, *hv)})
	case hv != nil:
		patch.Version = hv
	}
	p, err := a.svc.Update(r.Context(), r.PathValue("id"), patch)
	if err != nil {
		return problem(err)
	}
	w.Header().Set("ETag", etag(p.Version))
	return httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	v, err := ifMatch(r)
	if err != nil {
		return err
	}
	if s := r.URL.Query().Get("version"); s != "" && v == nil {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return httpx.BadRequest("The version parameter is malformed.",
				httpx.FieldError{Field: "version", Reason: "must be a positive integer"})
		}
		if n < 1 {
			return httpx.Unprocessable("Some fields are invalid; see errors.",
				httpx.FieldError{Field: "version", Reason: "must be a positive integer"})
		}
		v = &n
	}
	if err := a.svc.Delete(r.Context(), r.PathValue("id"), v); err != nil {
		return problem(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type listResponse struct {
	Items      []catalog.Product `json:"items"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	lq := catalog.ListQuery{Category: q.Get("category")}
	var fields, outOfRange []httpx.FieldError // 400 (does not parse), 422 (parses, not acceptable)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			fields = append(fields, httpx.FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer between 1 and %d", catalog.MaxLimit)})
		case n < 1 || n > catalog.MaxLimit:
			outOfRange = append(outOfRange, httpx.FieldError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", catalog.MaxLimit)})
		default:
			lq.Limit = n
		}
	}
	if s := q.Get("cursor"); s != "" {
		after, ok := decodeCursor(s)
		if !ok {
			fields = append(fields, httpx.FieldError{Field: "cursor", Reason: "is not a cursor this service issued"})
		}
		lq.After = after
	}
	if len(fields) > 0 {
		return httpx.BadRequest("The query parameters are not valid.", fields...)
	}
	if len(outOfRange) > 0 {
		return httpx.Unprocessable("Some fields are invalid; see errors.", outOfRange...)
	}
	ps, next, err := a.svc.List(r.Context(), lq)
	if err != nil {
		return problem(err)
	}
	resp := listResponse{Items: ps}
	if resp.Items == nil {
		resp.Items = []catalog.Product{}
	}
	if next != "" {
		resp.NextCursor = encodeCursor(next)
	}
	return httpx.WriteJSON(w, http.StatusOK, resp)
}

// cursorPrefix versions the cursor format so a later change can still read old cursors.
const cursorPrefix = "p1:"

func encodeCursor(afterID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + afterID))
}

func decodeCursor(s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return "", false
	}
	return strings.TrimPrefix(string(b), cursorPrefix), true
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// ifMatch reads the If-Match header: a single entity tag holding a version ("3", also W/"3").
func ifMatch(r *http.Request) (*int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return nil, nil
	}
	s := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return nil, httpx.BadRequest("The If-Match header must hold the product version as an entity tag, such as \"3\".",
			httpx.FieldError{Field: "If-Match", Reason: "must be a quoted positive integer version"})
	}
	return &n, nil
}
