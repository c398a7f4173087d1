package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
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

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The service starts with exactly the stack's settings (infra/local.env), becomes ready,
// logs no secret, and stops cleanly on cancel.
func TestRunStartsAndStops(t *testing.T) {
	cqltest.Store(t) // skips (or fails under CI) when Cassandra is down
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	getenv := func(k string) string {
		if k == "ACTIVITY_HTTP_ADDR" {
			return addr
		}
		return testenv.Getenv(k)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, getenv, &out) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	for _, secret := range []string{testenv.Getenv("ACTIVITY_CASSANDRA_PASSWORD"), testenv.Getenv("ACTIVITY_NATS_PASSWORD")} {
		if secret != "" && strings.Contains(out.String(), secret) {
			t.Errorf("a secret appears in the log")
		}
	}
}
