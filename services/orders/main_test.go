package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"polyshop/shared/config"
	"polyshop/shared/testenv"
)

func TestRunRejectsMissingSettings(t *testing.T) {
	err := run(context.Background(), config.MapGetenv(nil), io.Discard)
	if err == nil {
		t.Fatal("run with no settings: got nil error, want a config error")
	}
	for _, name := range []string{"ORDERS_DATABASE_URL", "ORDERS_NATS_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// TestRunServesReadinessAndStops starts the service against the real PostgreSQL and NATS
// with its own credentials, waits for /readyz, then cancels and expects a clean shutdown.
func TestRunServesReadinessAndStops(t *testing.T) {
	addr := freeAddr(t)
	env := map[string]string{
		"ORDERS_HTTP_ADDR":    addr,
		"ORDERS_DATABASE_URL": testenv.Getenv("ORDERS_DATABASE_URL"),
		"ORDERS_NATS_URL":     testenv.Getenv("ORDERS_NATS_URL"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, config.MapGetenv(env), io.Discard) }()

	var status int
	for i := 0; i < 100 && status != http.StatusOK; i++ {
		select {
		case err := <-done:
			testenv.Require(t, "postgres and nats", err)
			t.Fatalf("run returned early: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
	}
	if status != http.StatusOK {
		t.Fatalf("/readyz status = %d, want 200", status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v, want nil (graceful shutdown)", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
