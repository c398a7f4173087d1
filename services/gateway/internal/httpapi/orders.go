package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"unicode/utf8"

	"polyshop/shared/httpx"
)

// registerOrders adds placing, listing and reading the caller's orders. The user id always
// comes from the session, never from the request: nobody can order for, list or read
// another user's orders (an admin may read any order by id).
func (a *API) registerOrders(mux *http.ServeMux) {
	mux.Handle("POST /api/orders", a.requireUser(a.placeOrder))
	mux.Handle("GET /api/orders", a.requireUser(a.listOrders))
	mux.Handle("GET /api/orders/{id}", a.requireUser(a.getOrder))
}

// orderLine is one line of a client's order.
type orderLine struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// placeOrder answers POST /api/orders: the Idempotency-Key header is required (400
// without, or longer than 200 characters), the body {items:[{productId, quantity}]} is
// decoded strictly (unknown fields → 400), and orders gets {userId: <principal>, items}.
// Its answer passes through: 202 {id, status} for a new order, the same order again for a
// repeated key, 422 naming what is wrong (no address, unknown product, quantities, lines,
// currencies, or the same key with other items).
func (a *API) placeOrder(w http.ResponseWriter, r *http.Request, p Principal) error {
	key := r.Header.Get("Idempotency-Key")
	switch n := utf8.RuneCountInString(key); {
	case n == 0:
		return httpx.BadRequest("Send an Idempotency-Key header (any unique string, e.g. a UUID) so that a retried order is placed once.",
			httpx.FieldError{Field: "Idempotency-Key", Reason: "required"})
	case n > 200:
		return httpx.BadRequest("The Idempotency-Key header is too long.",
			httpx.FieldError{Field: "Idempotency-Key", Reason: "must be 1 to 200 characters"})
	}
	var in struct {
		Items []orderLine `json:"items"`
	}
	if err := httpx.DecodeJSON(r, &in, 64<<10); err != nil {
		return err
	}
	if in.Items == nil {
		in.Items = []orderLine{} // orders answers 422 naming items
	}
	hdr := principalHeaders(p)
	hdr.Set("Idempotency-Key", key)
	ans, err := a.send(r.Context(), http.MethodPost, a.up.Orders, "/orders", hdr,
		map[string]any{"userId": p.UserID, "items": in.Items})
	if err != nil {
		return err
	}
	writeRaw(w, ans)
	return nil
}

// listOrders answers GET /api/orders: the caller's own orders, newest first, one page
// (status, cursor and limit go to orders; any other parameter is dropped; userId is always
// the principal's).
func (a *API) listOrders(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := url.Values{"userId": {p.UserID}}
	for _, k := range []string{"status", "cursor", "limit"} {
		if v, ok := r.URL.Query()[k]; ok {
			q[k] = v
		}
	}
	ans, err := a.send(r.Context(), http.MethodGet, a.up.Orders, "/orders?"+q.Encode(), principalHeaders(p), nil)
	if err != nil {
		return err
	}
	writeRaw(w, ans)
	return nil
}

// orderNotFound is the one 404 for an order that does not exist and for another user's:
// the answer must not tell them apart.
func orderNotFound() error { return httpx.NotFound("No such order.") }

// getOrder answers GET /api/orders/{id}: the order from orders (the caller's own; another
// user's is the same 404 as an unknown one, except for admins), composed with, in parallel
// and each under the compose deadline:
//   - customer {id, name, email} from users;
//   - items[i].product {name, category, price} (the catalog's current values) per distinct
//     product; the line keeps the order's own name and unitPrice;
//   - payment from payments (the order's charge, refund included).
//
// A dependency that fails or misses its deadline is left out and named in "degraded"; one
// that answers 404 (a deleted account or product; no charge yet) is left out silently.
func (a *API) getOrder(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	ans, err := a.send(ctx, http.MethodGet, a.up.Orders, "/orders/"+url.PathEscape(r.PathValue("id")), principalHeaders(p), nil)
	if isStatus(err, http.StatusNotFound) {
		return orderNotFound()
	}
	if err != nil {
		return err
	}
	var order map[string]json.RawMessage
	if err := json.Unmarshal(ans.body, &order); err != nil {
		return fmt.Errorf("orders answer: %w", err)
	}
	var owner, orderID string
	_ = json.Unmarshal(order["userId"], &owner)
	_ = json.Unmarshal(order["id"], &orderID)
	if owner != p.UserID && p.Role != "admin" {
		return orderNotFound()
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(order["items"], &items); err != nil {
		return fmt.Errorf("orders answer items: %w", err)
	}

	var (
		d        degraded
		wg       sync.WaitGroup
		customer json.RawMessage
		payment  json.RawMessage
		// One deadline for all product calls, however many lines wait for a slot.
		pctx, cancel = context.WithTimeout(ctx, a.composeTimeout)
		products     = a.products(pctx, &d, &wg, items)
	)
	defer cancel()
	wg.Go(func() { customer = a.customer(ctx, &d, owner) })
	wg.Go(func() { payment = a.payment(ctx, &d, orderID) })
	wg.Wait()

	for _, it := range items {
		var id string
		_ = json.Unmarshal(it["productId"], &id)
		if prod := products[id]; prod != nil {
			it["product"] = prod
		}
	}
	order["items"], _ = json.Marshal(items)
	if customer != nil {
		order["customer"] = customer
	}
	if payment != nil {
		order["payment"] = payment
	}
	if names := d.list(); names != nil {
		order["degraded"], _ = json.Marshal(names)
	}
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusOK, order)
}

// customer is {id, name, email} of the order's user, or nil.
func (a *API) customer(ctx context.Context, d *degraded, userID string) json.RawMessage {
	var u struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	err := a.part(ctx, a.up.Users, "/users/"+url.PathEscape(userID), &u)
	switch {
	case isStatus(err, http.StatusNotFound):
		return nil
	case err != nil:
		a.missing(ctx, d, "users", err)
		return nil
	}
	b, _ := json.Marshal(u)
	return b
}

// payment is the order's charge from payments (status charged, declined or refunded), or
// nil when there is none (yet).
func (a *API) payment(ctx context.Context, d *degraded, orderID string) json.RawMessage {
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	err := a.part(ctx, a.up.Payments, "/payments?"+url.Values{"orderId": {orderID}}.Encode(), &page)
	switch {
	case isStatus(err, http.StatusNotFound):
		return nil
	case err != nil:
		a.missing(ctx, d, "payments", err)
		return nil
	}
	// At most one charge per order (payments' unique key); a tombstone (a refund recorded
	// before any charge) is no payment.
	for _, it := range page.Items {
		var p struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(it, &p) == nil && p.Status != "tombstone" {
			return it
		}
	}
	return nil
}

// maxProductCalls bounds the concurrent catalog calls of one order (up to 50 lines).
const maxProductCalls = 8

// products starts fetching each distinct product of items from catalog on wg and returns
// the map they fill: product id → {name, category, price} (absent when unknown or failed).
func (a *API) products(ctx context.Context, d *degraded, wg *sync.WaitGroup, items []map[string]json.RawMessage) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	var mu sync.Mutex
	sem := make(chan struct{}, maxProductCalls)
	seen := map[string]bool{}
	for _, it := range items {
		var id string
		if json.Unmarshal(it["productId"], &id) != nil || id == "" || seen[id] {
			continue
		}
		seen[id] = true
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var p struct {
				Name     string          `json:"name"`
				Category string          `json:"category"`
				Price    json.RawMessage `json:"price,omitempty"`
			}
			err := a.part(ctx, a.up.Catalog, "/products/"+url.PathEscape(id), &p)
			switch {
			case isStatus(err, http.StatusNotFound):
				return
			case err != nil:
				a.missing(ctx, d, "catalog", err)
				return
			}
			b, _ := json.Marshal(p)
			mu.Lock()
			out[id] = b
			mu.Unlock()
		})
	}
	return out
}
