package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A fake operator API (the real one is tested in shared/admin against NATS and
// PostgreSQL); this checks the tool's requests, output and exit classes.
func TestRun(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/admin/dlq":
			_, _ = w.Write([]byte(`{"items":[{"seq":7,"subject":"users.registered.v1","consumer":"search-users","reason":"boom","deliveries":5,"deadLetteredAt":"2026-01-02T03:04:05Z"}]}`))
		case r.URL.Path == "/admin/dlq/7/replay":
			_, _ = w.Write([]byte(`{"replayed":{"seq":7}}`))
		case r.URL.Path == "/admin/dlq/8":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"status":404,"detail":"no dead letter with this seq"}`))
		case r.URL.Path == "/admin/outbox/parked/e1/rearm":
			w.WriteHeader(204)
		}
	}))
	defer srv.Close()
	t.Setenv("SEARCH_HTTP_ADDR", strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("POLYSHOP_TLS", "off") // the fake serves plain HTTP; the platform's setting must not leak in

	tests := []struct {
		args      []string
		wantReq   string
		wantOut   string
		wantErr   string
		wantUsage bool
	}{
		{[]string{"list", "search"}, "GET /admin/dlq?limit=1000&after=0", "search   7    2026-01-02T03:04:05Z  search-users", "", false},
		{[]string{"replay", "search", "7"}, "POST /admin/dlq/7/replay", `"replayed"`, "", false},
		{[]string{"drop", "search", "8"}, "DELETE /admin/dlq/8", "", "404 no dead letter with this seq", false},
		{[]string{"rearm", "search", "e1"}, "POST /admin/outbox/parked/e1/rearm", "re-armed e1 in search", "", false},
		{[]string{"show", "search"}, "", "", "show needs", true},
		{[]string{"list", "nosuch"}, "", "", "unknown service", true},
		{[]string{"frobnicate"}, "", "", "unknown command", true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got = nil
			var out bytes.Buffer
			err := run(tc.args, &out)
			if tc.wantReq != "" {
				if diff := cmp.Diff(got, []string{tc.wantReq}); diff != "" {
					t.Errorf("requests (-got +want):\n%s", diff)
				}
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q, want it to contain %q", out.String(), tc.wantOut)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			var u usageError
			if errors.As(err, &u) != tc.wantUsage {
				t.Errorf("usage error = %v, want %v", errors.As(err, &u), tc.wantUsage)
			}
		})
	}
}
