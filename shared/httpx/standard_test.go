package httpx

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestStandardAnswersUnmatchedRoutesWithProblems(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	h := Standard("test", slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), mux)

	tests := []struct {
		method, path string
		status       int
		contentType  string
		allow        string
		detail       string
	}{
		{"GET", "/things/7", 200, "application/json", "", ""},
		{"GET", "/nothing", 404, ContentTypeProblem, "", "no route for GET /nothing"},
		{"DELETE", "/things/7", 405, ContentTypeProblem, "GET, HEAD", "DELETE is not allowed on /things/7"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if rec.Header().Get(HeaderRequestID) == "" {
				t.Error("no request id: the standard middleware did not run")
			}
			if tc.detail == "" {
				return
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body is not a problem: %v: %s", err, rec.Body)
			}
			if diff := cmp.Diff(p.Detail, tc.detail); diff != "" {
				t.Errorf("detail (-got +want):\n%s", diff)
			}
		})
	}
}
