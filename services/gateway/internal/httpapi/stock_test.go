package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Tokens of principalSessions: "cust-1" and "cust-2" are customers c1 and c2, "admin" is
// the admin a1.
func principalSessions(t *testing.T) *recUpstream {
	t.Helper()
	principals := map[string][2]string{"cust-1": {"c1", "customer"}, "cust-2": {"c2", "customer"}, "admin": {"a1", "admin"}}
	return newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Token string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		p, ok := principals[in.Token]
		if r.URL.Path != "/sessions/validate" || !ok {
			writeStatusProblem(w, 401)
			return
		}
		writeTestJSON(w, 200, map[string]string{"userId": p[0], "role": p[1], "sessionId": "s-" + p[0]})
	})
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// hang never answers: it waits until the caller gives up.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// decodeAny decodes a JSON body for cmp.
func decodeAny(t *testing.T, body string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func TestComposedProduct(t *testing.T) {
	const product = `{"id":"p1","name":"Kettle","price":{"amount":1299,"currency":"EUR"},"version":3}`
	catalog := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/products/p1" {
			writeStatusProblem(w, 404)
			return
		}
		w.Header().Set("ETag", `"3"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, product)
	})
	tests := []struct {
		name       string
		path       string
		inventory  http.HandlerFunc // nil: inventory unreachable
		wantStatus int
		want       string
	}{
		{
			name: "availability added", path: "/api/products/p1",
			inventory: func(w http.ResponseWriter, r *http.Request) {
				writeTestJSON(w, 200, map[string]any{"productId": "p1", "available": 7, "reserved": 2, "version": 11})
			},
			wantStatus: 200,
			want:       `{"id":"p1","name":"Kettle","price":{"amount":1299,"currency":"EUR"},"version":3,"availability":{"available":7,"reserved":2,"version":11}}`,
		},
		{
			name: "no stock record yet: left out, not degraded", path: "/api/products/p1",
			inventory:  func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) },
			wantStatus: 200, want: product,
		},
		{
			name: "inventory down (503): degraded", path: "/api/products/p1",
			inventory:  func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 503) },
			wantStatus: 200,
			want:       `{"id":"p1","name":"Kettle","price":{"amount":1299,"currency":"EUR"},"version":3,"degraded":["inventory"]}`,
		},
		{
			name: "inventory misses the deadline: degraded", path: "/api/products/p1", inventory: hang,
			wantStatus: 200,
			want:       `{"id":"p1","name":"Kettle","price":{"amount":1299,"currency":"EUR"},"version":3,"degraded":["inventory"]}`,
		},
		{
			name: "inventory unreachable: degraded", path: "/api/products/p1",
			wantStatus: 200,
			want:       `{"id":"p1","name":"Kettle","price":{"amount":1299,"currency":"EUR"},"version":3,"degraded":["inventory"]}`,
		},
		{
			name: "catalog 404 passes through", path: "/api/products/nope",
			inventory:  func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) },
			wantStatus: 404,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := Upstreams{Catalog: catalog.URL, Inventory: "http://127.0.0.1:1"}
			if tc.inventory != nil {
				up.Inventory = newRecUpstream(t, tc.inventory).URL
			}
			gw := newGateway(t, up, WithComposeTimeout(100*time.Millisecond))
			resp, body := gwCall(t, gw, "GET", tc.path, "")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.want == "" {
				if !strings.Contains(body, "from upstream") {
					t.Errorf("body = %s, want the catalog's problem", body)
				}
				return
			}
			if diff := cmp.Diff(decodeAny(t, body), decodeAny(t, tc.want)); diff != "" {
				t.Errorf("body (-got +want):\n%s", diff)
			}
			if got := resp.Header.Get("ETag"); got != `"3"` {
				t.Errorf("ETag = %q, want the catalog's", got)
			}
		})
	}
}

func TestRestock(t *testing.T) {
	sess := principalSessions(t)
	inventory := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Available, Version int }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Version != 4 {
			writeStatusProblem(w, 409)
			return
		}
		writeTestJSON(w, 200, map[string]any{"productId": "p1", "available": in.Available, "reserved": 0, "version": 5})
	})
	gw := newGateway(t, Upstreams{Sessions: sess.URL, Inventory: inventory.URL})
	tests := []struct {
		name   string
		hdr    []string
		body   string
		status int
	}{
		{"anonymous", nil, `{"available":5,"version":4}`, 401},
		{"customer", bearer("cust-1"), `{"available":5,"version":4}`, 403},
		{"admin", bearer("admin"), `{"available":5,"version":4}`, 200},
		{"stale version passes through", bearer("admin"), `{"available":5,"version":3}`, 409},
	}
	for _, tc := range tests {
		if resp, body := gwCall(t, gw, "PUT", "/api/products/p1/stock", tc.body, tc.hdr...); resp.StatusCode != tc.status {
			t.Errorf("%s: status = %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}
	if diff := cmp.Diff(inventory.requests(), []string{"PUT /stock/p1", "PUT /stock/p1"}); diff != "" {
		t.Errorf("inventory saw (-got +want):\n%s", diff)
	}
}
