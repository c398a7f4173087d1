package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// memStore is an in-process Store for the tests of this package; the contract on a real
// database is tested in pgchaos.
type memStore struct {
	mu sync.Mutex
	st State
}

func (m *memStore) Load(context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.clone(), nil
}

func (m *memStore) Update(_ context.Context, fn func(*State)) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st.clone()
	fn(&st)
	m.st = st.clone()
	return st, nil
}

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestPointsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Points {
		if seen[p.Name] {
			t.Errorf("%s listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Where == "" || p.Tests == "" || !strings.Contains(p.Name, ".") {
			t.Errorf("%+v: name <service>.<place>, where and tests are required", p)
		}
	}
	if len(Points) < 8 {
		t.Errorf("%d crash points, want at least 8", len(Points))
	}
}

func TestParsePoints(t *testing.T) {
	cases := []struct {
		raw     string
		want    map[string]float64
		wantErr string
	}{
		{raw: "", want: map[string]float64{}},
		{raw: "orders.relay.after_publish=0.5, orders.consumer.before_ack", want: map[string]float64{
			"orders.relay.after_publish": 0.5, "orders.consumer.before_ack": 1}},
		{raw: "orders.nope=1", wantErr: "crashPoints.orders.nope is not a crash point"},
		{raw: "payments.relay.after_publish=1", wantErr: "belongs to payments, not orders"},
		{raw: "orders.relay.after_publish=2", wantErr: "must be between 0 and 1"},
		{raw: "orders.relay.after_publish=x", wantErr: "is not a number"},
	}
	for _, c := range cases {
		got, err := ParsePoints("orders", c.raw)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err %v, want %q", c.raw, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.raw, err)
			continue
		}
		if diff := cmp.Diff(got, c.want); diff != "" {
			t.Errorf("%q (-got +want):\n%s", c.raw, diff)
		}
	}
}

func TestNeverEnabledInATestBinary(t *testing.T) {
	s, err := New(context.Background(), "orders", env(map[string]string{
		"ORDERS_CRASH_ENABLED": "1", "ORDERS_CRASH_POINTS": "orders.relay.after_publish=1"}), &memStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled() {
		t.Fatal("crash points enabled inside a test binary")
	}
	s.Hit("orders.relay.after_publish") // must return
}

// armed returns switches with crash points forced on and an exit that records the point.
func armed(t *testing.T, store Store) (*Switches, *[]string) {
	t.Helper()
	s, err := New(context.Background(), "orders", env(nil), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var exits []string
	s.enabled = true
	s.exit = func(p string) { exits = append(exits, p) }
	return s, &exits
}

func TestStoredArmingFiresOnceAndIsDisarmed(t *testing.T) {
	store := &memStore{}
	s, exits := armed(t, store)
	ctx := context.Background()
	if _, err := s.Set(ctx, Patch{CrashPoints: map[string]float64{"orders.relay.after_publish": 1}}); err != nil {
		t.Fatal(err)
	}
	s.Hit("orders.consumer.before_ack") // not armed
	s.Hit("orders.relay.after_publish")
	s.Hit("orders.relay.after_publish") // the process is dying: no second exit
	if diff := cmp.Diff(*exits, []string{"orders.relay.after_publish"}); diff != "" {
		t.Errorf("exits (-got +want):\n%s", diff)
	}
	// After the "restart", the stored state says the point fired and is no longer armed.
	again, exits2 := armed(t, store)
	again.Hit("orders.relay.after_publish")
	if len(*exits2) != 0 {
		t.Errorf("a restarted process fired a one-shot point again: %v", *exits2)
	}
	want := State{CrashPoints: map[string]float64{}, Duplicates: 1, Fired: map[string]int64{"orders.relay.after_publish": 1}}
	if diff := cmp.Diff(again.State(), want); diff != "" {
		t.Errorf("state (-got +want):\n%s", diff)
	}
}

func TestEnvArmingFiresInEveryProcess(t *testing.T) {
	store := &memStore{}
	for i := range 2 {
		s, err := New(context.Background(), "orders", env(map[string]string{"ORDERS_CRASH_POINTS": "orders.consumer.before_ack=1"}), store, nil)
		if err != nil {
			t.Fatal(err)
		}
		var exits []string
		s.enabled = true
		s.exit = func(p string) { exits = append(exits, p) }
		s.Hit("orders.consumer.before_ack")
		if len(exits) != 1 {
			t.Errorf("process %d: %d exits, want 1", i, len(exits))
		}
	}
	st, _ := store.Load(context.Background())
	if st.Fired["orders.consumer.before_ack"] != 2 {
		t.Errorf("fired %v, want 2 hits", st.Fired)
	}
}

func TestSetValidates(t *testing.T) {
	s, _ := armed(t, &memStore{})
	two, four, zero := 2, 4, 0
	cases := []struct {
		name      string
		patch     Patch
		wantField string
	}{
		{"ok", Patch{CrashPoints: map[string]float64{"orders.place.before_response": 0.25}, Duplicates: &two}, ""},
		{"foreign point", Patch{CrashPoints: map[string]float64{"inventory.relay.after_publish": 1}}, "crashPoints.inventory.relay.after_publish"},
		{"probability", Patch{CrashPoints: map[string]float64{"orders.place.before_response": 1.5}}, "crashPoints.orders.place.before_response"},
		{"duplicates high", Patch{Duplicates: &four}, "duplicates"},
		{"duplicates zero", Patch{Duplicates: &zero}, "duplicates"},
	}
	for _, c := range cases {
		_, err := s.Set(context.Background(), c.patch)
		var verr *ValidationError
		switch {
		case c.wantField == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantField != "" && (!errors.As(err, &verr) || verr.Field != c.wantField):
			t.Errorf("%s: err %v, want a validation error on %s", c.name, err, c.wantField)
		}
	}
	if got := s.Duplicates(); got != 2 {
		t.Errorf("duplicates %d, want 2 (invalid patches change nothing)", got)
	}
}

func TestBeforeResponseFiresOnlyOnSuccess(t *testing.T) {
	s, exits := armed(t, &memStore{})
	s.env = map[string]float64{"orders.place.before_response": 1}
	h := s.BeforeResponse("orders.place.before_response", func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Path == "/orders"
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	for _, target := range []string{"/orders?fail=1", "/other", "/orders"} {
		method := http.MethodPost
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, target, nil))
	}
	if diff := cmp.Diff(*exits, []string{"orders.place.before_response"}); diff != "" {
		t.Errorf("exits (-got +want):\n%s", diff)
	}
}

func TestHandler(t *testing.T) {
	s, _ := armed(t, &memStore{})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := s.Handler(http.NotFoundHandler(), func(context.Context) (OutboxStats, error) {
		return OutboxStats{Pending: 2, OldestPendingAt: &now, OldestPendingAgeSeconds: 1.5}, nil
	})
	cases := []struct {
		method, path, body string
		wantStatus         int
		wantBody           map[string]any
	}{
		{"PUT", "/faults/chaos", `{"crashPoints":{"orders.relay.after_publish":0.5},"duplicates":3}`, 200,
			map[string]any{"crashPoints": map[string]any{"orders.relay.after_publish": 0.5}, "duplicates": 3.0}},
		{"PUT", "/faults/chaos", `{"duplicates":9}`, 422, nil},
		{"PUT", "/faults/chaos", `{"crashPoints":{"orders.relay.after_publish":0}}`, 200,
			map[string]any{"crashPoints": map[string]any{}, "duplicates": 3.0}},
		{"GET", "/faults/chaos", "", 200, map[string]any{"crashPoints": map[string]any{}, "duplicates": 3.0}},
		{"DELETE", "/faults/chaos", "", 204, nil},
		{"GET", "/faults/chaos", "", 200, map[string]any{"crashPoints": map[string]any{}, "duplicates": 1.0}},
		{"GET", "/outbox", "", 200, map[string]any{"pending": 2.0, "oldestPendingAt": "2026-01-02T03:04:05Z", "oldestPendingAgeSeconds": 1.5}},
		{"GET", "/elsewhere", "", 404, nil},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != c.wantStatus {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, rec.Code, c.wantStatus, rec.Body)
			continue
		}
		if c.wantBody == nil {
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		sub := map[string]any{}
		for k := range c.wantBody {
			sub[k] = got[k]
		}
		if diff := cmp.Diff(sub, c.wantBody, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s %s %s (-got +want):\n%s", c.method, c.path, c.body, diff)
		}
		if c.path == "/faults/chaos" {
			if pts, _ := got["points"].([]any); len(pts) != len(PointsOf("orders")) {
				t.Errorf("points %v, want the %d of orders", got["points"], len(PointsOf("orders")))
			}
		}
	}
}

func TestPatternsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Patterns {
		if seen[p.Name] || len(p.Values) < 2 || p.What == "" || !strings.Contains(p.Name, ".") {
			t.Errorf("%+v: a unique <service>.<switch> name, a default and at least one other value, and what it does", p)
		}
		seen[p.Name] = true
	}
	for _, p := range Points {
		if p.Pattern == "" {
			continue
		}
		name, value, _ := strings.Cut(p.Pattern, "=")
		if pt, ok := LookupPattern(name); !ok || !slices.Contains(pt.Values[1:], value) {
			t.Errorf("point %s needs pattern %q, which is not a non-default value of a switch", p.Name, p.Pattern)
		}
	}
}

// A pattern switch reads its default until set; set to a value it is stored, survives a
// new Switches on the same store (a restart), and goes back to its default when set to it
// or cleared; an unknown, foreign or invalid one changes nothing and names the field.
func TestPatternSwitches(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	s, err := New(ctx, "users", env(nil), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Pattern(PatternUsersPublish); got != PublishOutbox {
		t.Fatalf("default %q, want outbox", got)
	}
	if _, err := s.Set(ctx, Patch{Patterns: map[string]string{PatternUsersPublish: PublishDirect}}); err != nil {
		t.Fatal(err)
	}
	restarted, err := New(ctx, "users", env(nil), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := restarted.Pattern(PatternUsersPublish); got != PublishDirect {
		t.Errorf("after a restart %q, want direct", got)
	}
	cases := []struct {
		name      string
		patterns  map[string]string
		wantField string
	}{
		{"unknown", map[string]string{"users.nope": "x"}, "patterns.users.nope"},
		{"foreign", map[string]string{PatternInventoryDedup: DedupOff}, "patterns.inventory.dedup"},
		{"bad value", map[string]string{PatternUsersPublish: "sometimes"}, "patterns.users.publish"},
	}
	for _, c := range cases {
		_, err := restarted.Set(ctx, Patch{Patterns: c.patterns})
		var verr *ValidationError
		if !errors.As(err, &verr) || verr.Field != c.wantField {
			t.Errorf("%s: err %v, want a validation error on %s", c.name, err, c.wantField)
		}
	}
	if got := restarted.Pattern(PatternUsersPublish); got != PublishDirect {
		t.Errorf("after invalid patches %q, want direct (unchanged)", got)
	}
	st, err := restarted.Set(ctx, Patch{Patterns: map[string]string{PatternUsersPublish: PublishOutbox}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Patterns != nil {
		t.Errorf("stored patterns %v after setting the default, want none", st.Patterns)
	}
	if _, err := restarted.Set(ctx, Patch{Patterns: map[string]string{PatternUsersPublish: PublishDirect}}); err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if got := restarted.Pattern(PatternUsersPublish); got != PublishOutbox {
		t.Errorf("after Clear %q, want outbox", got)
	}
}

func TestHandlerPatterns(t *testing.T) {
	s, err := New(context.Background(), "inventory", env(nil), &memStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler(http.NotFoundHandler(), nil)
	cases := []struct {
		method, body string
		wantStatus   int
		want         map[string]any
	}{
		{"GET", "", 200, map[string]any{"inventory.dedup": "on"}},
		{"PUT", `{"patterns":{"inventory.dedup":"off"}}`, 200, map[string]any{"inventory.dedup": "off"}},
		{"PUT", `{"patterns":{"inventory.dedup":"maybe"}}`, 422, nil},
		{"PUT", `{"duplicates":2}`, 200, map[string]any{"inventory.dedup": "off"}},
		{"DELETE", "", 204, nil},
		{"GET", "", 200, map[string]any{"inventory.dedup": "on"}},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, "/faults/chaos", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != c.wantStatus {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.body, rec.Code, c.wantStatus, rec.Body)
			continue
		}
		if c.wantStatus == 422 && !strings.Contains(rec.Body.String(), `"patterns.inventory.dedup"`) {
			t.Errorf("422 does not name the field: %s", rec.Body)
		}
		if c.want == nil {
			continue
		}
		var got struct {
			Patterns        map[string]any `json:"patterns"`
			PatternSwitches []any          `json:"patternSwitches"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got.Patterns, c.want); diff != "" {
			t.Errorf("%s %s: patterns (-got +want):\n%s", c.method, c.body, diff)
		}
		if len(got.PatternSwitches) != 1 {
			t.Errorf("patternSwitches %v, want inventory's one", got.PatternSwitches)
		}
	}
}
