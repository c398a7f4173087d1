package httpx_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"polyshop/shared/httpx"
	"polyshop/shared/pki"
)

// mtlsServer serves a users-like API over mutual TLS with a caller table and returns its
// https:// base URL and the directory of the test CA and certificates.
func mtlsServer(t *testing.T, opts ...httpx.ServeOption) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	srvTLS, _, err := httpx.ServiceTLS(func(k string) string {
		return map[string]string{
			"USERS_TLS_CERT": filepath.Join(dir, "users.pem"),
			"USERS_TLS_KEY":  filepath.Join(dir, "users.key"),
			"USERS_TLS_CA":   filepath.Join(dir, "ca.pem"),
		}[k]
	}, "users")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	httpx.Health{}.Register(mux, nil)
	mux.HandleFunc("POST /credentials/verify", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"caller": httpx.CallerFrom(r)})
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"caller": httpx.CallerFrom(r)})
	})
	callers := httpx.Callers{
		"POST /credentials/verify": {"sessions"},
		"/":                        {"gateway"},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- httpx.Listen(ctx, ln, httpx.Standard("users", log, prometheus.NewRegistry(), mux), log, append(opts, httpx.WithMTLS(srvTLS, callers))...)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})
	return "https://" + ln.Addr().String(), dir
}

// clientAs returns a client presenting identity's certificate ("" for none) and trusting
// the test CA.
func clientAs(t *testing.T, dir, identity string) *http.Client {
	t.Helper()
	f := httpx.TLSFiles{Cert: filepath.Join(dir, "operator.pem"), Key: filepath.Join(dir, "operator.key"), CA: filepath.Join(dir, "ca.pem")}
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
	return httpx.NewClient(5*time.Second, httpx.WithClientTLS(cfg))
}

func TestMutualTLSAuthorizesCallersPerRoute(t *testing.T) {
	base, dir := mtlsServer(t)
	tests := []struct {
		name, caller, method, path string
		wantStatus                 int
		wantProblem                string // the problem's detail, "" for a success
	}{
		{"health without a certificate", "", "GET", "/healthz", 200, ""},
		{"readiness without a certificate", "", "GET", "/readyz", 200, ""},
		{"no certificate", "", "POST", "/credentials/verify", 401, "a client certificate signed by the Polyshop CA is required (mutual TLS)"},
		{"no certificate, other route", "", "GET", "/users/1", 401, "a client certificate signed by the Polyshop CA is required (mutual TLS)"},
		{"no certificate, unknown route", "", "GET", "/nothing", 401, "a client certificate signed by the Polyshop CA is required (mutual TLS)"},
		{"metrics need a certificate", "", "GET", "/metrics", 401, "a client certificate signed by the Polyshop CA is required (mutual TLS)"},
		{"the right caller", "sessions", "POST", "/credentials/verify", 200, ""},
		{"the wrong service", "catalog", "POST", "/credentials/verify", 403, "catalog may not call POST /credentials/verify"},
		{"the gateway is not sessions", "gateway", "POST", "/credentials/verify", 403, "gateway may not call POST /credentials/verify"},
		{"sessions only where listed", "sessions", "GET", "/users/1", 403, "sessions may not call GET /users/1"},
		{"the default route's caller", "gateway", "GET", "/users/1", 200, ""},
		{"operator everywhere", "operator", "POST", "/credentials/verify", 200, ""},
		{"operator, other route", "operator", "GET", "/users/1", 200, ""},
		{"allowed caller, unknown route", "gateway", "GET", "/nothing", 404, "no route for GET /nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := clientAs(t, dir, tt.caller).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var detail string
			if resp.StatusCode >= 400 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q, want application/problem+json", ct)
				}
				var p httpx.Problem
				if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
					t.Fatal(err)
				}
				detail = p.Detail
			}
			if diff := cmp.Diff([]any{tt.wantStatus, tt.wantProblem}, []any{resp.StatusCode, detail}); diff != "" {
				t.Errorf("status, problem (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMutualTLSRefusesForeignCertificatesAndPlainHTTP(t *testing.T) {
	base, dir := mtlsServer(t)
	// A certificate of another CA, named like a real caller: the handshake fails.
	other := t.TempDir()
	if _, err := pki.Ensure(other, "sessions"); err != nil {
		t.Fatal(err)
	}
	f := httpx.TLSFiles{Cert: filepath.Join(other, "sessions.pem"), Key: filepath.Join(other, "sessions.key"), CA: filepath.Join(dir, "ca.pem")}
	cfg, err := f.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpx.NewClient(5*time.Second, httpx.WithClientTLS(cfg)).Post(base+"/credentials/verify", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate of another CA got status %d; want the handshake refused", resp.StatusCode)
	}
	// Plain HTTP on the TLS port is not served.
	resp, err = http.Get("http" + strings.TrimPrefix(base, "https") + "/users/1")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP got %d; want refused (400 from the TLS server, or an error)", resp.StatusCode)
		}
	}
}

func TestTLSFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    httpx.TLSFiles
		wantErr bool
	}{
		{"none: plain HTTP", nil, httpx.TLSFiles{}, false},
		{"all three", map[string]string{"X_TLS_CERT": "c", "X_TLS_KEY": "k", "X_TLS_CA": "a"}, httpx.TLSFiles{Cert: "c", Key: "k", CA: "a"}, false},
		{"only some", map[string]string{"X_TLS_CERT": "c"}, httpx.TLSFiles{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpx.TLSFromEnv(func(k string) string { return tt.env[k] }, "X")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkMutualTLS: one request on a kept-alive connection, plain HTTP against mutual TLS,
// and with a new TLS connection (full handshake, both certificates verified) each time.
func BenchmarkMutualTLS(b *testing.B) {
	dir := b.TempDir()
	if _, err := pki.Ensure(dir, "users", "sessions"); err != nil {
		b.Fatal(err)
	}
	files := func(id string) httpx.TLSFiles {
		return httpx.TLSFiles{Cert: filepath.Join(dir, id+".pem"), Key: filepath.Join(dir, id+".key"), CA: filepath.Join(dir, "ca.pem")}
	}
	srvTLS, err := files("users").ServerConfig()
	if err != nil {
		b.Fatal(err)
	}
	cliTLS, err := files("sessions").ClientConfig()
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve := func(opts ...httpx.ServeOption) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- httpx.Listen(ctx, ln, mux, log, opts...) }()
		b.Cleanup(func() { cancel(); <-done })
		return ln.Addr().String()
	}
	plain := serve()
	secure := serve(httpx.WithMTLS(srvTLS, httpx.Callers{"/": {"sessions"}}))
	get := func(b *testing.B, c *http.Client, url string) {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("plain keep-alive", func(b *testing.B) {
		c := httpx.NewClient(5 * time.Second)
		for b.Loop() {
			get(b, c, "http://"+plain+"/x")
		}
	})
	b.Run("mtls keep-alive", func(b *testing.B) {
		c := httpx.NewClient(5*time.Second, httpx.WithClientTLS(cliTLS))
		for b.Loop() {
			get(b, c, "https://"+secure+"/x")
		}
	})
	b.Run("mtls new connection", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cliTLS, DisableKeepAlives: true}}
		for b.Loop() {
			get(b, c, "https://"+secure+"/x")
		}
	})
}
