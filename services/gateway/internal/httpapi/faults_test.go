package httpapi

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/chaos"
)

// fakeFaults is an owner's /faults and /faults/chaos: GET the state, PUT merges the fields
// named (422 on a field the owner refuses), DELETE resets. It records PUT paths and bodies
// ("/faults {...}").
type fakeFaults struct {
	*recUpstream
	mu      sync.Mutex
	initial map[string]map[string]any // path → state
	state   map[string]map[string]any
	puts    []string
}

func newFakeFaults(t *testing.T, initial map[string]any, patterns map[string]any, refuse func(in map[string]any) string) *fakeFaults {
	t.Helper()
	f := &fakeFaults{initial: map[string]map[string]any{"/faults": initial,
		"/faults/chaos": {"crashPoints": map[string]any{}, "duplicates": 1, "patterns": patterns}}}
	reset := func() {
		f.state = map[string]map[string]any{}
		for path, st := range f.initial {
			f.state[path] = maps.Clone(st)
		}
	}
	reset()
	f.recUpstream = newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		st, ok := f.state[r.URL.Path]
		if !ok {
			writeStatusProblem(w, 404)
			return
		}
		switch r.Method {
		case "GET":
		case "PUT":
			b, _ := io.ReadAll(r.Body)
			f.puts = append(f.puts, r.URL.Path+" "+string(b))
			var in map[string]any
			_ = json.Unmarshal(b, &in)
			if field := refuse(in); field != "" {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(422)
				_, _ = io.WriteString(w, `{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"out of range","errors":[{"field":"`+field+`","reason":"too large"}]}`)
				return
			}
			for _, section := range []string{"crashPoints", "patterns"} {
				if cp, ok := in[section].(map[string]any); ok {
					merged := maps.Clone(st[section].(map[string]any))
					maps.Copy(merged, cp)
					in[section] = merged
				}
			}
			maps.Copy(st, in)
		case "DELETE":
			f.state[r.URL.Path] = maps.Clone(f.initial[r.URL.Path])
			w.WriteHeader(204)
			return
		}
		writeTestJSON(w, 200, f.state[r.URL.Path])
	})
	return f
}

func (f *fakeFaults) putBodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.puts...)
}

func TestFaults(t *testing.T) {
	const (
		owners   = `"payments":{"declineRate":0,"errorRate":0,"latencyMs":0,"down":false},"inventory":{"latencyMs":0,"down":false},"saga":{"stepTimeoutMs":5000}`
		patterns = `"patterns":{"users.publish":"outbox","inventory.dedup":"on","orders.addressCopy":"async"}`
		clear    = `{` + owners + `,"crashPoints":{},"duplicates":1,` + patterns + `}`
	)
	type puts struct{ payments, inventory, orders, users []string }
	tests := []struct {
		name         string
		token        string
		method, body string
		paymentsDown bool
		wantStatus   int
		want         string // JSON body, or for a problem its errors member
		wantPuts     puts
	}{
		{name: "anonymous", method: "GET", wantStatus: 401},
		{name: "customer", token: "cust-1", method: "GET", wantStatus: 403},
		{name: "customer put", token: "cust-1", method: "PUT", body: `{}`, wantStatus: 403},
		{name: "get gathers every owner", token: "admin", method: "GET", wantStatus: 200, want: clear},
		{
			name: "an owner that does not answer is left out", token: "admin", method: "GET", paymentsDown: true,
			wantStatus: 200, want: `{"inventory":{"latencyMs":0,"down":false},"saga":{"stepTimeoutMs":5000},"crashPoints":{},"duplicates":1,` + patterns + `,"degraded":["payments"]}`,
		},
		{name: "empty put changes nothing", token: "admin", method: "PUT", body: `{}`, wantStatus: 200, want: clear},
		{
			name: "put sends only the sections and fields named", token: "admin", method: "PUT",
			body:       `{"payments":{"down":true},"saga":{"stepTimeoutMs":800}}`,
			wantStatus: 200,
			want:       `{"payments":{"declineRate":0,"errorRate":0,"latencyMs":0,"down":true},"inventory":{"latencyMs":0,"down":false},"saga":{"stepTimeoutMs":800},"crashPoints":{},"duplicates":1,` + patterns + `}`,
			wantPuts:   puts{payments: []string{`/faults {"down":true}`}, orders: []string{`/faults {"stepTimeoutMs":800}`}},
		},
		{
			name: "crash points go to the service they name, duplicates to every saga owner (not users)", token: "admin", method: "PUT",
			body:       `{"crashPoints":{"orders.reply.before_relay":1,"inventory.relay.after_publish":0.5},"duplicates":2}`,
			wantStatus: 200,
			want:       `{` + owners + `,"crashPoints":{"orders.reply.before_relay":1,"inventory.relay.after_publish":0.5},"duplicates":2,` + patterns + `}`,
			wantPuts: puts{
				payments:  []string{`/faults/chaos {"duplicates":2}`},
				inventory: []string{`/faults/chaos {"crashPoints":{"inventory.relay.after_publish":0.5},"duplicates":2}`},
				orders:    []string{`/faults/chaos {"crashPoints":{"orders.reply.before_relay":1},"duplicates":2}`},
			},
		},
		{
			name: "pattern switches and users' crash point go to the service they name", token: "admin", method: "PUT",
			body:       `{"patterns":{"users.publish":"direct","inventory.dedup":"off"},"crashPoints":{"users.direct.before_publish":1}}`,
			wantStatus: 200,
			want: `{` + owners + `,"crashPoints":{"users.direct.before_publish":1},"duplicates":1,` +
				`"patterns":{"users.publish":"direct","inventory.dedup":"off","orders.addressCopy":"async"}}`,
			wantPuts: puts{
				inventory: []string{`/faults/chaos {"patterns":{"inventory.dedup":"off"}}`},
				users:     []string{`/faults/chaos {"crashPoints":{"users.direct.before_publish":1},"patterns":{"users.publish":"direct"}}`},
			},
		},
		{
			name: "bad pattern switches: 422 naming each, nothing sent", token: "admin", method: "PUT",
			body:       `{"patterns":{"users.publish":"sometimes","gateway.cache":"off","orders.addressCopy":1}}`,
			wantStatus: 422,
			want: `[{"field":"patterns.gateway.cache","reason":"unknown pattern switch; the switches are users.publish, inventory.dedup, orders.addressCopy"},` +
				`{"field":"patterns.orders.addressCopy","reason":"must be one of async, sync"},` +
				`{"field":"patterns.users.publish","reason":"must be one of outbox, direct"}]`,
		},
		{name: "patterns not an object: 422", token: "admin", method: "PUT", body: `{"patterns":["users.publish"]}`, wantStatus: 422,
			want: `[{"field":"patterns","reason":"must be an object {\"<service>.<switch>\": \"<value>\"}"}]`},
		{
			name: "unknown section, unknown field, bad values, unsupported: 422, nothing sent", token: "admin", method: "PUT",
			body:       `{"chaos":{},"payments":{"declineRate":2,"latencyMs":1.5,"down":"yes","speed":1},"inventory":{"latencyMs":60001},"saga":3,"crashPoints":{"gateway.x":1,"orders.y":2},"duplicates":4}`,
			wantStatus: 422,
			want: `[{"field":"payments.declineRate","reason":"must be a number from 0 to 1"},` +
				`{"field":"payments.down","reason":"must be true or false"},` +
				`{"field":"payments.latencyMs","reason":"must be an integer from 0 to 20000"},` +
				`{"field":"payments.speed","reason":"unknown field; payments has declineRate, down, errorRate, latencyMs"},` +
				`{"field":"inventory.latencyMs","reason":"must be an integer from 0 to 20000"},` +
				`{"field":"saga","reason":"must be an object"},` +
				`{"field":"crashPoints.gateway.x","reason":"unknown service; crash points are named <service>.<point> with service inventory, orders, payments or users"},` +
				`{"field":"crashPoints.orders.y","reason":"must be a probability from 0 to 1"},` +
				`{"field":"duplicates","reason":"must be an integer from 1 to 3"},` +
				`{"field":"chaos","reason":"unknown section; the sections are payments, inventory, saga, crashPoints, duplicates, patterns"}]`,
		},
		{
			name: "an owner's 422 passes through, field prefixed", token: "admin", method: "PUT",
			body:       `{"inventory":{"down":true},"saga":{"stepTimeoutMs":99999999}}`,
			wantStatus: 422,
			want:       `[{"field":"saga.stepTimeoutMs","reason":"too large"}]`,
			wantPuts:   puts{inventory: []string{`/faults {"down":true}`}, orders: []string{`/faults {"stepTimeoutMs":99999999}`}},
		},
		{
			name: "an owner that does not answer a put: 503", token: "admin", method: "PUT", paymentsDown: true,
			body: `{"payments":{"down":true}}`, wantStatus: 503,
		},
		{name: "malformed", token: "admin", method: "PUT", body: `{"payments":`, wantStatus: 400},
		{name: "not an object", token: "admin", method: "PUT", body: `[1]`, wantStatus: 400},
		{name: "delete clears every owner", token: "admin", method: "DELETE", wantStatus: 204},
		{name: "delete with an owner down", token: "admin", method: "DELETE", paymentsDown: true, wantStatus: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			acceptAll := func(map[string]any) string { return "" }
			payments := newFakeFaults(t, map[string]any{"declineRate": 0, "errorRate": 0, "latencyMs": 0, "down": false}, map[string]any{}, acceptAll)
			inventory := newFakeFaults(t, map[string]any{"latencyMs": 0, "down": false}, map[string]any{"inventory.dedup": "on"}, acceptAll)
			users := newFakeFaults(t, nil, map[string]any{"users.publish": "outbox"}, acceptAll)
			orders := newFakeFaults(t, map[string]any{"stepTimeoutMs": 5000}, map[string]any{"orders.addressCopy": "async"}, func(in map[string]any) string {
				if v, _ := in["stepTimeoutMs"].(float64); v > 1e7 {
					return "stepTimeoutMs" // a range only orders knows
				}
				return ""
			})
			if tc.paymentsDown {
				payments.Close()
			}
			up := Upstreams{Sessions: principalSessions(t).URL, Payments: payments.URL, Inventory: inventory.URL, Orders: orders.URL, Users: users.URL}
			gw := newGateway(t, up)
			var hdr []string
			if tc.token != "" {
				hdr = bearer(tc.token)
			}
			resp, body := gwCall(t, gw, tc.method, "/api/admin/faults", tc.body, hdr...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.want != "" {
				got := decodeAny(t, body)
				if tc.wantStatus >= 400 {
					got = got.(map[string]any)["errors"]
				}
				if diff := cmp.Diff(got, decodeAny(t, tc.want)); diff != "" {
					t.Errorf("answer (-got +want):\n%s", diff)
				}
			}
			if !tc.paymentsDown {
				if diff := cmp.Diff(payments.putBodies(), tc.wantPuts.payments); diff != "" {
					t.Errorf("payments PUT bodies (-got +want):\n%s", diff)
				}
			}
			if diff := cmp.Diff(inventory.putBodies(), tc.wantPuts.inventory); diff != "" {
				t.Errorf("inventory PUT bodies (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(orders.putBodies(), tc.wantPuts.orders); diff != "" {
				t.Errorf("orders PUT bodies (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(users.putBodies(), tc.wantPuts.users); diff != "" {
				t.Errorf("users PUT bodies (-got +want):\n%s", diff)
			}
			if tc.method == "DELETE" && tc.wantStatus == 204 {
				for name, f := range map[string]*fakeFaults{"payments": payments, "inventory": inventory, "orders": orders} {
					got := f.requests()
					slices.Sort(got)
					if diff := cmp.Diff(got, []string{"DELETE /faults", "DELETE /faults/chaos"}); diff != "" {
						t.Errorf("%s saw (-got +want):\n%s", name, diff)
					}
				}
				if diff := cmp.Diff(users.requests(), []string{"DELETE /faults/chaos"}); diff != "" {
					t.Errorf("users saw (-got +want):\n%s", diff)
				}
			}
		})
	}
}

// The web UI's banner knows the pattern switches and their defaults (first value) as
// shared/chaos declares them.
func TestWebKnowsThePatternSwitches(t *testing.T) {
	b, err := os.ReadFile("web/live.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range chaos.Patterns {
		quoted := make([]string, len(p.Values))
		for i, v := range p.Values {
			quoted[i] = "'" + v + "'"
		}
		want := "'" + p.Name + "': [" + strings.Join(quoted, ", ") + "]"
		if !strings.Contains(string(b), want) {
			t.Errorf("web/live.js PATTERNS lacks %s", want)
		}
	}
}
