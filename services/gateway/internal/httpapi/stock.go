package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"polyshop/shared/httpx"
)

// registerStock adds the restock route; the composed product read is getProduct.
func (a *API) registerStock(mux *http.ServeMux) {
	// Restock (admin): inventory owns stock. The body {available, version} goes up as it is;
	// inventory's 404, 409 (stale version), 422 (bad values) and 503 (down) pass through.
	mux.Handle("PUT /api/products/{id}/stock", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		return a.forward(w, r, a.up.Inventory, "/stock/"+url.PathEscape(r.PathValue("id")))
	}))
}

// Availability is inventory's stock of a product as the public product shows it. Version
// is the one PUT /api/products/{id}/stock needs to restock without losing an update.
type Availability struct {
	Available int64 `json:"available"`
	Reserved  int64 `json:"reserved"`
	Version   int64 `json:"version"`
}

// getProduct answers GET /api/products/{id}: the catalog's product plus
// "availability" from inventory, fetched in parallel. The catalog's answer decides the
// status (its 404 and other problems pass through). Inventory gets the compose deadline:
// when it fails or is late, availability is left out and "degraded": ["inventory"] says so,
// still 200. When inventory answers 404 (it has no stock record for the product, e.g. not
// yet: records are created from catalog.product_created asynchronously), availability is
// left out without "degraded". The ETag is the catalog's, for If-Match on PATCH.
func (a *API) getProduct(w http.ResponseWriter, r *http.Request) error {
	id := url.PathEscape(r.PathValue("id"))
	var (
		stock    Availability
		stockErr error
		wg       sync.WaitGroup
	)
	wg.Go(func() { stockErr = a.part(r.Context(), a.up.Inventory, "/stock/"+id, &stock) })
	prod, err := a.send(r.Context(), http.MethodGet, a.up.Catalog, "/products/"+id, nil, nil)
	wg.Wait()
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(prod.body, &doc); err != nil {
		return fmt.Errorf("catalog product: %w", err)
	}
	var d degraded
	switch {
	case stockErr == nil:
		b, _ := json.Marshal(stock)
		doc["availability"] = b
	case isStatus(stockErr, http.StatusNotFound):
	default:
		a.missing(r.Context(), &d, "inventory", stockErr)
	}
	if names := d.list(); names != nil {
		b, _ := json.Marshal(names)
		doc["degraded"] = b
	}
	if etag := prod.header.Get("ETag"); etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Cache-Control", "no-store") // availability changes under the catalog's ETag
	return httpx.WriteJSON(w, http.StatusOK, doc)
}
