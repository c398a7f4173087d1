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
	for _, name := range []string{"ORDERS_DATABASE_URL", "ORDERS_NATS_URL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("run with no settings: error %v does not name %s", err, name)
		}
	}
}

// The service reaches its own database and NATS with the stack's settings, answers /readyz,
// logs no secret, and shuts down cleanly.
func TestRunServesReadinessAndStops(t *testing.T) {
	s := testenv.StartService(t, run, "ORDERS_HTTP_ADDR", nil)
	if err := s.Stop(); err != nil {
		t.Fatalf("run after cancel: %v, want nil (graceful shutdown)", err)
	}
	s.CheckNoSecrets(t, "ORDERS_DB_PASSWORD", "ORDERS_NATS_PASSWORD")
}

// The service reads ORDERS_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "ORDERS_HTTP_ADDR", map[string]string{"ORDERS_MAX_INFLIGHT": "1"},
		"/orders/00000000-0000-0000-0000-000000000001", "/orders/00000000-0000-0000-0000-000000000002")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	testenv.CheckRejectsBadBounds(t, run, "ORDERS_MAX_INFLIGHT")
}
