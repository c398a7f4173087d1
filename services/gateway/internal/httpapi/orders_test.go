package httpapi

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPlaceOrder(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		keys   []string
	)
	orders := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if strings.Contains(string(b), `"quantity":0`) {
			writeStatusProblem(w, 422)
			return
		}
		writeTestJSON(w, 202, map[string]string{"id": "o1", "status": "PENDING"})
	})
	gw := newGateway(t, Upstreams{Sessions: principalSessions(t).URL, Orders: orders.URL})
	const items = `{"items":[{"productId":"p1","quantity":2}]}`
	tests := []struct {
		name       string
		hdr        []string
		body       string
		wantStatus int
		wantBody   string // sent to orders
	}{
		{name: "anonymous", body: items, hdr: []string{"Idempotency-Key", "k1"}, wantStatus: 401},
		{name: "no Idempotency-Key", body: items, hdr: bearer("cust-1"), wantStatus: 400},
		{name: "Idempotency-Key too long", body: items, hdr: append(bearer("cust-1"), "Idempotency-Key", strings.Repeat("k", 201)), wantStatus: 400},
		{name: "a user id in the body is refused", body: `{"userId":"c2","items":[{"productId":"p1","quantity":2}]}`,
			hdr: append(bearer("cust-1"), "Idempotency-Key", "k1"), wantStatus: 400},
		{name: "unknown field in a line", body: `{"items":[{"productId":"p1","quantity":2,"price":1}]}`,
			hdr: append(bearer("cust-1"), "Idempotency-Key", "k1"), wantStatus: 400},
		{name: "placed for the principal", body: items, hdr: append(bearer("cust-1"), "Idempotency-Key", "k1"),
			wantStatus: 202, wantBody: `{"items":[{"productId":"p1","quantity":2}],"userId":"c1"}`},
		{name: "orders' 422 passes through", body: `{"items":[{"productId":"p1","quantity":0}]}`,
			hdr: append(bearer("cust-2"), "Idempotency-Key", "k2"), wantStatus: 422,
			wantBody: `{"items":[{"productId":"p1","quantity":0}],"userId":"c2"}`},
		{name: "no items: orders decides", body: `{}`, hdr: append(bearer("cust-1"), "Idempotency-Key", "k3"),
			wantStatus: 202, wantBody: `{"items":[],"userId":"c1"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			bodies, keys = nil, nil
			mu.Unlock()
			resp, body := gwCall(t, gw, "POST", "/api/orders", tc.body, tc.hdr...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			mu.Lock()
			defer mu.Unlock()
			var want []string
			if tc.wantBody != "" {
				want = []string{tc.wantBody}
				if keys[0] == "" {
					t.Error("Idempotency-Key not sent to orders")
				}
			}
			if diff := cmp.Diff(bodies, want); diff != "" {
				t.Errorf("orders got (-got +want):\n%s", diff)
			}
		})
	}
}

func TestListOrders(t *testing.T) {
	orders := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 200, map[string]any{"items": []any{}})
	})
	gw := newGateway(t, Upstreams{Sessions: principalSessions(t).URL, Orders: orders.URL})
	if resp, _ := gwCall(t, gw, "GET", "/api/orders", ""); resp.StatusCode != 401 {
		t.Errorf("anonymous = %d, want 401", resp.StatusCode)
	}
	for _, path := range []string{"/api/orders", "/api/orders?limit=5&cursor=abc&userId=c2&status=CONFIRMED&other=1"} {
		if resp, body := gwCall(t, gw, "GET", path, "", bearer("cust-1")...); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
	}
	want := []string{"GET /orders?userId=c1", "GET /orders?cursor=abc&limit=5&status=CONFIRMED&userId=c1"}
	if diff := cmp.Diff(orders.requests(), want); diff != "" {
		t.Errorf("orders saw (-got +want):\n%s", diff)
	}
}

// orderOfC1 is an order of c1 as orders answers it.
const orderOfC1 = `{"id":"o1","userId":"c1","status":"CONFIRMED",` +
	`"items":[{"productId":"p1","name":"Kettle","quantity":2,"unitPrice":{"amount":1299,"currency":"EUR"}},` +
	`{"productId":"p2","name":"Mug","quantity":1,"unitPrice":{"amount":500,"currency":"EUR"}},` +
	`{"productId":"p1","name":"Kettle","quantity":1,"unitPrice":{"amount":1299,"currency":"EUR"}}],` +
	`"total":{"amount":4397,"currency":"EUR"},"shippingAddress":{"street":"1 Main St","city":"Berlin","postalCode":"10115","country":"DE"},` +
	`"steps":[{"name":"reserve","status":"done","at":"2026-12-01T10:00:00Z","attempts":1}],"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:01Z"}`

func TestGetOrderComposed(t *testing.T) {
	ok := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	}
	orders := ok(orderOfC1)
	users := ok(`{"id":"c1","email":"c1@example.com","name":"Cee One","role":"customer","address":null,"version":2}`)
	catalog := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/products/p1":
			writeTestJSON(w, 200, map[string]any{"id": "p1", "name": "Kettle 2", "category": "kettle", "price": map[string]any{"amount": 1399, "currency": "EUR"}, "version": 4})
		default:
			writeStatusProblem(w, 404) // p2 was deleted
		}
	}
	payments := ok(`{"items":[{"id":"pay1","orderId":"o1","userId":"c1","amount":{"amount":4397,"currency":"EUR"},"status":"charged","refunded":null,"createdAt":"2026-12-01T10:00:01Z","updatedAt":"2026-12-01T10:00:01Z"}]}`)

	const (
		kettle  = `{"productId":"p1","name":"Kettle","quantity":2,"unitPrice":{"amount":1299,"currency":"EUR"},"product":{"name":"Kettle 2","category":"kettle","price":{"amount":1399,"currency":"EUR"}}}`
		kettle1 = `{"productId":"p1","name":"Kettle","quantity":1,"unitPrice":{"amount":1299,"currency":"EUR"},"product":{"name":"Kettle 2","category":"kettle","price":{"amount":1399,"currency":"EUR"}}}`
		mug     = `{"productId":"p2","name":"Mug","quantity":1,"unitPrice":{"amount":500,"currency":"EUR"}}`
		rest    = `"total":{"amount":4397,"currency":"EUR"},"shippingAddress":{"street":"1 Main St","city":"Berlin","postalCode":"10115","country":"DE"},` +
			`"steps":[{"name":"reserve","status":"done","at":"2026-12-01T10:00:00Z","attempts":1}],"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:01Z"`
		customer = `"customer":{"id":"c1","name":"Cee One","email":"c1@example.com"}`
		payment  = `"payment":{"id":"pay1","orderId":"o1","userId":"c1","amount":{"amount":4397,"currency":"EUR"},"status":"charged","refunded":null,"createdAt":"2026-12-01T10:00:01Z","updatedAt":"2026-12-01T10:00:01Z"}`
		head     = `{"id":"o1","userId":"c1","status":"CONFIRMED","items":[` + kettle + `,` + mug + `,` + kettle1 + `],` + rest
		full     = head + `,` + customer + `,` + payment + `}`
	)
	tests := []struct {
		name                                string
		token                               string
		path                                string
		orders, users, catalog, payments    http.HandlerFunc // nil: unreachable
		wantStatus                          int
		want                                string
		wantCatalogCalls, wantPaymentsCalls int
	}{
		{name: "own order, everything answers", token: "cust-1", path: "/api/orders/o1", orders: orders, users: users, catalog: catalog, payments: payments,
			wantStatus: 200, want: full},
		{name: "admin reads any order", token: "admin", path: "/api/orders/o1", orders: orders, users: users, catalog: catalog, payments: payments,
			wantStatus: 200, want: full},
		{name: "another user's order is 404", token: "cust-2", path: "/api/orders/o1", orders: orders, users: users, catalog: catalog, payments: payments,
			wantStatus: 404, want: `{"type":"about:blank","title":"Not Found","status":404,"detail":"No such order.","instance":"/api/orders/o1"}`},
		{name: "an unknown order is the same 404", token: "cust-1", path: "/api/orders/o1",
			orders: func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) }, users: users, catalog: catalog, payments: payments,
			wantStatus: 404, want: `{"type":"about:blank","title":"Not Found","status":404,"detail":"No such order.","instance":"/api/orders/o1"}`},
		{name: "anonymous", path: "/api/orders/o1", orders: orders, wantStatus: 401},
		{name: "orders unreachable: 503", token: "cust-1", path: "/api/orders/o1", users: users, catalog: catalog, payments: payments, wantStatus: 503},
		{name: "payments down: degraded", token: "cust-1", path: "/api/orders/o1", orders: orders, users: users, catalog: catalog,
			payments:   func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 503) },
			wantStatus: 200, want: head + `,` + customer + `,"degraded":["payments"]}`},
		{name: "payments, users and catalog miss the deadline: degraded", token: "cust-1", path: "/api/orders/o1", orders: orders,
			users: hang, catalog: hang, payments: hang,
			wantStatus: 200,
			want: `{"id":"o1","userId":"c1","status":"CONFIRMED","items":[` +
				`{"productId":"p1","name":"Kettle","quantity":2,"unitPrice":{"amount":1299,"currency":"EUR"}},` + mug + `,` +
				`{"productId":"p1","name":"Kettle","quantity":1,"unitPrice":{"amount":1299,"currency":"EUR"}}],` + rest +
				`,"degraded":["catalog","payments","users"]}`},
		{name: "unreachable users: degraded; a deleted account is not", token: "cust-1", path: "/api/orders/o1", orders: orders,
			catalog: catalog, payments: payments, wantStatus: 200, want: head + `,` + payment + `,"degraded":["users"]}`},
		{name: "no charge yet and a tombstone are no payment", token: "cust-1", path: "/api/orders/o1", orders: orders,
			users: func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) }, catalog: catalog,
			payments:   ok(`{"items":[{"id":"t","orderId":"o1","status":"tombstone"}]}`),
			wantStatus: 200, want: head + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := func(h http.HandlerFunc) string {
				if h == nil {
					return "http://127.0.0.1:1"
				}
				return newRecUpstream(t, h).URL
			}
			up := Upstreams{Sessions: principalSessions(t).URL, Orders: url(tc.orders), Users: url(tc.users),
				Catalog: url(tc.catalog), Payments: url(tc.payments)}
			gw := newGateway(t, up, WithComposeTimeout(100*time.Millisecond))
			var hdr []string
			if tc.token != "" {
				hdr = bearer(tc.token)
			}
			resp, body := gwCall(t, gw, "GET", tc.path, "", hdr...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.want == "" {
				return
			}
			got := decodeAny(t, body)
			if m, ok := got.(map[string]any); ok {
				delete(m, "requestId")
			}
			if diff := cmp.Diff(got, decodeAny(t, tc.want)); diff != "" {
				t.Errorf("answer (-got +want):\n%s", diff)
			}
		})
	}
}

// TestGetOrderAsksEachProductOnce checks that a product on several lines is fetched once,
// and that the payment is asked for by order id.
func TestGetOrderAsksEachProductOnce(t *testing.T) {
	orders := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, orderOfC1)
	})
	catalog := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) })
	payments := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 200, map[string]any{"items": []any{}}) })
	users := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) })
	gw := newGateway(t, Upstreams{Sessions: principalSessions(t).URL, Orders: orders.URL, Catalog: catalog.URL, Payments: payments.URL, Users: users.URL})
	if resp, body := gwCall(t, gw, "GET", "/api/orders/o1", "", bearer("cust-1")...); resp.StatusCode != 200 {
		t.Fatalf("status = %d %s", resp.StatusCode, body)
	}
	got := catalog.requests()
	if len(got) != 2 || !(got[0] == "GET /products/p1" || got[1] == "GET /products/p1") {
		t.Errorf("catalog saw %q, want p1 and p2 once each", got)
	}
	for name, tc := range map[string]struct {
		u    *recUpstream
		want []string
	}{
		"orders":   {orders, []string{"GET /orders/o1"}},
		"payments": {payments, []string{"GET /payments?orderId=o1"}},
		"users":    {users, []string{"GET /users/c1"}},
	} {
		if diff := cmp.Diff(tc.u.requests(), tc.want); diff != "" {
			t.Errorf("%s saw (-got +want):\n%s", name, diff)
		}
	}
}
