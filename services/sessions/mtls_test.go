package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/httpx"
	"polyshop/shared/testenv"
)

// With mutual TLS (SESSIONS_TLS_*), sessions serves HTTPS and presents its own certificate
// to users' credential check at an https:// USERS_URL. users is stood in for by a server
// behind the real mutual-TLS guard (httpx.WithMTLS) whose caller table names only the
// identity the case allows: sessions logs in when users allows "sessions", and is refused
// (a 503 to its caller, not a wrong password) when users allows someone else.
func TestRunPresentsItsCertificateToUsers(t *testing.T) {
	p := testenv.NewPKI(t)
	tests := []struct {
		name       string
		allowed    string
		wantStatus int
		wantCaller []string // the identities users' stand-in served
	}{
		{"users allows sessions", "sessions", http.StatusCreated, []string{"sessions"}},
		{"users allows only catalog", "catalog", http.StatusServiceUnavailable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				callers []string
			)
			mux := http.NewServeMux()
			mux.HandleFunc("POST /credentials/verify", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				callers = append(callers, httpx.CallerFrom(r))
				mu.Unlock()
				_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"userId": "00000000-0000-4000-8000-00000000abcd", "role": "customer"})
			})
			usersTLS, err := p.Files("users").ServerConfig()
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			go func() {
				done <- httpx.Listen(ctx, ln, mux, log, httpx.WithMTLS(usersTLS, httpx.Callers{"POST /credentials/verify": {tt.allowed}}))
			}()
			t.Cleanup(func() { cancel(); <-done })

			env := p.Env("sessions")
			env["USERS_URL"] = "https://" + ln.Addr().String()
			s := testenv.StartService(t, run, "SESSIONS_HTTP_ADDR", env)
			resp, err := p.Client(t, "gateway").Post(s.URL+"/sessions", "application/json",
				strings.NewReader(`{"email":"mtls-check@polyshop.invalid","password":"whatever-it-is"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff([]any{tt.wantStatus, tt.wantCaller}, []any{resp.StatusCode, callers}); diff != "" {
				t.Errorf("login status, callers users served (-want +got):\n%s\nbody: %s", diff, body)
			}
			if tt.wantStatus == http.StatusCreated {
				var out struct{ Token string }
				if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
					t.Errorf("no token in %s (%v)", body, err)
				}
			}
		})
	}
}
