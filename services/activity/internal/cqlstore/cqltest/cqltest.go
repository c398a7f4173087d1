// Package cqltest gives integration tests a migrated activity store on the real Cassandra of
// the local stack (settings ACTIVITY_CASSANDRA_* from the environment or infra/local.env).
//
// The service's role can use only its own keyspace and cannot create keyspaces, so tests
// share the keyspace and isolate themselves with unique ids (users, events, days) instead
// of a keyspace per test. (shared/testenv has no Cassandra helper; this is the local one.)
package cqltest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"polyshop/services/activity/internal/cqlstore"
	"polyshop/services/activity/migrations"
	"polyshop/shared/testenv"
)

// Config returns the store settings of the local stack.
func Config() cqlstore.Config {
	get := func(k, def string) string {
		if v := testenv.Getenv(k); v != "" {
			return v
		}
		return def
	}
	return cqlstore.Config{
		Hosts:          strings.Split(get("ACTIVITY_CASSANDRA_HOSTS", "127.0.0.1:9042"), ","),
		Username:       get("ACTIVITY_CASSANDRA_USERNAME", "activity"),
		Password:       get("ACTIVITY_CASSANDRA_PASSWORD", ""),
		Keyspace:       get("ACTIVITY_CASSANDRA_KEYSPACE", "activity"),
		Consistency:    "LOCAL_QUORUM",
		Timeout:        10 * time.Second,
		ConnectTimeout: 5 * time.Second,
	}
}

// Store opens a store on the local keyspace, applies the migrations and closes it when the
// test ends. An unreachable Cassandra skips the test, or fails it under CI=true.
func Store(t testing.TB) *cqlstore.Store {
	t.Helper()
	cfg := Config()
	if cfg.Password == "" {
		testenv.Require(t, "cassandra", fmt.Errorf("ACTIVITY_CASSANDRA_PASSWORD is not set"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := Logger()
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	st, err := cqlstore.Open(octx, cfg, log)
	if err == nil {
		if err = st.Ping(ctx); err != nil {
			st.Close()
		}
	}
	testenv.Require(t, "cassandra", err)
	t.Cleanup(st.Close)
	if err := cqlstore.Migrate(ctx, st.Session(), migrations.FS, log); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// Logger discards everything; tests assert behaviour, not log lines.
func Logger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
