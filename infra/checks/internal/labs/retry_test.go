package labs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRetryTransport(t *testing.T) {
	tests := []struct {
		name       string
		shed       int    // answers 503 this many times first
		retryAfter string // on those answers
		wantStatus int
		wantCalls  int32
	}{
		{"shed twice, then served: the body is sent again", 2, "1", 200, 3},
		{"down (no Retry-After): answered at once", 1, "", 503, 1},
		{"long throttle: not waited for", 1, "60", 503, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var bodies []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(b))
				if calls.Add(1) <= int32(tt.shed) {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			hc := withRetry(srv.Client())
			resp, err := hc.Post(srv.URL, "application/json", strings.NewReader(`{"x":1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || calls.Load() != tt.wantCalls {
				t.Errorf("status %d after %d calls, want %d after %d", resp.StatusCode, calls.Load(), tt.wantStatus, tt.wantCalls)
			}
			want := make([]string, tt.wantCalls)
			for i := range want {
				want[i] = `{"x":1}`
			}
			if diff := cmp.Diff(want, bodies); diff != "" {
				t.Errorf("bodies received (-want +got):\n%s", diff)
			}
		})
	}
}
