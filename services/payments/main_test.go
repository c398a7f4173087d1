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

// The service reads PAYMENTS_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "PAYMENTS_HTTP_ADDR", map[string]string{"PAYMENTS_MAX_INFLIGHT": "1"},
		"/payments", "/payments?limit=1")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	testenv.CheckRejectsBadBounds(t, run, "PAYMENTS_MAX_INFLIGHT")
}
