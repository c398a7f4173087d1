package httpapi

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDataMapRecordCounts(t *testing.T) {
	counting := func(records map[string]any) *recUpstream {
		return newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/admin/stats" {
				writeTestJSON(w, 200, map[string]any{"records": records})
				return
			}
			writeStatusProblem(w, 404)
		})
	}
	notCounting := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 404) })
	failing := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeStatusProblem(w, 500) })
	users := counting(map[string]any{"accounts": 3})
	inventory := counting(map[string]any{"products": 5, "reservations": 2})
	up := Upstreams{Sessions: principalSessions(t).URL, Users: users.URL, Inventory: inventory.URL, Payments: failing.URL,
		Activity: notCounting.URL, Catalog: notCounting.URL, Orders: notCounting.URL, Search: notCounting.URL}
	gw := newGateway(t, up)

	resp, body := gwCall(t, gw, "GET", "/api/admin/datamap", "", bearer("admin")...)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d %s", resp.StatusCode, body)
	}
	type entry struct {
		Records    map[string]any
		NotExposed []string
	}
	got := map[string]entry{}
	for _, s := range decodeAny(t, body).(map[string]any)["services"].([]any) {
		m := s.(map[string]any)
		var e entry
		e.Records, _ = m["records"].(map[string]any)
		for _, n := range asSlice(m["notExposed"]) {
			e.NotExposed = append(e.NotExposed, n.(string))
		}
		got[m["service"].(string)] = e
	}
	want := map[string]entry{
		"users":     {Records: map[string]any{"accounts": 3.0}},
		"inventory": {Records: map[string]any{"products": 5.0, "reservations": 2.0}},
		"payments":  {Records: map[string]any{}, NotExposed: []string{"record counts (GET /admin/stats did not answer)"}},
		"activity":  {Records: map[string]any{}, NotExposed: []string{notCounted["activity"]}},
		"sessions":  {Records: map[string]any{}, NotExposed: []string{notCounted["sessions"]}},
	}
	for name, w := range want {
		if diff := cmp.Diff(got[name], w); diff != "" {
			t.Errorf("%s (-got +want):\n%s", name, diff)
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
