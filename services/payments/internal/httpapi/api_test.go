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

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/payments/internal/httpapi"
	"polyshop/services/payments/internal/payments"
	"polyshop/services/payments/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
	"polyshop/shared/testenv/pgtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

type env struct {
	srv *httptest.Server
	svc *payments.Service
}

func setup(t *testing.T) env {
	t.Helper()
	pool, _ := pgtest.Schema(t, "PAYMENTS_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	svc := payments.NewService(pgstore.New(pool), payments.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.New(svc, log, nil, nil).Handler())
	t.Cleanup(srv.Close)
	return env{srv: srv, svc: svc}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e env) do(t *testing.T, method, path, body string) response {
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
	return response{resp.StatusCode, resp.Header, b}
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// golden compares body, with ids and times replaced by placeholders, to testdata/name.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	testenv.GoldenJSON(t, filepath.Join("..", "..", "testdata", name), body, *update)
}

func problemOf(t *testing.T, r response) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpx.ContentTypeProblem {
		t.Errorf("Content-Type %q, want %s (body %s)", ct, httpx.ContentTypeProblem, r.body)
	}
	var p httpx.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	return p
}

func TestPaymentsOfAnOrder(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	order, user := newID(t), newID(t)
	cmd := func(typ string, data any) events.Envelope {
		env, err := events.New(ctx, typ, order, 1, data)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	if _, err := e.svc.Charge(ctx, cmd(events.TypeCmdChargePayment, events.ChargePayment{OrderID: order, UserID: user, Attempt: 1, Amount: 2599, Currency: "EUR"})); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, "GET", "/payments?orderId="+order, "")
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	golden(t, "payments_charged.json", r.body)

	if _, err := e.svc.Refund(ctx, cmd(events.TypeCmdRefundPayment, events.RefundPayment{OrderID: order, UserID: user, Attempt: 1, Reason: "out_of_stock"})); err != nil {
		t.Fatal(err)
	}
	golden(t, "payments_refunded.json", e.do(t, "GET", "/payments?orderId="+order, "").body)

	// An order without payments: an empty list, not 404.
	r = e.do(t, "GET", "/payments?orderId="+newID(t), "")
	if r.status != http.StatusOK || string(r.body) != `{"items":[]}`+"\n" {
		t.Errorf("unknown order: %d %q, want 200 {\"items\":[]}", r.status, r.body)
	}
}

func TestErrors(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"orderId empty", "GET", "/payments?orderId=", "", 422, "orderId"},
		{"orderId not a uuid", "GET", "/payments?orderId=42", "", 422, "orderId"},
		{"declineRate above 1", "PUT", "/faults", `{"declineRate": 1.5}`, 422, "declineRate"},
		{"errorRate negative", "PUT", "/faults", `{"errorRate": -0.1}`, 422, "errorRate"},
		{"latencyMs too large", "PUT", "/faults", `{"latencyMs": 20001}`, 422, "latencyMs"},
		{"unknown field", "PUT", "/faults", `{"speed": 1}`, 400, ""},
		{"wrong type", "PUT", "/faults", `{"down": "yes"}`, 400, ""},
		{"malformed", "PUT", "/faults", `{`, 400, ""},
		{"unknown route", "GET", "/refunds", "", 404, ""},
		{"wrong method", "POST", "/payments", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			p := problemOf(t, r)
			if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
				t.Errorf("errors %+v, want one naming %s", p.Errors, tt.field)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	e := setup(t)
	steps := []struct {
		method, body string
		status       int
		want         string
	}{
		{"GET", "", 200, `{"declineRate":0,"errorRate":0,"latencyMs":0,"down":false}`},
		{"PUT", `{"declineRate":0.5}`, 200, `{"declineRate":0.5,"errorRate":0,"latencyMs":0,"down":false}`},
		{"PUT", `{"latencyMs":200,"errorRate":0.1}`, 200, `{"declineRate":0.5,"errorRate":0.1,"latencyMs":200,"down":false}`},
		{"PUT", `{}`, 200, `{"declineRate":0.5,"errorRate":0.1,"latencyMs":200,"down":false}`},
		{"PUT", `{"declineRate":2}`, 422, ""},
		{"GET", "", 200, `{"declineRate":0.5,"errorRate":0.1,"latencyMs":200,"down":false}`},
		{"DELETE", "", 204, ""},
		{"GET", "", 200, `{"declineRate":0,"errorRate":0,"latencyMs":0,"down":false}`},
	}
	for i, s := range steps {
		r := e.do(t, s.method, "/faults", s.body)
		if r.status != s.status {
			t.Fatalf("step %d %s %s: status %d, want %d (%s)", i, s.method, s.body, r.status, s.status, r.body)
		}
		if s.want != "" {
			if diff := cmp.Diff(string(bytes.TrimSpace(r.body)), s.want); diff != "" {
				t.Errorf("step %d %s %s (-got +want):\n%s", i, s.method, s.body, diff)
			}
		}
	}
}

// While down, the business API answers 503; /faults and /healthz stay up, and clearing the
// switch brings /payments back.
func TestDownAnswers503ButFaultsStayUp(t *testing.T) {
	e := setup(t)
	if r := e.do(t, "PUT", "/faults", `{"down":true}`); r.status != 200 {
		t.Fatalf("PUT down: %d %s", r.status, r.body)
	}
	order := newID(t)
	tests := []struct {
		path   string
		status int
	}{
		{"/payments?orderId=" + order, 503},
		{"/faults", 200},
		{"/healthz", 200},
		{"/readyz", 200},
		{"/metrics", 200},
	}
	for _, tt := range tests {
		r := e.do(t, "GET", tt.path, "")
		if r.status != tt.status {
			t.Errorf("GET %s while down: %d, want %d", tt.path, r.status, tt.status)
		}
		if tt.status == 503 {
			problemOf(t, r)
		}
	}
	if r := e.do(t, "PUT", "/faults", `{"down":false}`); r.status != 200 {
		t.Fatalf("PUT down false: %d", r.status)
	}
	if r := e.do(t, "GET", "/payments?orderId="+order, ""); r.status != 200 {
		t.Errorf("GET /payments after clearing down: %d, want 200", r.status)
	}
}
