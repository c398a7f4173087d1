package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/httpx"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, rewriting the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(got), string(want)); diff != "" {
		t.Errorf("%s mismatch (-got +want):\n%s", name, diff)
	}
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, b)
	}
	return out.Bytes()
}

func newLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantHeaders map[string]string
		wantLogs    int
	}{
		{"bad_request", httpx.BadRequest("The request has invalid fields.",
			httpx.FieldError{Field: "email", Reason: "must be a valid email address"},
			httpx.FieldError{Field: "items.0.quantity", Reason: "must be at least 1"}), 400, nil, 0},
		{"unauthorized", httpx.Unauthorized("Log in first."), 401, map[string]string{"Www-Authenticate": `Bearer realm="polyshop"`}, 0},
		{"forbidden", httpx.Forbidden("Only admins may change products."), 403, nil, 0},
		{"not_found", fmt.Errorf("get order: %w", httpx.NotFound("No order with id 42.")), 404, nil, 0},
		{"conflict", httpx.Conflict("An account with this email already exists."), 409, nil, 0},
		{"unprocessable", httpx.Unprocessable("The order cannot be placed.",
			httpx.FieldError{Field: "items", Reason: "must not be empty"}), 422, nil, 0},
		{"too_many_requests", httpx.TooManyRequests("Too many failed logins; try again later.", 1500*time.Millisecond),
			429, map[string]string{"Retry-After": "2"}, 0},
		{"unavailable", httpx.Unavailable("The catalog is unreachable."), 503, nil, 1},
		{"typed", &httpx.Error{Status: 402, Type: "urn:polyshop:problem:payment-declined", Title: "Payment declined",
			Detail: "The card was declined."}, 402, nil, 0},
		{"internal", errors.New("pq: connection refused to 10.0.0.3 password=hunter2"), 500, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger()
			h := httpx.Chain(httpx.Handler(log, func(w http.ResponseWriter, r *http.Request) error {
				return tt.err
			}), httpx.RequestID)
			req := httptest.NewRequest(http.MethodPost, "/api/orders", nil)
			req.Header.Set(httpx.HeaderRequestID, "req-1")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if diff := cmp.Diff(rec.Code, tt.wantStatus); diff != "" {
				t.Errorf("status (-got +want):\n%s", diff)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q", got)
			}
			for k, v := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			golden(t, "problem_"+tt.name+".json", indent(t, rec.Body.Bytes()))
			if got := strings.Count(logs.String(), "request failed"); got != tt.wantLogs {
				t.Errorf("logged %d times, want %d:\n%s", got, tt.wantLogs, logs)
			}
			if tt.name == "internal" && strings.Contains(rec.Body.String(), "hunter2") {
				t.Error("the cause of a 500 leaked into the response")
			}
		})
	}
}

func TestHandlerErrorAfterResponseStarted(t *testing.T) {
	log, logs := newLogger()
	h := httpx.Handler(log, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "partial")
		return errors.New("stream broke")
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if diff := cmp.Diff([]any{rec.Code, rec.Body.String()}, []any{200, "partial"}); diff != "" {
		t.Errorf("response (-got +want):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "stream broke") {
		t.Errorf("error not logged: %s", logs)
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := httpx.WriteJSON(rec, http.StatusCreated, map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	got := []any{rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()}
	if diff := cmp.Diff(got, []any{201, "application/json", "{\"n\":1}\n"}); diff != "" {
		t.Errorf("response (-got +want):\n%s", diff)
	}
	rec = httptest.NewRecorder()
	if err := httpx.WriteJSON(rec, 200, func() {}); err == nil {
		t.Error("WriteJSON(func) = nil error")
	}
	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q on an encoding error", rec.Body)
	}
}

func TestReadProblem(t *testing.T) {
	want := httpx.BadRequest("bad", httpx.FieldError{Field: "f", Reason: "r"})
	want.Title = "Bad Request"
	tests := []struct {
		name string
		resp func() *http.Response
		want *httpx.Error
	}{
		{"problem", func() *http.Response {
			rec := httptest.NewRecorder()
			httpx.WriteProblem(rec, httptest.NewRequest("GET", "/x", nil), httpx.BadRequest("bad", httpx.FieldError{Field: "f", Reason: "r"}), nil)
			return rec.Result()
		}, want},
		{"retry after", func() *http.Response {
			rec := httptest.NewRecorder()
			httpx.WriteProblem(rec, httptest.NewRequest("GET", "/x", nil), httpx.TooManyRequests("slow down", 3*time.Second), nil)
			return rec.Result()
		}, &httpx.Error{Status: 429, Title: "Too Many Requests", Detail: "slow down", Headers: http.Header{"Retry-After": {"3"}}}},
		{"plain text", func() *http.Response {
			rec := httptest.NewRecorder()
			http.Error(rec, "upstream exploded", http.StatusBadGateway)
			return rec.Result()
		}, &httpx.Error{Status: 502, Detail: "upstream exploded"}},
		{"success", func() *http.Response {
			rec := httptest.NewRecorder()
			rec.WriteHeader(200)
			return rec.Result()
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(httpx.ReadProblem(tt.resp()), tt.want); diff != "" {
				t.Errorf("ReadProblem (-got +want):\n%s", diff)
			}
		})
	}
}
