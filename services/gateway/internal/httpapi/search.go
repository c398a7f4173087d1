package httpapi

import (
	"net/http"

	"polyshop/shared/httpx"
)

// registerSearch adds GET /api/search, forwarded to the search service with its query
// (q, category, minPrice, maxPrice, inStock, cursor, limit); the search service validates
// the parameters and answers 400 (does not parse) or 422 (out of range) problems naming the
// bad one. It has its own share of the in-flight bound (bulkheads, catalog.go).
func (a *API) registerSearch(mux *http.ServeMux) {
	mux.Handle("GET /api/search", httpx.Handler(a.log, func(w http.ResponseWriter, r *http.Request) error {
		return a.forward(w, r, a.up.Search, "/search")
	}))
}
