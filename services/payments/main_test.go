package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"polyshop/shared/config"
	"polyshop/shared/testenv"
)

func TestRunRejectsMissingSettings(t *testing.T) {
	err := run(context.Background(), config.MapGetenv(nil), io.Discard)
	for _, name := range []string{"PAYMENTS_DATABASE_URL", "PAYMENTS_NATS_URL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("run with no settings: error %v does not name %s", err, name)
		}
	}
}

// The service reaches its own database and NATS with the stack's settings, answers /readyz,
// logs no secret, and shuts down cleanly.
func TestRunServesReadinessAndStops(t *testing.T) {
	s := testenv.StartService(t, run, "PAYMENTS_HTTP_ADDR", nil)
	if err := s.Stop(); err != nil {
		t.Fatalf("run after cancel: %v, want nil (graceful shutdown)", err)
	}
	s.CheckNoSecrets(t, "PAYMENTS_DB_PASSWORD", "PAYMENTS_NATS_PASSWORD")
}
