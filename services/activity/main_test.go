package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/activity/internal/cqlstore"
	"polyshop/services/activity/internal/cqlstore/cqltest"
	"polyshop/shared/config"
	"polyshop/shared/testenv"
)

func TestLoadConfig(t *testing.T) {
	got, err := loadConfig(config.MapGetenv(map[string]string{
		"ACTIVITY_CASSANDRA_PASSWORD": "pw",
		"ACTIVITY_CASSANDRA_HOSTS":    "10.0.0.1:9042, 10.0.0.2",
		"ACTIVITY_NATS_URL":           "nats://activity:x@127.0.0.1:4222",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := cqlstore.Config{
		Hosts: []string{"10.0.0.1:9042", "10.0.0.2"}, Username: "activity", Password: "pw", Keyspace: "activity",
		Consistency: "LOCAL_QUORUM", Timeout: 5 * time.Second, ConnectTimeout: 5 * time.Second,
	}
	if diff := cmp.Diff(got.Cassandra, want); diff != "" {
		t.Errorf("cassandra config (-got +want):\n%s", diff)
	}
	if got.HTTPAddr != "127.0.0.1:8087" || got.ConsumerConcurrency != 8 || got.RecentDays != 30 {
		t.Errorf("defaults: %+v", got)
	}

	_, err = loadConfig(config.MapGetenv(map[string]string{"ACTIVITY_CONSUMER_CONCURRENCY": "many"}))
	for _, want := range []string{"ACTIVITY_CASSANDRA_PASSWORD", "ACTIVITY_NATS_URL", "ACTIVITY_CONSUMER_CONCURRENCY"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadConfig error %v does not name %s", err, want)
		}
	}
}

// The service starts with exactly the stack's settings (infra/local.env), becomes ready,
// logs no secret, and stops cleanly on cancel.
func TestRunStartsAndStops(t *testing.T) {
	cqltest.Store(t) // skips (or fails under CI) when Cassandra is down
	s := testenv.StartService(t, run, "ACTIVITY_HTTP_ADDR", nil)
	if err := s.Stop(); err != nil {
		t.Errorf("run: %v", err)
	}
	s.CheckNoSecrets(t, "ACTIVITY_CASSANDRA_PASSWORD", "ACTIVITY_NATS_PASSWORD")
}

// The service reads ACTIVITY_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "ACTIVITY_HTTP_ADDR", map[string]string{"ACTIVITY_MAX_INFLIGHT": "1"},
		"/users/00000000-0000-0000-0000-000000000001/activity", "/users/00000000-0000-0000-0000-000000000002/activity")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	testenv.CheckRejectsBadBounds(t, run, "ACTIVITY_MAX_INFLIGHT")
}
