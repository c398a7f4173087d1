package httpapi

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCatalogAndSearchRoutesForward(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	catalog := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PATCH" && r.Header.Get("If-Match") != `"3"` {
			writeStatusProblem(w, 409)
			return
		}
		writeTestJSON(w, 200, map[string]string{"ok": "catalog"})
	})
	search := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("minPrice") == "abc" {
			writeStatusProblem(w, 400)
			return
		}
		writeTestJSON(w, 200, map[string]any{"hits": []any{}, "total": 0})
	})
	gw := newGateway(t, Upstreams{Sessions: sess.URL, Catalog: catalog.URL, Search: search.URL})
	admin := []string{"Authorization", "Bearer admin-x"}
	customer := []string{"Authorization", "Bearer " + goodToken}
	tests := []struct {
		method, path string
		hdr          []string
		status       int
	}{
		{"GET", "/api/products?category=kettle&limit=5", nil, 200},
		{"GET", "/api/products/p1", nil, 200},
		{"GET", "/api/categories", nil, 200},
		{"PATCH", "/api/products/p1", customer, 403},
		{"DELETE", "/api/products/p1", customer, 403},
		{"DELETE", "/api/products/p1", nil, 401},
		{"PATCH", "/api/products/p1", append([]string{"If-Match", `"3"`}, admin...), 200},
		{"PATCH", "/api/products/p1", append([]string{"If-Match", `"2"`}, admin...), 409},
		{"DELETE", "/api/products/p1", admin, 200},
		{"GET", "/api/search?q=kettle&minPrice=100", nil, 200},
		{"GET", "/api/search?minPrice=abc", nil, 400},
	}
	for _, tc := range tests {
		body := ""
		if tc.method == "PATCH" {
			body = `{"name":"x"}`
		}
		if resp, b := gwCall(t, gw, tc.method, tc.path, body, tc.hdr...); resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
		}
	}
	wantCatalog := []string{"GET /products?category=kettle&limit=5", "GET /products/p1", "GET /categories",
		"PATCH /products/p1", "PATCH /products/p1", "DELETE /products/p1"}
	if diff := cmp.Diff(catalog.requests(), wantCatalog); diff != "" {
		t.Errorf("catalog saw (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(search.requests(), []string{"GET /search?q=kettle&minPrice=100", "GET /search?minPrice=abc"}); diff != "" {
		t.Errorf("search saw (-got +want):\n%s", diff)
	}
}
