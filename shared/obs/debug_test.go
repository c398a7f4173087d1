package obs

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStartDebug(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr string // "" = no error
		serving bool
	}{
		{name: "unset: disabled", addr: ""},
		{name: "loopback v4", addr: "127.0.0.1:0", serving: true},
		{name: "every interface refused", addr: "0.0.0.0:0", wantErr: "loopback"},
		{name: "empty host refused", addr: ":0", wantErr: "loopback"},
		{name: "host name refused", addr: "example.com:6060", wantErr: "loopback"},
		{name: "no port", addr: "127.0.0.1", wantErr: "missing port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got, err := StartDebug(ctx, tc.addr, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("StartDebug(%q) error = %v, want one containing %q", tc.addr, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("StartDebug(%q): %v", tc.addr, err)
			}
			if !tc.serving {
				if got != nil {
					t.Fatalf("StartDebug(%q) = %v, want nil (disabled)", tc.addr, got)
				}
				return
			}
			resp, err := http.Get("http://" + got.String() + "/debug/pprof/goroutine?debug=1")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
				t.Fatalf("GET goroutine profile = %d %.80q, want 200 with a goroutine profile", resp.StatusCode, body)
			}
		})
	}
}
