package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/httpx"
)

func TestCatalogAndSearchRoutesForward(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	catalog := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PATCH" && r.Header.Get("If-Match") != `"3"` {
			writeStatusProblem(w, 409)
			return
		}
		if r.URL.Path == "/categories" {
			writeTestJSON(w, 200, map[string]any{"categories": []any{map[string]any{"name": "book"}, map[string]any{"name": "kettle"}}})
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
		{"GET", "/api/products?category=sofa", nil, 422}, // not in the registry: search is not asked
		{"GET", "/api/products?cursor=abc&limit=0", nil, 200},
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
	// The registry is fetched once and cached; the listing itself goes to search.
	wantCatalog := []string{"GET /categories", "GET /products/p1", "GET /categories",
		"PATCH /products/p1", "PATCH /products/p1", "DELETE /products/p1"}
	if diff := cmp.Diff(catalog.requests(), wantCatalog); diff != "" {
		t.Errorf("catalog saw (-got +want):\n%s", diff)
	}
	wantSearch := []string{"GET /products?category=kettle&limit=5", "GET /products?cursor=abc&limit=0",
		"GET /search?q=kettle&minPrice=100", "GET /search?minPrice=abc"}
	if diff := cmp.Diff(search.requests(), wantSearch); diff != "" {
		t.Errorf("search saw (-got +want):\n%s", diff)
	}
}

// Browsing is served by search: with the catalog down, the listing still answers (without
// the category check, which needs the catalog's registry); with search down, it is a 503
// with Retry-After and the catalog is not asked instead.
func TestProductListingDependsOnSearchNotOnTheCatalog(t *testing.T) {
	catalogDown := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 503) })
	search := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 200, map[string]any{"items": []any{}})
	})
	gw := newGateway(t, Upstreams{Catalog: catalogDown.URL, Search: search.URL})
	if resp, b := gwCall(t, gw, "GET", "/api/products?category=nope", ""); resp.StatusCode != 200 {
		t.Errorf("catalog down: %d %s, want 200 from search", resp.StatusCode, b)
	}

	catalog := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 200, map[string]any{"categories": []any{map[string]any{"name": "kettle"}}})
	})
	gw = newGateway(t, Upstreams{Catalog: catalog.URL, Search: "http://127.0.0.1:1"})
	resp, b := gwCall(t, gw, "GET", "/api/products?category=kettle", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("search down: %d (Retry-After %q) %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if diff := cmp.Diff(catalog.requests(), []string{"GET /categories"}); diff != "" {
		t.Errorf("catalog saw (-got +want):\n%s", diff)
	}
}

// The gateway bounds its own requests in flight: with the bound reached (a search that
// does not answer yet), the next request is shed at once with 503 and Retry-After, the
// gateway's health stays up, and once the slow one is done requests are served again.
// A deadline set by WithLimits reaches the upstream call.
func TestGatewayShedsBeyondItsInflightBound(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	deadlines := make(chan bool, 10)
	search := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("q") == "slow" {
			entered <- struct{}{}
			<-release
		}
		writeTestJSON(w, 200, map[string]any{"items": []any{}})
	})
	client := &http.Client{Transport: deadlineSpy{deadlines}}
	srv := httptest.NewServer(New(nil, client, Upstreams{Search: search.URL}, WithLimits(httpx.Limits{MaxInflight: 1, RequestTimeout: time.Minute})).Routes())
	t.Cleanup(srv.Close)
	done := make(chan int)
	go func() {
		resp, err := http.Get(srv.URL + "/api/search?q=slow")
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	resp, b := gwCall(t, srv, "GET", "/api/products", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("while full: %d (Retry-After %q) %s, want 503 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if resp, _ := gwCall(t, srv, "GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("while full, /healthz = %d, want 200", resp.StatusCode)
	}
	close(release)
	if st := <-done; st != 200 {
		t.Errorf("the admitted request: %d, want 200", st)
	}
	if resp, b := gwCall(t, srv, "GET", "/api/products", ""); resp.StatusCode != 200 {
		t.Errorf("after: %d %s, want 200", resp.StatusCode, b)
	}
	if !<-deadlines {
		t.Error("the upstream call carried no deadline")
	}
}

// deadlineSpy records whether each outgoing request's context has a deadline.
type deadlineSpy struct{ seen chan<- bool }

func (d deadlineSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	_, ok := r.Context().Deadline()
	select {
	case d.seen <- ok:
	default:
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Searching and browsing have their own shares of the bound (bulkheads): with every search
// slot held by slow searches, one more search is shed while browsing is still served.
func TestSlowSearchesDoNotGetBrowsingShed(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	search := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/search" && r.URL.Query().Get("q") == "slow" {
			entered <- struct{}{}
			<-release
		}
		writeTestJSON(w, 200, map[string]any{"items": []any{}})
	})
	srv := httptest.NewServer(New(nil, http.DefaultClient, Upstreams{Search: search.URL}, WithLimits(httpx.Limits{MaxInflight: 8})).Routes())
	t.Cleanup(srv.Close)
	done := make(chan int, 2)
	for range 2 { // a quarter of 8: the search share is full
		go func() {
			resp, err := http.Get(srv.URL + "/api/search?q=slow")
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		<-entered
	}
	tests := []struct {
		path   string
		status int
	}{
		{"/api/search?q=fast", 503},
		{"/api/products", 200},
	}
	for _, tc := range tests {
		if resp, b := gwCall(t, srv, "GET", tc.path, ""); resp.StatusCode != tc.status {
			t.Errorf("GET %s with the search share full: %d %s, want %d", tc.path, resp.StatusCode, b, tc.status)
		}
	}
	close(release)
	for range 2 {
		if st := <-done; st != 200 {
			t.Errorf("a slow search: %d, want 200", st)
		}
	}
}
