package httpapi

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeOperator is one service's shared/admin operator API: letter 7 exists (replaying it
// fails again: 409), letter 8 replays, parked event "p-1" re-arms.
func fakeOperator(t *testing.T) *recUpstream {
	t.Helper()
	letter := func(seq int) map[string]any {
		return map[string]any{"seq": seq, "consumer": "orders-saga", "subject": "inventory.reply.reserved.v1"}
	}
	return newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /admin/dlq":
			writeTestJSON(w, 200, map[string]any{"items": []any{letter(7), letter(8)}})
		case "GET /admin/dlq/7", "GET /admin/dlq/8":
			writeTestJSON(w, 200, letter(7))
		case "POST /admin/dlq/7/replay":
			writeStatusProblem(w, 409)
		case "POST /admin/dlq/8/replay":
			writeTestJSON(w, 200, map[string]any{"replayed": letter(8)})
		case "DELETE /admin/dlq/7":
			w.WriteHeader(204)
		case "GET /admin/outbox/parked":
			writeTestJSON(w, 200, map[string]any{"items": []any{map[string]any{"id": "p-1", "attempts": 12}}})
		case "POST /admin/outbox/parked/p-1/rearm":
			w.WriteHeader(204)
		default:
			writeStatusProblem(w, 404)
		}
	})
}

func TestOperatorRoutes(t *testing.T) {
	tests := []struct {
		name         string
		token        string
		method, path string
		ordersDown   bool
		wantStatus   int
		want         string   // JSON answer, when one is expected
		wantOrders   []string // what the orders service saw
	}{
		{name: "anonymous", method: "GET", path: "/api/admin/dlq/orders", wantStatus: 401},
		{name: "customer list", token: "cust-1", method: "GET", path: "/api/admin/dlq/orders", wantStatus: 403},
		{name: "customer replay", token: "cust-1", method: "POST", path: "/api/admin/dlq/orders/8/replay", wantStatus: 403},
		{name: "customer drop", token: "cust-1", method: "DELETE", path: "/api/admin/dlq/orders/7", wantStatus: 403},
		{name: "customer rearm", token: "cust-1", method: "POST", path: "/api/admin/outbox/orders/parked/p-1/rearm", wantStatus: 403},
		{
			name: "list forwards the query", token: "admin", method: "GET", path: "/api/admin/dlq/orders?after=3&limit=2", wantStatus: 200,
			want:       `{"items":[{"seq":7,"consumer":"orders-saga","subject":"inventory.reply.reserved.v1"},{"seq":8,"consumer":"orders-saga","subject":"inventory.reply.reserved.v1"}]}`,
			wantOrders: []string{"GET /admin/dlq?after=3&limit=2"},
		},
		{
			name: "show", token: "admin", method: "GET", path: "/api/admin/dlq/orders/7", wantStatus: 200,
			want: `{"seq":7,"consumer":"orders-saga","subject":"inventory.reply.reserved.v1"}`, wantOrders: []string{"GET /admin/dlq/7"},
		},
		{
			name: "replay", token: "admin", method: "POST", path: "/api/admin/dlq/orders/8/replay", wantStatus: 200,
			want: `{"replayed":{"seq":8,"consumer":"orders-saga","subject":"inventory.reply.reserved.v1"}}`, wantOrders: []string{"POST /admin/dlq/8/replay"},
		},
		{name: "a failed replay's 409 passes through", token: "admin", method: "POST", path: "/api/admin/dlq/orders/7/replay", wantStatus: 409, wantOrders: []string{"POST /admin/dlq/7/replay"}},
		{name: "drop", token: "admin", method: "DELETE", path: "/api/admin/dlq/orders/7", wantStatus: 204, wantOrders: []string{"DELETE /admin/dlq/7"}},
		{name: "an unknown letter's 404 passes through", token: "admin", method: "DELETE", path: "/api/admin/dlq/orders/99", wantStatus: 404, wantOrders: []string{"DELETE /admin/dlq/99"}},
		{name: "seq not a number: 400, nothing sent", token: "admin", method: "GET", path: "/api/admin/dlq/orders/x", wantStatus: 400},
		{name: "seq zero: 400, nothing sent", token: "admin", method: "POST", path: "/api/admin/dlq/orders/0/replay", wantStatus: 400},
		{name: "unknown service: 404, nothing sent", token: "admin", method: "GET", path: "/api/admin/dlq/gateway", wantStatus: 404},
		{name: "unknown service for parked: 404", token: "admin", method: "GET", path: "/api/admin/outbox/nope/parked", wantStatus: 404},
		{
			name: "parked", token: "admin", method: "GET", path: "/api/admin/outbox/orders/parked", wantStatus: 200,
			want: `{"items":[{"id":"p-1","attempts":12}]}`, wantOrders: []string{"GET /admin/outbox/parked"},
		},
		{name: "rearm", token: "admin", method: "POST", path: "/api/admin/outbox/orders/parked/p-1/rearm", wantStatus: 204, wantOrders: []string{"POST /admin/outbox/parked/p-1/rearm"}},
		{name: "another method: 405", token: "admin", method: "PUT", path: "/api/admin/dlq/orders/7", wantStatus: 405},
		{name: "service down: 503", token: "admin", method: "GET", path: "/api/admin/dlq/orders", ordersDown: true, wantStatus: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orders := fakeOperator(t)
			payments := fakeOperator(t)
			if tc.ordersDown {
				orders.Close()
			}
			gw := newGateway(t, Upstreams{Sessions: principalSessions(t).URL, Orders: orders.URL, Payments: payments.URL})
			var hdr []string
			if tc.token != "" {
				hdr = bearer(tc.token)
			}
			resp, body := gwCall(t, gw, tc.method, tc.path, "", hdr...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus >= 400 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %q, want a problem", ct)
				}
			}
			if tc.want != "" {
				if diff := cmp.Diff(decodeAny(t, body), decodeAny(t, tc.want)); diff != "" {
					t.Errorf("answer (-got +want):\n%s", diff)
				}
			}
			if !tc.ordersDown {
				if diff := cmp.Diff(orders.requests(), tc.wantOrders); diff != "" {
					t.Errorf("orders saw (-got +want):\n%s", diff)
				}
			}
			if got := payments.requests(); len(got) != 0 {
				t.Errorf("payments saw %v, want nothing (another service was named)", got)
			}
		})
	}
}
