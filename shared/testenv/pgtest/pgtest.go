// Package pgtest gives each integration test its own PostgreSQL schema in a service's
// database, using that service's own credentials.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/shared/testenv"
)

// Schema connects to the database at the URL in the setting urlVar (such as
// USERS_DATABASE_URL, read with testenv.Getenv), creates a fresh schema "t_<unique>" and
// returns a pool whose connections use it as search_path, together with the URL extended
// by search_path=<schema> for code that opens its own connections (migrations, the service
// under test). The schema is dropped with CASCADE and the pool closed when the test ends.
// An unreachable server skips the test, or fails it under CI=true (see testenv.Require).
func Schema(t testing.TB, urlVar string) (*pgxpool.Pool, string) {
	t.Helper()
	raw := testenv.Getenv(urlVar)
	if raw == "" {
		testenv.Require(t, "postgres", fmt.Errorf("%s is not set", urlVar))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	admin, err := pgx.Connect(ctx, raw)
	if err == nil {
		err = admin.Ping(ctx)
	}
	testenv.Require(t, "postgres", err)
	defer admin.Close(context.Background())

	schema := testenv.UniqueName(t, "t")
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { dropSchema(t, raw, schema) })

	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", urlVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	withSchema := u.String()

	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", urlVar, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to schema %s: %v", schema, err)
	}
	// Registered after dropSchema, so it runs first: DROP SCHEMA waits for no one.
	t.Cleanup(pool.Close)
	return pool, withSchema
}

func dropSchema(t testing.TB, rawURL, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}
