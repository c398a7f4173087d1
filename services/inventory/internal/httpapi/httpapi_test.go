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
	"path/filepath"
	"polyshop/shared/testenv"
	"testing"

	"github.com/google/uuid"

	"polyshop/services/inventory/internal/httpapi"
	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
	"polyshop/shared/testenv/pgtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

type env struct {
	srv *httptest.Server
	svc *inventory.Service
}

func setup(t testing.TB) env {
	t.Helper()
	pool, _ := pgtest.Schema(t, "INVENTORY_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := inventory.NewService(pgstore.New(pool), inventory.Options{Log: log})
	srv := httptest.NewServer(httpapi.New(svc, log, nil, nil).Handler())
	t.Cleanup(srv.Close)
	return env{srv: srv, svc: svc}
}

type response struct {
	status int
	ctype  string
	body   []byte
}

func (e env) do(t testing.TB, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

func (e env) product(t testing.TB, id string, initial int64) {
	t.Helper()
	ev, err := events.New(context.Background(), events.TypeProductCreated, id, 1, events.ProductCreated{
		ProductID: id, Name: "P", Price: events.Money{Amount: 1, Currency: "EUR"}, InitialStock: initial})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyCatalog(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// golden compares body, with uuids and times replaced by placeholders, to testdata/name.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	testenv.GoldenJSON(t, filepath.Join("..", "..", "testdata", name), body, *update)
}

const (
	pA = "0193a1b2-0000-7000-8000-00000000000a"
	pB = "0193a1b2-0000-7000-8000-00000000000b"
)

func TestRoutes(t *testing.T) {
	e := setup(t)
	e.product(t, pA, 5)
	e.product(t, pB, 0)
	order := uuid.Must(uuid.NewV7()).String()
	if err := e.svc.Reserve(context.Background(), events.ReserveStock{OrderID: order, UserID: "u1", Attempt: 1,
		Items: []events.StockItem{{ProductID: pA, Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		golden                   string // for 2xx
		field                    string // for 422
	}{
		{"stock", "GET", "/stock/" + pA, "", 200, "stock.json", ""},
		{"stock unknown", "GET", "/stock/nope", "", 404, "", ""},
		{"stock list", "GET", "/stock?ids=" + pA + ",unknown," + pB, "", 200, "stock_list.json", ""},
		{"stock list without ids", "GET", "/stock", "", 422, "", "ids"},
		{"ledger", "GET", "/stock/" + pA + "/ledger", "", 200, "ledger.json", ""},
		{"ledger unknown", "GET", "/stock/nope/ledger", "", 404, "", ""},
		{"restock stale", "PUT", "/stock/" + pA, `{"available":9,"version":1}`, 409, "", ""},
		{"restock", "PUT", "/stock/" + pA, `{"available":9,"version":2}`, 200, "restock.json", ""},
		{"restock negative", "PUT", "/stock/" + pA, `{"available":-1,"version":3}`, 422, "", "available"},
		{"restock missing version", "PUT", "/stock/" + pA, `{"available":1}`, 422, "", "version"},
		{"restock malformed", "PUT", "/stock/" + pA, `{"available":"x"}`, 400, "", ""},
		{"restock unknown", "PUT", "/stock/nope", `{"available":1,"version":1}`, 404, "", ""},
		{"reservations", "GET", "/reservations?orderId=" + order, "", 200, "reservations.json", ""},
		{"reservations none", "GET", "/reservations?orderId=" + uuid.Must(uuid.NewV7()).String(), "", 200, "reservations_empty.json", ""},
		{"reservations bad id", "GET", "/reservations?orderId=x", "", 422, "", "orderId"},
		{"faults", "GET", "/faults", "", 200, "faults.json", ""},
		{"faults out of range", "PUT", "/faults", `{"latencyMs":20001}`, 422, "", "latencyMs"},
		{"faults unknown field", "PUT", "/faults", `{"declineRate":1}`, 400, "", ""},
		{"no such route", "GET", "/orders", "", 404, "", ""},
		{"wrong method", "POST", "/stock/" + pA, "", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if tt.status >= 400 {
				if r.ctype != httpx.ContentTypeProblem {
					t.Errorf("Content-Type = %q, want a problem", r.ctype)
				}
				if tt.field != "" {
					var p httpx.Problem
					_ = json.Unmarshal(r.body, &p)
					if len(p.Errors) != 1 || p.Errors[0].Field != tt.field {
						t.Errorf("problem fields %+v, want %s", p.Errors, tt.field)
					}
				}
				return
			}
			golden(t, tt.golden, r.body)
		})
	}
}

// Down answers 503 on the business routes only, and clearing it brings them back.
func TestDownFault(t *testing.T) {
	e := setup(t)
	e.product(t, pA, 5)
	if r := e.do(t, "PUT", "/faults", `{"down":true}`); r.status != 200 || !bytes.Contains(r.body, []byte(`"down":true`)) {
		t.Fatalf("PUT /faults = %d %s", r.status, r.body)
	}
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/stock/" + pA, 503},
		{"GET", "/stock?ids=" + pA, 503},
		{"GET", "/stock/" + pA + "/ledger", 503},
		{"GET", "/reservations?orderId=" + pA, 503},
		{"GET", "/faults", 200},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/metrics", 200},
	}
	for _, tt := range tests {
		if r := e.do(t, tt.method, tt.path, ""); r.status != tt.status {
			t.Errorf("down: %s %s = %d, want %d", tt.method, tt.path, r.status, tt.status)
		}
	}
	// PUT is partial: latency changes, down stays.
	if r := e.do(t, "PUT", "/faults", `{"latencyMs":5}`); string(bytes.TrimSpace(r.body)) != `{"latencyMs":5,"down":true}` {
		t.Errorf("partial PUT = %d %s", r.status, r.body)
	}
	if r := e.do(t, "DELETE", "/faults", ""); r.status != 204 {
		t.Fatalf("DELETE /faults = %d", r.status)
	}
	if r := e.do(t, "GET", "/stock/"+pA, ""); r.status != 200 {
		t.Errorf("after clearing: GET /stock = %d", r.status)
	}
}
