package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/services/catalog/internal/httpapi"
	"polyshop/services/catalog/internal/mongostore"
	"polyshop/shared/testenv/mongotest"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	db := mongotest.Database(t, "CATALOG_MONGODB_URI")
	s, err := mongostore.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := httpapi.New(catalog.NewService(s), log, nil, nil)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// fields returns the field names of a problem's errors.
func fields(p map[string]any) []string {
	out := []string{}
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		out = append(out, m["field"].(string))
	}
	return out
}

const good = `{"name":"Kettle","category":"kettle","price":{"amount":2999,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass"},"initialStock":3}`

func TestBadInputIsA400Or422NamingTheField(t *testing.T) {
	srv := server(t)
	big := `{"name":"K","category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass","x":"` + strings.Repeat("a", 9000) + `"}}`
	many := `{"name":"K","category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{` + func() string {
		var b []string
		for i := range 40 {
			b = append(b, `"k`+string(rune('a'+i%26))+string(rune('a'+i/26))+`":1`)
		}
		return strings.Join(b, ",")
	}() + `}}`
	deep := `{"name":"K","category":"sofa","price":{"amount":1,"currency":"EUR"},"attributes":{"seats":2,"upholstery":"linen","dimensions":{"a":{"b":{"c":1}}}}}`
	tests := []struct {
		name, method, path, body string
		status                   int
		fields                   []string
	}{
		{"zero price", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":0,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass"}}`, 422, []string{"price.amount"}},
		{"negative price", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":-5,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass"}}`, 422, []string{"price.amount"}},
		{"fractional price", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":12.5,"currency":"EUR"}}`, 400, []string{"price.amount"}},
		{"price as string", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":"12","currency":"EUR"}}`, 400, []string{"price.amount"}},
		{"bad currency", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":1,"currency":"euro"},"attributes":{"capacityMl":1500,"material":"glass"}}`, 422, []string{"price.currency"}},
		{"unknown category", "POST", "/products", `{"name":"K","category":"car","price":{"amount":1,"currency":"EUR"}}`, 422, []string{"category"}},
		{"missing name", "POST", "/products", `{"category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass"}}`, 422, []string{"name"}},
		{"negative stock", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass"},"initialStock":-1}`, 422, []string{"initialStock"}},
		{"unknown attribute", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{"capacityMl":1500,"material":"glass","turbo":true}}`, 422, []string{"attributes.turbo"}},
		{"attribute wrong type", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{"capacityMl":"big","material":"glass"}}`, 422, []string{"attributes.capacityMl"}},
		{"missing required attribute", "POST", "/products", `{"name":"K","category":"kettle","price":{"amount":1,"currency":"EUR"},"attributes":{"capacityMl":1500}}`, 422, []string{"attributes.material"}},
		{"attributes over 8 KiB", "POST", "/products", big, 422, []string{"attributes"}},
		{"more than 32 attribute keys", "POST", "/products", many, 422, []string{"attributes"}},
		{"attributes nested too deep", "POST", "/products", deep, 422, []string{"attributes"}},
		{"unknown field", "POST", "/products", `{"name":"K","colour":"red"}`, 400, []string{"colour"}},
		{"malformed JSON", "POST", "/products", `{"name":`, 400, []string{}},
		{"limit too small", "GET", "/products?limit=0", "", 422, []string{"limit"}},
		{"limit too large", "GET", "/products?limit=101", "", 422, []string{"limit"}},
		{"limit not a number", "GET", "/products?limit=ten", "", 400, []string{"limit"}},
		{"bad cursor", "GET", "/products?cursor=YWJj", "", 400, []string{"cursor"}},
		{"tampered cursor", "GET", "/products?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("p1:not-a-uuid")), "", 400, []string{"cursor"}},
		{"version not a number", "DELETE", "/products/0190e7a0-0000-7000-8000-000000000000?version=x", "", 400, []string{"version"}},
		{"version zero", "DELETE", "/products/0190e7a0-0000-7000-8000-000000000000?version=0", "", 422, []string{"version"}},
		{"list unknown category", "GET", "/products?category=car", "", 422, []string{"category"}},
		{"not a product id", "GET", "/products/nope", "", 404, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, p := call(t, srv, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, p)
			}
			if diff := cmp.Diff(fields(p), tc.fields); diff != "" {
				t.Errorf("problem fields (-got +want):\n%s", diff)
			}
		})
	}
}

func TestOptimisticConcurrencyOverHTTP(t *testing.T) {
	srv := server(t)
	status, p := call(t, srv, "POST", "/products", good)
	if status != 201 {
		t.Fatalf("create: %d %v", status, p)
	}
	id := p["id"].(string)
	if status, p := call(t, srv, "PATCH", "/products/"+id, `{"name":"Kettle 2"}`, "If-Match", `"1"`); status != 200 || p["version"].(float64) != 2 {
		t.Fatalf("patch at version 1: %d %v", status, p)
	}
	if status, p := call(t, srv, "PATCH", "/products/"+id, `{"name":"Kettle 3"}`, "If-Match", `"1"`); status != 409 {
		t.Errorf("stale If-Match: %d %v, want 409", status, p)
	}
	if status, p := call(t, srv, "PATCH", "/products/"+id, `{"name":"Kettle 3","version":1}`); status != 409 {
		t.Errorf("stale version field: %d %v, want 409", status, p)
	}
	if status, p := call(t, srv, "PATCH", "/products/"+id, `{"name":"Kettle 3"}`, "If-Match", `"x"`); status != 400 {
		t.Errorf("malformed If-Match: %d %v, want 400", status, p)
	}
	if status, p := call(t, srv, "DELETE", "/products/"+id, "", "If-Match", `"1"`); status != 409 {
		t.Errorf("stale delete: %d %v, want 409", status, p)
	}
	if status, _ := call(t, srv, "DELETE", "/products/"+id, "", "If-Match", `"2"`); status != 204 {
		t.Errorf("delete: %d, want 204", status)
	}
	if status, _ := call(t, srv, "GET", "/products/"+id, ""); status != 404 {
		t.Errorf("get deleted: %d, want 404", status)
	}
}

func TestListCursorPagination(t *testing.T) {
	srv := server(t)
	want := []string{}
	for range 5 {
		_, p := call(t, srv, "POST", "/products", good)
		want = append(want, p["id"].(string))
	}
	got := []string{}
	path := "/products?limit=2"
	for range 10 {
		status, p := call(t, srv, "GET", path, "")
		if status != 200 {
			t.Fatalf("list: %d %v", status, p)
		}
		for _, it := range p["items"].([]any) {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		next, _ := p["nextCursor"].(string)
		if next == "" {
			break
		}
		path = "/products?limit=2&cursor=" + next
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("paged ids (-got +want):\n%s", diff)
	}
}

// Unmatched routes answer like every other service's (httpx.Standard): an unknown path is a
// 404 problem, a known path with another method a 405 problem with Allow.
func TestUnmatchedRoutesAreProblems(t *testing.T) {
	srv := server(t)
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"PUT", "/products/x", 405, "DELETE, GET, HEAD, PATCH"},
		{"DELETE", "/products", 405, "GET, HEAD, POST"},
		{"POST", "/export/products", 405, "GET, HEAD"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := fmt.Sprintf("%d %q %s", resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"))
		want := fmt.Sprintf("%d %q application/problem+json", c.status, c.allow)
		if got != want {
			t.Errorf("%s %s = %s, want %s", c.method, c.path, got, want)
		}
	}
}
