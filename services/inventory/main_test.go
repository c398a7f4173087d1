package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/testenv"
)

func TestRunRejectsMissingSettings(t *testing.T) {
	err := run(context.Background(), config.MapGetenv(nil), io.Discard)
	for _, name := range []string{"INVENTORY_DATABASE_URL", "INVENTORY_NATS_URL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("run with no settings: error %v does not name %s", err, name)
		}
	}
}

// The service reaches its own database and NATS with the stack's settings, answers /readyz,
// logs no secret, and shuts down cleanly.
func TestRunServesReadinessAndStops(t *testing.T) {
	s := testenv.StartService(t, run, "INVENTORY_HTTP_ADDR", nil)
	if err := s.Stop(); err != nil {
		t.Fatalf("run after cancel: %v, want nil (graceful shutdown)", err)
	}
	s.CheckNoSecrets(t, "INVENTORY_DB_PASSWORD", "INVENTORY_NATS_PASSWORD")
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(config.MapGetenv(map[string]string{
		"INVENTORY_DATABASE_URL": "postgres://x", "INVENTORY_NATS_URL": "nats://x"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{HTTPAddr: "127.0.0.1:8084", DatabaseURL: "postgres://x", NATSURL: "nats://x",
		ReservationTTL: 15 * time.Minute, SweepInterval: 10 * time.Second, FaultsPoll: time.Second,
		CommandConcurrency: 16, Relays: 4, ShutdownTimeout: 10 * time.Second, LogLevel: slog.LevelInfo,
		Limits: httpx.Limits{MaxInflight: 32}}
	if diff := cmp.Diff(cfg, want); diff != "" {
		t.Errorf("defaults (-got +want):\n%s", diff)
	}
	for _, bad := range []map[string]string{
		{"INVENTORY_RESERVATION_TTL": "0s"}, {"INVENTORY_SWEEP_INTERVAL": "-1s"}, {"INVENTORY_COMMAND_CONCURRENCY": "0"},
	} {
		bad["INVENTORY_DATABASE_URL"], bad["INVENTORY_NATS_URL"] = "postgres://x", "nats://x"
		if _, err := loadConfig(config.MapGetenv(bad)); err == nil {
			t.Errorf("loadConfig(%v) accepted", bad)
		}
	}
}

// The service reads INVENTORY_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "INVENTORY_HTTP_ADDR", map[string]string{"INVENTORY_MAX_INFLIGHT": "1"},
		"/stock/held-product", "/stock/other-product")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	testenv.CheckRejectsBadBounds(t, run, "INVENTORY_MAX_INFLIGHT")
}
