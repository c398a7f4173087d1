package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"polyshop/shared/httpx"
)

// registerCatalog adds the product routes: reads are public, writes need an admin.
// GET /api/products (browsing) is served by the search service's listing, the read model
// built for it (listProducts); GET /api/products/{id} is composed with inventory's
// availability (stock.go); the others are forwarded to the catalog service as they are
// (method, query, body and the If-Match header for optimistic concurrency); its answers
// and problems pass through.
func (a *API) registerCatalog(mux *http.ServeMux) {
	mux.Handle("GET /api/products", httpx.Handler(a.log, a.listProducts))    // with a bulkhead: bulkheads
	mux.Handle("GET /api/products/{id}", httpx.Handler(a.log, a.getProduct)) // composed: stock.go
	mux.Handle("POST /api/products", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		return a.forward(w, r, a.up.Catalog, "/products")
	}))
	mux.Handle("PATCH /api/products/{id}", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		return a.forward(w, r, a.up.Catalog, "/products/"+url.PathEscape(r.PathValue("id")))
	}))
	mux.Handle("DELETE /api/products/{id}", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		return a.forward(w, r, a.up.Catalog, "/products/"+url.PathEscape(r.PathValue("id")))
	}))
	mux.Handle("GET /api/categories", httpx.Handler(a.log, func(w http.ResponseWriter, r *http.Request) error {
		return a.forward(w, r, a.up.Catalog, "/categories")
	}))
	a.registerSearch(mux)
}

// bulkheads give browsing and searching each their own share of the in-flight bound (a
// quarter of it), so that one slow kind of request — searches waiting on a busy
// Elasticsearch, say — fills its own share and is shed there, instead of taking every slot
// of the gateway and getting the browsing shed with it. They are checked with the bound,
// before tracing and the access log: at three times the knee most requests are refusals,
// and a refusal that went through the whole chain (as these did when each route wrapped
// its own httpx.Shed) cost the gateway as much CPU as a proxied answer.
func (a *API) bulkheads() []httpx.Bulkhead {
	n := a.limits.MaxInflight
	if n <= 0 {
		n = httpx.DefaultMaxInflight
	}
	return []httpx.Bulkhead{
		{Name: "browse", Match: httpx.Routes("GET /api/products"), MaxInflight: max(n/4, 1)},
		{Name: "search", Match: httpx.Routes("GET /api/search"), MaxInflight: max(n/4, 1)},
	}
}

// listProducts is GET /api/products: the CQRS split. The catalog keeps the writes and the
// reads by id; browsing (a filtered, sorted, paged read of many products) is served by the
// search service's GET /products, answered from its Elasticsearch index, which holds every
// product for exactly this kind of read. The catalog on FerretDB v1 sorts every matching
// document for each page (see the search README), so serving browsing there made one
// read pattern saturate the owner of the writes. The public answer keeps its shape: the
// catalog's product items, keyset cursors in the catalog's format, the same 400/422.
//
// The listing is eventually consistent with the catalog: a product created, changed or
// deleted a moment ago shows once search has applied the event and refreshed (about a
// second). When search does not answer the listing is a 503 with Retry-After; it does not
// fall back to the catalog, which is the store this split protects.
//
// The category is checked against the catalog's registry (cached, see categoryCache) so an
// unknown one stays a 422 naming category; when the registry cannot be had the check is
// skipped and an unknown category lists nothing.
func (a *API) listProducts(w http.ResponseWriter, r *http.Request) error {
	if c := r.URL.Query().Get("category"); c != "" {
		names, ok := a.categories.get(r.Context(), a)
		if ok && !slices.Contains(names, c) {
			return httpx.Unprocessable("Some fields are invalid; see errors.",
				httpx.FieldError{Field: "category", Reason: "unknown category; one of " + strings.Join(names, ", ")})
		}
	}
	return a.forward(w, r, a.up.Search, "/products")
}

// Category registry cache lifetimes: the registry changes only with a catalog release.
const (
	categoriesTTL      = 5 * time.Minute
	categoriesRetryTTL = 5 * time.Second // after a failed fetch, do not ask again sooner
)

// categoryCache holds the catalog's category names. It is safe for concurrent use; one
// caller fetches while the others use what is held (or skip the check).
type categoryCache struct {
	mu       sync.Mutex
	names    []string
	until    time.Time
	fetching bool
}

// get returns the category names and whether they are known.
func (c *categoryCache) get(ctx context.Context, a *API) ([]string, bool) {
	c.mu.Lock()
	if time.Now().Before(c.until) || c.fetching {
		names := c.names
		c.mu.Unlock()
		return names, names != nil
	}
	c.fetching = true
	c.mu.Unlock()

	names, err := a.fetchCategories(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetching = false
	if err != nil {
		c.until = time.Now().Add(categoriesRetryTTL)
		a.log.WarnContext(ctx, "category registry unavailable; listing without the category check", "err", err)
		return c.names, c.names != nil
	}
	c.names, c.until = names, time.Now().Add(categoriesTTL)
	return names, true
}

func (a *API) fetchCategories(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.composeTimeout)
	defer cancel()
	var reg struct {
		Categories []struct {
			Name string `json:"name"`
		} `json:"categories"`
	}
	if err := callJSON(ctx, a.client, http.MethodGet, strings.TrimRight(a.up.Catalog, "/")+"/categories", nil, nil, &reg); err != nil {
		return nil, fmt.Errorf("fetch the category registry: %w", err)
	}
	names := make([]string, 0, len(reg.Categories))
	for _, c := range reg.Categories {
		names = append(names, c.Name)
	}
	return names, nil
}
