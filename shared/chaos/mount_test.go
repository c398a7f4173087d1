package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// Mount serves the chaos routes through the shared middleware: each request is counted in
// the service's http_requests_total under its route, a wrong method on a chaos path is a
// 405 problem, and every other request reaches next (the API) once, untouched.
func TestMountCountsChaosRoutesLikeTheAPIs(t *testing.T) {
	s, _ := armed(t, &memStore{})
	reg := prometheus.NewRegistry()
	var nextSaw []string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nextSaw = append(nextSaw, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	})
	h := s.Mount(next, reg, func(context.Context) (OutboxStats, error) { return OutboxStats{Pending: 1}, nil })
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/faults/chaos", "", 200},
		{"PUT", "/faults/chaos", `{"duplicates":2}`, 200},
		{"PUT", "/faults/chaos", `{"duplicates":9}`, 422},
		{"DELETE", "/faults/chaos", "", 204},
		{"GET", "/outbox", "", 200},
		{"POST", "/outbox", "", 405},
		{"GET", "/faults", "", 418},
		{"GET", "/stock/x", "", 418},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s %s = %d %s, want %d", c.method, c.path, rec.Code, rec.Body, c.want)
		}
		if c.want == 405 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: Content-Type %q, want a problem", c.method, c.path, rec.Header().Get("Content-Type"))
		}
	}
	if diff := cmp.Diff(nextSaw, []string{"GET /faults", "GET /stock/x"}); diff != "" {
		t.Errorf("requests that reached next (-got +want):\n%s", diff)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["service"]+" "+l["method"]+" "+l["route"]+" "+l["code"]] += m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"orders GET /faults/chaos 200": 1, "orders PUT /faults/chaos 200": 1, "orders PUT /faults/chaos 422": 1,
		"orders DELETE /faults/chaos 204": 1, "orders GET /outbox 200": 1,
	}
	for k, v := range got {
		if strings.Contains(k, " POST ") { // the 405's route label is whatever httpx uses for unmatched requests
			delete(got, k)
			if v != 1 {
				t.Errorf("%s counted %v times, want 1", k, v)
			}
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("http_requests_total (-got +want):\n%s", diff)
	}
}
