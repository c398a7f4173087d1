package httpapi

import (
	"net/http"
	"net/url"

	"polyshop/shared/httpx"
)

// registerCatalog adds the product routes: reads are public, writes need an admin.
// GET /api/products/{id} is composed with inventory's availability (stock.go); the others are
// forwarded to the catalog service as they are (method, query, body and the
// If-Match header for optimistic concurrency); its answers and problems pass through.
func (a *API) registerCatalog(mux *http.ServeMux) {
	mux.Handle("GET /api/products", httpx.Handler(a.log, func(w http.ResponseWriter, r *http.Request) error {
		return a.forward(w, r, a.up.Catalog, "/products")
	}))
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
