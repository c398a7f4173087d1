// Package httpapi is the search service's internal HTTP API (see openapi.yaml): GET /search
// with filters, facets and opaque search_after cursors, and the admin endpoints for rebuild
// and drift. Errors are problem+json; problem is the one mapping from domain errors.
package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/search/internal/search"
	"polyshop/shared/httpx"
	"polyshop/shared/rebuild"
)

// API serves the search endpoints.
type API struct {
	svc    *search.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
}

// Defaults of the in-flight bound and the per-request deadline (SEARCH_MAX_INFLIGHT,
// SEARCH_REQUEST_TIMEOUT). Elasticsearch runs a query on a thread pool of 1.5 × cores + 1
// (4 threads on two cores) and queues the rest: 32 requests in flight is already a queue
// several times the pool, so more would only make every answer later (see README, "Under
// load").
const (
	DefaultMaxInflight    = 32
	DefaultRequestTimeout = 5 * time.Second
)

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound and deadline (httpx.Shed). The operator's /admin
// routes (a rebuild runs for minutes) are always left outside them.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *search.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight, RequestTimeout: DefaultRequestTimeout}}
	for _, o := range opts {
		o(a)
	}
	if a.limits.MaxInflight <= 0 {
		a.limits.MaxInflight = DefaultMaxInflight
	}
	a.limits.Exempt = httpx.Paths("/admin/")
	return a
}

// Handler returns the complete handler: routes, health endpoints and middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	// Bulkheads: searching and listing each have their own bound, so slow searches (full
	// text, facets) cannot take the slots of the listing (cheap, mostly cached), nor the
	// reverse; the service's bound around everything is the two together. The queries that
	// reach Elasticsearch have a tighter bound of their own, behind the result cache
	// (search.Options.QueryInflight): a cached answer never waits for one. They are checked
	// with the service's bound, before tracing and the access log (httpx.Limits.Bulkheads).
	mux.Handle("GET /search", h(a.search))
	mux.Handle("GET /products", h(a.list))
	mux.Handle("POST /admin/rebuild", h(a.rebuild))
	mux.Handle("GET /admin/drift", h(a.drift))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	// Unmatched routes become 404 and 405 problems (with Allow).
	outer := a.limits
	outer.MaxInflight = 2 * a.limits.MaxInflight
	outer.Bulkheads = []httpx.Bulkhead{
		{Name: "query", Match: httpx.Routes("GET /search"), MaxInflight: a.limits.MaxInflight},
		{Name: "listing", Match: httpx.Routes("GET /products"), MaxInflight: a.limits.MaxInflight},
	}
	return httpx.StandardLimited("search", a.log, a.reg, outer, mux)
}

// problem is the one table from domain errors to HTTP problems.
func problem(err error) error {
	switch {
	case errors.Is(err, search.ErrRebuildRunning):
		return httpx.Conflict("A rebuild is already running.")
	case errors.Is(err, search.ErrBusy):
		e := httpx.Unavailable("The search engine is at its bound of queries in flight; retry after 1s.")
		e.Headers = http.Header{"Retry-After": {"1"}}
		return e
	case errors.Is(err, search.ErrUnavailable):
		return httpx.Unavailable("The search engine is unavailable; retry shortly.")
	case errors.Is(err, search.ErrCatalogUnavailable):
		return httpx.Unavailable("The catalog service is unavailable; retry shortly.")
	case errors.Is(err, rebuild.ErrTailGone):
		return httpx.Conflict("The stream no longer holds the start of the rebuild's tail (retention removed it meanwhile); run the rebuild again.")
	}
	var herr *httpx.Error
	var uerr *url.Error
	if (errors.As(err, &herr) && herr.Status >= 500) || errors.As(err, &uerr) {
		// An owner's export (catalog, inventory) failed or did not answer.
		return httpx.Unavailable("An owner's export (catalog or inventory) is unavailable; retry shortly.")
	}
	return err
}

// SearchResponse is the body of GET /search.
type SearchResponse struct {
	Hits       []search.Hit  `json:"hits"`
	Total      int64         `json:"total"`
	Facets     search.Facets `json:"facets"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

func (a *API) search(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseQuery(r)
	if err != nil {
		return err
	}
	res, err := a.svc.Search(r.Context(), q)
	if err != nil {
		return problem(err)
	}
	resp := SearchResponse{Hits: res.Hits, Total: res.Total, Facets: res.Facets}
	if res.Next != nil {
		resp.NextCursor = EncodeCursor(*res.Next)
	}
	return httpx.WriteJSON(w, http.StatusOK, resp)
}

// ParseQuery validates the query parameters of GET /search; every problem is reported with
// its parameter name. A parameter that does not parse (unknown, repeated, not a number, not
// a cursor this service issued) is a 400; when every one parses, values that are not
// acceptable (out of range, minPrice above maxPrice) are a 422.
func ParseQuery(r *http.Request) (search.Query, error) {
	v := r.URL.Query()
	q := search.Query{Limit: search.DefaultLimit}
	var fields, invalids []httpx.FieldError
	bad := func(field, reason string) { fields = append(fields, httpx.FieldError{Field: field, Reason: reason}) }
	invalid := func(field, reason string) {
		invalids = append(invalids, httpx.FieldError{Field: field, Reason: reason})
	}
	for key := range v {
		switch key {
		case "q", "category", "minPrice", "maxPrice", "inStock", "cursor", "limit":
			if len(v[key]) > 1 {
				bad(key, "is given more than once")
			}
		default:
			bad(key, "is not a parameter of this endpoint")
		}
	}
	q.Text = strings.TrimSpace(v.Get("q"))
	switch {
	case !utf8.ValidString(q.Text):
		bad("q", "must be valid UTF-8 text")
	case utf8.RuneCountInString(q.Text) > search.MaxQueryLen:
		invalid("q", fmt.Sprintf("must be at most %d characters", search.MaxQueryLen))
	}
	q.Category = v.Get("category")
	if len(q.Category) > 64 {
		invalid("category", "is too long")
	}
	price := func(key string) *int64 {
		s := v.Get(key)
		if s == "" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err != nil:
			bad(key, "must be a non-negative integer amount in minor units")
			return nil
		case n < 0:
			invalid(key, "must be a non-negative integer amount in minor units")
			return nil
		}
		return &n
	}
	q.MinPrice, q.MaxPrice = price("minPrice"), price("maxPrice")
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		invalid("minPrice", "must not be greater than maxPrice")
	}
	if s := v.Get("inStock"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			bad("inStock", "must be true or false")
		} else {
			q.InStock = &b
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			bad("limit", fmt.Sprintf("must be an integer between 1 and %d", search.MaxLimit))
		case n < 1 || n > search.MaxLimit:
			invalid("limit", fmt.Sprintf("must be between 1 and %d", search.MaxLimit))
		default:
			q.Limit = n
		}
	}
	if s := v.Get("cursor"); s != "" {
		c, ok := DecodeCursor(s)
		if !ok {
			bad("cursor", "is not a cursor this service issued")
		} else {
			q.After = &c
		}
	}
	if len(fields) > 0 {
		return search.Query{}, httpx.BadRequest("The search parameters are not valid.", fields...)
	}
	if len(invalids) > 0 {
		return search.Query{}, httpx.Unprocessable("Some search parameters are invalid; see errors.", invalids...)
	}
	return q, nil
}

// EncodeCursor makes the opaque cursor of a page's last sort key.
func EncodeCursor(c search.Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (search.Cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return search.Cursor{}, false
	}
	var c search.Cursor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return search.Cursor{}, false
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		return search.Cursor{}, false
	}
	return c, true
}

// ListResponse is the body of GET /products: the catalog's list shape.
type ListResponse struct {
	Items      []search.Listed `json:"items"`
	NextCursor string          `json:"nextCursor,omitempty"`
}

// list serves the product listing from the index (the read model built for browsing);
// the gateway routes GET /api/products here. Parameters and answers follow the catalog's
// GET /products: unknown parameters are ignored, a limit that is not an integer or a
// cursor this service did not issue is a 400, a limit outside 1..100 or an over-long
// category a 422. Cursors are keyset cursors on the product id, encoded as the catalog
// encodes its own, so a cursor from either listing continues in the other.
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseListQuery(r)
	if err != nil {
		return err
	}
	items, next, err := a.svc.List(r.Context(), q)
	if err != nil {
		return problem(err)
	}
	resp := ListResponse{Items: items, NextCursor: EncodeListCursor(next)}
	return httpx.WriteJSON(w, http.StatusOK, resp)
}

// ParseListQuery validates the query parameters of GET /products.
func ParseListQuery(r *http.Request) (search.ListQuery, error) {
	v := r.URL.Query()
	q := search.ListQuery{Category: v.Get("category"), Limit: search.DefaultLimit}
	var bad, invalid []httpx.FieldError
	if len(q.Category) > 64 {
		invalid = append(invalid, httpx.FieldError{Field: "category", Reason: "is too long"})
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			bad = append(bad, httpx.FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer between 1 and %d", search.MaxLimit)})
		case n < 1 || n > search.MaxLimit:
			invalid = append(invalid, httpx.FieldError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", search.MaxLimit)})
		default:
			q.Limit = n
		}
	}
	if s := v.Get("cursor"); s != "" {
		id, ok := DecodeListCursor(s)
		if !ok {
			bad = append(bad, httpx.FieldError{Field: "cursor", Reason: "is not a cursor this service issued"})
		}
		q.After = id
	}
	if len(bad) > 0 {
		return search.ListQuery{}, httpx.BadRequest("The query parameters are not valid.", bad...)
	}
	if len(invalid) > 0 {
		return search.ListQuery{}, httpx.Unprocessable("Some fields are invalid; see errors.", invalid...)
	}
	return q, nil
}

// listCursorPrefix is the catalog's cursor format version ("p1:" + the last id, base64url):
// the listing moved from the catalog to this read model without changing its cursors.
const listCursorPrefix = "p1:"

// EncodeListCursor makes the opaque cursor continuing after the product id ("" → "").
func EncodeListCursor(afterID string) string {
	if afterID == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(listCursorPrefix + afterID))
}

// DecodeListCursor reads a cursor made by EncodeListCursor (or by the catalog).
func DecodeListCursor(s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), listCursorPrefix) {
		return "", false
	}
	id := strings.TrimPrefix(string(b), listCursorPrefix)
	if _, err := uuid.Parse(id); err != nil {
		return "", false
	}
	return id, true
}

// RefusedRebuild is the body of a rebuild refused on drift: a problem (409) with the
// rebuild's report, whose drift member says what differed.
type RefusedRebuild struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail"`
	Report search.RebuildReport `json:"report"`
}

func (a *API) rebuild(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.svc.Rebuild(r.Context())
	if errors.Is(err, search.ErrDriftRefused) {
		d := rep.Drift
		body := RefusedRebuild{Type: "about:blank", Title: "Conflict", Status: http.StatusConflict, Report: rep,
			Detail: fmt.Sprintf("The rebuilt index disagrees with the catalog after %d checks (%d missing, %d extra, %d version mismatches); the alias stays on the old index.",
				rep.DriftRounds, len(d.Missing), len(d.Extra), len(d.VersionMismatch))}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		return json.NewEncoder(w).Encode(body)
	}
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, rep)
}

func (a *API) drift(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.svc.Drift(r.Context())
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, rep)
}
