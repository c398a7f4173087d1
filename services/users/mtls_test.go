package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/testenv"
)

// users started with mutual TLS (USERS_TLS_*, as the native runner and compose start it)
// answers health checks to anyone, refuses callers without a certificate (401) and callers
// its caller table (internal/httpapi.Callers) does not name for the route (403).
func TestRunWithMutualTLSAuthorizesCallers(t *testing.T) {
	p := testenv.NewPKI(t)
	s := testenv.StartService(t, run, "USERS_HTTP_ADDR", p.Env("users"))
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s, want https://", s.URL)
	}
	creds, err := json.Marshal(map[string]string{"email": testenv.Getenv("ADMIN_EMAIL"), "password": testenv.Getenv("ADMIN_PASSWORD")})
	if err != nil {
		t.Fatal(err)
	}
	const noCert = "a client certificate signed by the Polyshop CA is required (mutual TLS)"
	tests := []struct {
		name, caller, method, path string
		body                       []byte
		wantStatus                 int
		wantDetail                 string // the problem's detail; "" when the answer is not a problem
	}{
		{"health, no certificate", "", "GET", "/healthz", nil, 200, ""},
		{"readiness, no certificate", "", "GET", "/readyz", nil, 200, ""},
		{"credential check, no certificate", "", "POST", "/credentials/verify", creds, 401, noCert},
		{"export, no certificate", "", "GET", "/export/addresses?limit=1", nil, 401, noCert},
		{"operator API, no certificate", "", "GET", "/admin/outbox/parked", nil, 401, noCert},
		{"credential check by sessions", "sessions", "POST", "/credentials/verify", creds, 200, ""},
		{"credential check by catalog", "catalog", "POST", "/credentials/verify", creds, 403, "catalog may not call POST /credentials/verify"},
		{"credential check by the gateway", "gateway", "POST", "/credentials/verify", creds, 403, "gateway may not call POST /credentials/verify"},
		{"credential check by the operator", "operator", "POST", "/credentials/verify", creds, 200, ""},
		{"export by orders", "orders", "GET", "/export/addresses?limit=1", nil, 200, ""},
		{"export by search", "search", "GET", "/export/addresses?limit=1", nil, 403, "search may not call GET /export/addresses"},
		{"a user by the gateway", "gateway", "GET", "/users/00000000-0000-4000-8000-000000000000", nil, 404, "No such user."},
		{"a user by sessions", "sessions", "GET", "/users/00000000-0000-4000-8000-000000000000", nil, 403, "sessions may not call GET /users/00000000-0000-4000-8000-000000000000"},
		{"operator API by the gateway", "gateway", "GET", "/admin/outbox/parked", nil, 200, ""},
		{"operator API by orders", "orders", "GET", "/admin/outbox/parked", nil, 403, "orders may not call GET /admin/outbox/parked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, s.URL+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := p.Client(t, tt.caller).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var problem struct{ Detail string }
			if resp.Header.Get("Content-Type") == "application/problem+json" {
				if err := json.Unmarshal(body, &problem); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff([]any{tt.wantStatus, tt.wantDetail}, []any{resp.StatusCode, problem.Detail}); diff != "" {
				t.Errorf("status, problem detail (-want +got):\n%s\nbody: %s", diff, body)
			}
		})
	}
	// Plain HTTP on the TLS port gets nothing but a refusal.
	if resp, err := http.Get("http://" + s.Addr + "/export/addresses"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: status %d, want the TLS server's 400", resp.StatusCode)
		}
	}
}
