package checks

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/infra/checks/internal/gwclient"
	"polyshop/shared/httpx"
	"polyshop/shared/pki"
	"polyshop/shared/testenv"
)

// The running native platform with mutual TLS (POLYSHOP_TLS=on, the default): every internal
// service answers its health checks to anyone, refuses callers without a certificate (401)
// and callers its caller table does not name for the route (403), and lets the right caller
// and the operator through. Each service's identity is its certificate in .polyshop/tls.
func TestRunningServicesAuthorizeCallersByCertificate(t *testing.T) {
	if !gwclient.TLSOn(testenv.Getenv) {
		t.Skip("POLYSHOP_TLS is not on: the platform serves plain HTTP")
	}
	dir := gwclient.TLSDir(testenv.Getenv)
	as := func(identity string) *http.Client {
		f := httpx.TLSFiles{Cert: filepath.Join(dir, pki.Operator+".pem"), Key: filepath.Join(dir, pki.Operator+".key"), CA: filepath.Join(dir, "ca.pem")}
		if identity != "" {
			f.Cert, f.Key = filepath.Join(dir, identity+".pem"), filepath.Join(dir, identity+".key")
		}
		cfg, err := f.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		if identity == "" {
			cfg.Certificates = nil
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	url := func(svc string) string {
		return gwclient.InternalURL(testenv.Getenv, svc, map[string]string{"users": "127.0.0.1:8081", "sessions": "127.0.0.1:8082",
			"catalog": "127.0.0.1:8083", "inventory": "127.0.0.1:8084", "orders": "127.0.0.1:8085", "payments": "127.0.0.1:8086",
			"activity": "127.0.0.1:8087", "search": "127.0.0.1:8088"}[svc])
	}
	const noCert = "a client certificate signed by the Polyshop CA is required (mutual TLS)"
	wrongCreds := `{"email":"nobody-mtls-check@polyshop.invalid","password":"not-the-password"}`
	type call struct {
		name, caller, svc, method, path, body string
		wantStatus                            int
		wantDetail                            string // "*": any; "" when the answer is not a problem
	}
	var tests []call
	for _, svc := range []string{"users", "sessions", "catalog", "inventory", "orders", "payments", "activity", "search"} {
		tests = append(tests,
			call{svc + " health, no certificate", "", svc, "GET", "/healthz", "", 200, ""},
			call{svc + " readiness, no certificate", "", svc, "GET", "/readyz", "", 200, ""},
			call{svc + " metrics, no certificate", "", svc, "GET", "/metrics", "", 401, noCert},
			// Past the guard, an unknown route is the service's own 404 (cheap and
			// deterministic, unlike /metrics, whose collectors query the store).
			call{svc + " past the guard, operator", "operator", svc, "GET", "/no-such-route", "", 404, "no route for GET /no-such-route"},
			call{svc + " past the guard, the gateway", "gateway", svc, "GET", "/no-such-route", "", 404, "no route for GET /no-such-route"},
			call{svc + " unknown route, no certificate", "", svc, "GET", "/no-such-route", "", 401, noCert},
		)
	}
	tests = append(tests,
		call{"credential check, no certificate", "", "users", "POST", "/credentials/verify", wrongCreds, 401, noCert},
		call{"credential check by catalog", "catalog", "users", "POST", "/credentials/verify", wrongCreds, 403, "catalog may not call POST /credentials/verify"},
		call{"credential check by the gateway", "gateway", "users", "POST", "/credentials/verify", wrongCreds, 403, "gateway may not call POST /credentials/verify"},
		// sessions gets through to users' own answer: unknown email → 401 with users' detail.
		call{"credential check by sessions", "sessions", "users", "POST", "/credentials/verify", wrongCreds, 401, "*"},
		call{"address export by orders", "orders", "users", "GET", "/export/addresses?limit=1", "", 200, ""},
		call{"address export by search", "search", "users", "GET", "/export/addresses?limit=1", "", 403, "search may not call GET /export/addresses"},
		call{"product export by search", "search", "catalog", "GET", "/export/products?limit=1", "", 200, ""},
		call{"product export by orders", "orders", "catalog", "GET", "/export/products?limit=1", "", 200, ""},
		call{"product export by users", "users", "catalog", "GET", "/export/products?limit=1", "", 403, "users may not call GET /export/products"},
		call{"stock export by search", "search", "inventory", "GET", "/export/stock?limit=1", "", 200, ""},
		call{"stock export by orders", "orders", "inventory", "GET", "/export/stock?limit=1", "", 403, "orders may not call GET /export/stock"},
		call{"search rebuild by the gateway", "gateway", "search", "POST", "/admin/rebuild", "", 403, "gateway may not call POST /admin/rebuild"},
		call{"orders' copy rebuild by the gateway", "gateway", "orders", "POST", "/admin/rebuild-copies", "", 403, "gateway may not call POST /admin/rebuild-copies"},
		call{"sagas by the operator", "operator", "orders", "GET", "/sagas", "", 200, ""},
		call{"sagas by payments", "payments", "orders", "GET", "/sagas", "", 403, "payments may not call GET /sagas"},
		call{"dead letters by the gateway", "gateway", "activity", "GET", "/admin/dlq?limit=1", "", 200, ""},
		call{"dead letters by search", "search", "activity", "GET", "/admin/dlq?limit=1", "", 403, "search may not call GET /admin/dlq"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, url(tt.svc)+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := as(tt.caller).Do(req)
			testenv.Require(t, tt.svc, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var problem struct{ Detail string }
			if resp.Header.Get("Content-Type") == "application/problem+json" {
				_ = json.Unmarshal(b, &problem)
			}
			got := []any{resp.StatusCode, problem.Detail}
			want := []any{tt.wantStatus, tt.wantDetail}
			if tt.wantDetail == "*" {
				want[1] = problem.Detail
				if problem.Detail == noCert || strings.Contains(problem.Detail, "may not call") {
					want[1] = "users' own answer, not a refused caller"
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status, problem detail (-want +got):\n%s\nbody: %.300s", diff, b)
			}
		})
	}

	t.Run("plain HTTP is not served", func(t *testing.T) {
		resp, err := http.Get("http://" + strings.TrimPrefix(url("users"), "https://") + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to users: %d, want the TLS server's 400", resp.StatusCode)
			}
		}
	})
	t.Run("a certificate of another CA is refused at the handshake", func(t *testing.T) {
		other := t.TempDir()
		if _, err := pki.Ensure(other, "sessions"); err != nil {
			t.Fatal(err)
		}
		pair, err := tls.LoadX509KeyPair(filepath.Join(other, "sessions.pem"), filepath.Join(other, "sessions.key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := httpx.TLSFiles{Cert: filepath.Join(dir, "operator.pem"), Key: filepath.Join(dir, "operator.key"), CA: filepath.Join(dir, "ca.pem")}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Post(url("users")+"/credentials/verify", "application/json", strings.NewReader(wrongCreds))
		if err == nil {
			resp.Body.Close()
			t.Errorf("a forged sessions certificate got %d; want the handshake refused", resp.StatusCode)
		}
	})
	t.Run("the gateway's public port stays plain HTTP", func(t *testing.T) {
		resp, err := http.Get("http://" + testenv.Getenv("GATEWAY_HTTP_ADDR") + "/healthz")
		testenv.Require(t, "gateway", err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("gateway /healthz over plain HTTP: %d", resp.StatusCode)
		}
	})
}
