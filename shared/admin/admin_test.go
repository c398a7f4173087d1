package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"polyshop/shared/admin"
	"polyshop/shared/admin/pgstats"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

func call(t *testing.T, h http.Handler, method, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	var body map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec.Code, body
}

// letterOf waits (bounded) until the DLQ lists a letter of subject and returns its seq.
func letterOf(t *testing.T, h http.Handler, subject string) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		after := uint64(0)
		for {
			code, body := call(t, h, "GET", fmt.Sprintf("/admin/dlq?limit=1000&after=%d", after))
			if code != 200 {
				t.Fatalf("GET /admin/dlq = %d %v", code, body)
			}
			items, _ := body["items"].([]any)
			for _, it := range items {
				l := it.(map[string]any)
				if l["subject"] == subject {
					return uint64(l["seq"].(float64))
				}
			}
			next, ok := body["nextAfter"].(float64)
			if !ok {
				break
			}
			after = uint64(next)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter of %s after 30s", subject)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	c := natstest.TestConn(t)
	stream := natstest.Stream(t, c, "users")
	if err := c.EnsureDLQ(ctx); err != nil {
		t.Fatal(err)
	}
	typ := natstest.EventType(t, "users")
	subject := events.SubjectFor(typ)
	var poisoned atomic.Bool
	poisoned.Store(true)
	applied := make(chan string, 10)
	spec := broker.ConsumerSpec{Stream: stream, Durable: natstest.Durable(t, c, stream, "admin"), Subjects: []string{subject}}
	sub, err := c.Consume(ctx, spec, func(_ context.Context, e events.Envelope) error {
		if poisoned.Load() {
			return broker.Permanent(errors.New("poisoned"))
		}
		applied <- e.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Metrics())
	h := admin.Wrap(serviceRoutes(), nil, admin.Deps{Conn: c})

	publish := func() events.Envelope {
		e, err := events.New(ctx, typ, "a1", 1, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := publish()
	seq := letterOf(t, h, subject)
	code, body := call(t, h, "GET", fmt.Sprintf("/admin/dlq/%d", seq))
	if code != 200 || body["eventId"] != e.ID || body["reason"] != "poisoned" || body["consumer"] != spec.Durable || body["data"] == nil {
		t.Errorf("GET letter = %d %v; want the event, its reason, consumer and data", code, body)
	}
	if got := testutil.ToFloat64(collectorFor(t, reg, broker.MetricConsumerDead, spec.Durable)); got != 1 {
		t.Errorf("%s = %v, want 1", broker.MetricConsumerDead, got)
	}

	poisoned.Store(false)
	if code, body := call(t, h, "POST", fmt.Sprintf("/admin/dlq/%d/replay", seq)); code != 200 {
		t.Errorf("replay = %d %v, want 200", code, body)
	}
	select {
	case id := <-applied:
		if id != e.ID {
			t.Errorf("replayed %s, want %s", id, e.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replay did not reach the handler")
	}

	poisoned.Store(true)
	publish()
	seq2 := letterOf(t, h, subject)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", fmt.Sprintf("/admin/dlq/%d", seq), 404}, // replayed: gone
		{"POST", fmt.Sprintf("/admin/dlq/%d/replay", seq), 404},
		{"DELETE", fmt.Sprintf("/admin/dlq/%d", seq2), 204},
		{"DELETE", fmt.Sprintf("/admin/dlq/%d", seq2), 404},
		{"GET", "/admin/dlq/abc", 400},
		{"GET", "/admin/dlq?limit=0", 422},
		{"GET", "/admin/dlq?after=x", 400},
		{"PUT", "/admin/dlq/1", 405},
		{"GET", "/admin/nothing", 404},
		{"POST", "/admin/rebuild", 200},      // the service's own /admin route
		{"GET", "/admin/outbox/parked", 404}, // no outbox in these Deps
	}
	for _, tc := range tests {
		if code, body := call(t, h, tc.method, tc.path); code != tc.want {
			t.Errorf("%s %s = %d %v, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
}

// serviceRoutes stands for the service's own handler behind Wrap: one /admin route of its
// own (as search's /admin/rebuild), 404 problems for everything else.
func serviceRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/rebuild", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]bool{"rebuilt": true})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteProblem(w, r, httpx.NotFound("No such endpoint."), nil)
	})
	return mux
}

func collectorFor(t *testing.T, reg *prometheus.Registry, name, durable string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "consumer" && l.GetValue() == durable {
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s for %s", name, durable)
	return nil
}

func TestParkedOutboxEvents(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := pgoutbox.New(pool)
	store.SetPolicy(outbox.Policy{ParkAfter: 1})
	e, err := events.New(ctx, "polyshop.users.admin_test.v1", "u1", 1, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgoutbox.Add(ctx, tx, e) }); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Drain(ctx, 10, func(context.Context, events.Envelope) error { return errors.New("refused") }); err == nil {
		t.Fatal("Drain: want the failure")
	}
	h := admin.Wrap(serviceRoutes(), nil, admin.Deps{Outbox: store})

	code, body := call(t, h, "GET", "/admin/outbox/parked")
	items, _ := body["items"].([]any)
	if code != 200 || len(items) != 1 {
		t.Fatalf("GET parked = %d %v; want one item", code, body)
	}
	got := items[0].(map[string]any)
	delete(got, "parkedAt")
	want := map[string]any{"id": e.ID, "aggregate": "u1", "type": e.Type, "attempts": 1.0, "lastError": "refused"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("parked item (-got +want):\n%s", diff)
	}
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/admin/outbox/parked?limit=5000", 422},
		{"GET", "/admin/outbox/parked?limit=x", 400},
		{"POST", "/admin/outbox/parked/" + e.ID + "/rearm", 204},
		{"POST", "/admin/outbox/parked/" + e.ID + "/rearm", 404},
		{"POST", "/admin/outbox/parked/nope/rearm", 404},
		{"DELETE", "/admin/outbox/parked", 405},
		{"GET", "/admin/dlq", 404}, // no broker connection in these Deps
	}
	for _, tc := range tests {
		if code, body := call(t, h, tc.method, tc.path); code != tc.want {
			t.Errorf("%s %s = %d %v, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
	// Not /admin: handed to the service's own handler.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/administrator", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "No such endpoint.") {
		t.Errorf("GET /administrator = %d %s; want the wrapped handler's 404", rec.Code, rec.Body)
	}
}

func TestStats(t *testing.T) {
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE things (id int PRIMARY KEY, live bool NOT NULL);
		INSERT INTO things VALUES (1, true), (2, true), (3, false)`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		stats    admin.Stats
		wantCode int
		want     map[string]any
	}{
		{name: "no stats: 404", wantCode: 404},
		{
			name: "counts", wantCode: 200,
			stats: pgstats.Count(pool, map[string]string{
				"all":  `SELECT count(*) FROM things`,
				"live": `SELECT count(*) FROM things WHERE live`,
			}),
			want: map[string]any{"records": map[string]any{"all": 3.0, "live": 2.0}},
		},
		{
			name: "a failing query: 500", wantCode: 500,
			stats: pgstats.Count(pool, map[string]string{"nope": `SELECT count(*) FROM no_such_table`}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := admin.Wrap(http.NotFoundHandler(), nil, admin.Deps{Stats: tc.stats})
			code, body := call(t, h, "GET", "/admin/stats")
			if code != tc.wantCode {
				t.Fatalf("GET /admin/stats = %d %v, want %d", code, body, tc.wantCode)
			}
			if tc.want != nil {
				if diff := cmp.Diff(body, tc.want); diff != "" {
					t.Errorf("answer (-got +want):\n%s", diff)
				}
			}
		})
	}
}
