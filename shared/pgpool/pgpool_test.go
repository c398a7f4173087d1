package pgpool

import (
	"context"
	"testing"
)

func TestOpenSizesThePool(t *testing.T) {
	tests := []struct {
		url  string
		want int32
	}{
		{"postgres://u:p@127.0.0.1:1/db", DefaultMaxConns},
		{"postgres://u:p@127.0.0.1:1/db?pool_max_conns=3", 3},
	}
	for _, tc := range tests {
		// pgxpool connects lazily: no server is needed to see the configuration.
		pool, err := Open(context.Background(), tc.url)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.url, err)
		}
		if got := pool.Config().MaxConns; got != tc.want {
			t.Errorf("Open(%q) MaxConns = %d, want %d", tc.url, got, tc.want)
		}
		pool.Close()
	}
	if _, err := Open(context.Background(), "::not a url"); err == nil {
		t.Error("Open accepted a malformed URL")
	}
}
