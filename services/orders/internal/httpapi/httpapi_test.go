package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/orders/internal/httpapi"
	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
)

var update = flag.Bool("update", false, "rewrite golden files")

type env struct {
	orderstest.Env
	srv *httptest.Server
}

func setup(t *testing.T) env {
	t.Helper()
	e := orderstest.New(t, orderstest.SlowTiming)
	api := httpapi.New(e.Svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return env{Env: e, srv: srv}
}

type response struct {
	status int
	body   []byte
}

func (e env) do(t *testing.T, method, path, key, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, b}
}

func problemFields(t *testing.T, b []byte) []string {
	t.Helper()
	var p httpx.Problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("not a problem: %s", b)
	}
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func body(user string, lines ...string) string {
	return `{"userId":"` + user + `","items":[` + strings.Join(lines, ",") + `]}`
}

func line(product string, qty int) string {
	b, _ := json.Marshal(map[string]any{"productId": product, "quantity": qty})
	return string(b)
}

func TestPlaceValidation(t *testing.T) {
	e := setup(t)
	user := e.Customer(t)
	eur, eur2 := e.Product(t, "Mug", 1250, "EUR"), e.Product(t, "Tea", 399, "EUR")
	usd := e.Product(t, "Cap", 1500, "USD")
	gone := e.Product(t, "Old", 100, "EUR")
	e.Apply(t, events.TypeProductDeleted, gone, 2, events.ProductDeleted{ProductID: gone})
	noAddress := uuid.NewString()
	e.Apply(t, events.TypeUserRegistered, noAddress, 1, events.UserRegistered{UserID: noAddress, Email: "x@example.com", Role: "customer"})
	many := make([]string, 51)
	for i := range many {
		many[i] = line(uuid.NewString(), 1)
	}
	cases := []struct {
		name   string
		key    string
		body   string
		status int
		fields []string
	}{
		{"no key", "", body(user, line(eur, 1)), 400, []string{"Idempotency-Key"}},
		{"key too long", strings.Repeat("k", 201), body(user, line(eur, 1)), 400, []string{"Idempotency-Key"}},
		{"malformed body", "k", `{"userId":`, 400, nil},
		{"unknown field", "k", `{"userId":"` + user + `","items":[],"coupon":1}`, 400, []string{"coupon"}},
		{"user not a UUID", "k", body("bob", line(eur, 1)), 422, []string{"userId"}},
		{"unknown user", "k", body(uuid.NewString(), line(eur, 1)), 422, []string{"userId"}},
		{"user without an address", "k", body(noAddress, line(eur, 1)), 422, []string{"userId"}},
		{"no lines", "k", body(user), 422, []string{"items"}},
		{"51 lines", "k", body(user, many...), 422, []string{"items"}},
		{"quantity 0", "k", body(user, line(eur, 0)), 422, []string{"items[0].quantity"}},
		{"quantity 101", "k", body(user, line(eur, 1), line(eur2, 101)), 422, []string{"items[1].quantity"}},
		{"product not a UUID", "k", body(user, line("mug", 1)), 422, []string{"items[0].productId"}},
		{"unknown product", "k", body(user, line(eur, 1), line(uuid.NewString(), 1)), 422, []string{"items[1].productId"}},
		{"deleted product", "k", body(user, line(gone, 1)), 422, []string{"items[0].productId"}},
		{"duplicate product lines", "k", body(user, line(eur, 1), line(eur, 2)), 422, []string{"items[1].productId"}},
		{"mixed currencies", "k", body(user, line(eur, 1), line(usd, 1)), 422, []string{"items[1].productId"}},
		{"valid", "k-ok", body(user, line(eur, 1), line(eur2, 100)), 202, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/orders", tc.key, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status >= 400 && tc.fields != nil {
				if diff := cmp.Diff(problemFields(t, r.body), tc.fields); diff != "" {
					t.Errorf("problem fields (-got +want):\n%s\n%s", diff, r.body)
				}
			}
		})
	}
	var n int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d orders stored (err %v), want only the valid one", n, err)
	}
}

func TestPlaceIsIdempotentPerUserAndKey(t *testing.T) {
	e := setup(t)
	user, other := e.Customer(t), e.Customer(t)
	mug, tea := e.Product(t, "Mug", 1250, "EUR"), e.Product(t, "Tea", 399, "EUR")
	b := body(user, line(mug, 1), line(tea, 2))

	// The same key sent concurrently: one order, every answer names it.
	const n = 8
	ids := make([]string, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(t, "POST", "/orders", "same-key", b)
			var p struct{ ID, Status string }
			_ = json.Unmarshal(r.body, &p)
			ids[i], statuses[i] = p.ID, r.status
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		if ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("answers name orders %v, want one", ids)
		}
		switch statuses[i] {
		case 202:
			created++
		case 200:
		default:
			t.Errorf("status %d", statuses[i])
		}
	}
	if created != 1 {
		t.Errorf("%d answers were 202 Created, want 1 (the rest 200)", created)
	}
	var count int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM orders`).Scan(&count); err != nil || count != 1 {
		t.Errorf("%d orders stored (err %v), want 1", count, err)
	}
	if got := e.Outbox(t, ids[0]); !cmp.Equal(got, []string{"order_placed", "reserve#1"}) {
		t.Errorf("outbox %v, want one placement", got)
	}

	// The same lines in another order are the same request.
	if r := e.do(t, "POST", "/orders", "same-key", body(user, line(tea, 2), line(mug, 1))); r.status != 200 || !strings.Contains(string(r.body), ids[0]) {
		t.Errorf("same lines reordered: %d %s, want 200 with the order", r.status, r.body)
	}
	// Other lines under the same key: 422 naming the key.
	r := e.do(t, "POST", "/orders", "same-key", body(user, line(mug, 2)))
	if r.status != 422 || !cmp.Equal(problemFields(t, r.body), []string{"Idempotency-Key"}) {
		t.Errorf("different items: %d %s, want 422 on Idempotency-Key", r.status, r.body)
	}
	// The key is per user.
	if r := e.do(t, "POST", "/orders", "same-key", body(other, line(mug, 1), line(tea, 2))); r.status != 202 {
		t.Errorf("another user's same key: %d %s, want 202", r.status, r.body)
	}
}

var volatile = regexp.MustCompile(`"(id|userId|productId|createdAt|updatedAt|at|startedAt|requestId|instance)": "[^"]*"`)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	pretty, _ := json.MarshalIndent(v, "", "  ")
	norm := volatile.ReplaceAll(pretty, []byte(`"$1": "…"`))
	path := filepath.Join("..", "..", "testdata", name)
	if *update {
		if err := os.WriteFile(path, append(norm, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(norm)+"\n", string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", name, diff)
	}
}

func TestGetOrder(t *testing.T) {
	e := setup(t)
	user := e.Customer(t)
	mug := e.Product(t, "Mug", 1250, "EUR")
	order := e.Place(t, user, orders.Line{ProductID: mug, Quantity: 2})
	e.Reply(t, order, user, events.TypeReplyStockReserved, 1, "")
	e.Reply(t, order, user, events.TypeReplyPaymentDeclined, 1, "card_declined")
	e.Reply(t, order, user, events.TypeReplyStockReleased, 1, "")
	r := e.do(t, "GET", "/orders/"+order, "", "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	golden(t, "order_cancelled.json", r.body)
	for _, path := range []string{"/orders/" + uuid.NewString(), "/orders/not-a-uuid"} {
		if r := e.do(t, "GET", path, "", ""); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
	if r := e.do(t, "PATCH", "/orders/"+order, "", "{}"); r.status != 405 {
		t.Errorf("PATCH: %d, want 405", r.status)
	}
}

func TestListOrders(t *testing.T) {
	e := setup(t)
	user, other := e.Customer(t), e.Customer(t)
	mug := e.Product(t, "Mug", 1250, "EUR")
	var mine []string
	for range 5 {
		mine = append([]string{e.Place(t, user, orders.Line{ProductID: mug, Quantity: 1})}, mine...) // newest first
	}
	theirs := e.Place(t, other, orders.Line{ProductID: mug, Quantity: 1})
	e.Reply(t, mine[0], user, events.TypeReplyStockRejected, 1, events.RejectOutOfStock)

	page := func(q string) (ids []string, next string) {
		t.Helper()
		r := e.do(t, "GET", "/orders?"+q, "", "")
		if r.status != 200 {
			t.Fatalf("GET /orders?%s: %d %s", q, r.status, r.body)
		}
		var p struct {
			Items      []struct{ ID string }
			NextCursor string
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Items {
			ids = append(ids, o.ID)
		}
		return ids, p.NextCursor
	}
	var got []string
	ids, next := page("userId=" + user + "&limit=2")
	got = append(got, ids...)
	for next != "" {
		ids, next = page("userId=" + user + "&limit=2&cursor=" + next)
		got = append(got, ids...)
	}
	if diff := cmp.Diff(got, mine); diff != "" {
		t.Errorf("paged list (-got +want):\n%s", diff)
	}
	if ids, _ := page("userId=" + user + "&status=CANCELLED"); !cmp.Equal(ids, mine[:1]) {
		t.Errorf("cancelled: %v, want %v", ids, mine[:1])
	}
	if ids, _ := page(""); len(ids) != 6 || ids[0] != theirs {
		t.Errorf("all orders: %v, want 6, newest (%s) first", ids, theirs)
	}
	for q, want := range map[string]int{"limit=0": 422, "limit=101": 422, "limit=-1": 422, "limit=1.5": 400, "limit=x": 400, "cursor=nope": 400,
		"userId=bob": 422, "status=DONE": 422} {
		r := e.do(t, "GET", "/orders?"+q, "", "")
		if r.status != want {
			t.Errorf("GET /orders?%s: %d, want %d", q, r.status, want)
		}
		field, _, _ := strings.Cut(q, "=")
		if !strings.Contains(string(r.body), `"field":"`+field+`"`) {
			t.Errorf("GET /orders?%s: problem does not name %s: %s", q, field, r.body)
		}
	}
}

func TestSagasAndFaults(t *testing.T) {
	e := setup(t)
	user := e.Customer(t)
	mug := e.Product(t, "Mug", 1250, "EUR")
	first := e.Place(t, user, orders.Line{ProductID: mug, Quantity: 1})
	second := e.Place(t, user, orders.Line{ProductID: mug, Quantity: 1})
	e.Reply(t, first, user, events.TypeReplyStockRejected, 1, events.RejectOutOfStock)
	r := e.do(t, "GET", "/sagas", "", "")
	var s struct {
		Counts        map[string]int
		OldestPending *struct{ OrderID, State string }
	}
	if err := json.Unmarshal(r.body, &s); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	wantCounts := map[string]int{"RESERVING": 1, "CHARGING": 0, "COMMITTING": 0, "REFUNDING": 0, "RELEASING": 0, "CONFIRMED": 0, "CANCELLED": 1}
	if diff := cmp.Diff(s.Counts, wantCounts); diff != "" {
		t.Errorf("counts (-got +want):\n%s", diff)
	}
	if s.OldestPending == nil || s.OldestPending.OrderID != second || s.OldestPending.State != "RESERVING" {
		t.Errorf("oldest pending %+v, want %s RESERVING", s.OldestPending, second)
	}
	if r := e.do(t, "GET", "/sagas?status=CANCELLED", "", ""); r.status != 200 || !strings.Contains(string(r.body), `"counts":{"CANCELLED":1},"oldestPending":null`) {
		t.Errorf("status=CANCELLED: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/sagas?status=DONE", "", ""); r.status != 422 {
		t.Errorf("status=DONE: %d, want 422", r.status)
	}

	steps := []struct {
		method, body string
		status       int
		want         string
	}{
		{"GET", "", 200, `{"stepTimeoutMs":300000}`},
		{"PUT", `{"stepTimeoutMs":2000}`, 200, `{"stepTimeoutMs":2000}`},
		{"PUT", `{}`, 200, `{"stepTimeoutMs":2000}`},
		{"GET", "", 200, `{"stepTimeoutMs":2000}`},
		{"PUT", `{"stepTimeoutMs":0}`, 422, ""},
		{"PUT", `{"stepTimeoutMs":600001}`, 422, ""},
		{"PUT", `{"stepTimeoutMs":"fast"}`, 400, ""},
		{"PUT", `{"latencyMs":1}`, 400, ""},
		{"DELETE", "", 204, ""},
		{"GET", "", 200, `{"stepTimeoutMs":300000}`},
	}
	for _, st := range steps {
		r := e.do(t, st.method, "/faults", "", st.body)
		if r.status != st.status || (st.want != "" && strings.TrimSpace(string(r.body)) != st.want) {
			t.Errorf("%s /faults %s: %d %s, want %d %s", st.method, st.body, r.status, r.body, st.status, st.want)
		}
	}
}
