package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"polyshop/services/catalog/internal/mongostore"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/mongotest"
)

// TestSecondInstanceCannotStartOnFerretDB starts the catalog on a database of its own,
// then a second instance on the same database: on FerretDB (single writer) the second one
// must refuse to start while the first holds the writer lease.
func TestSecondInstanceCannotStartOnFerretDB(t *testing.T) {
	db := mongotest.Database(t, "CATALOG_MONGODB_URI")
	ctx := context.Background()
	store, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !store.SingleWriter() {
		t.Skip("the server guards versions itself (MongoDB): several catalog instances may run")
	}
	env := map[string]string{"CATALOG_MONGODB_DATABASE": db.Name(), "CATALOG_LEASE_WAIT": "1s",
		"CATALOG_OUTBOX_SCAN_INTERVAL": "1h"}
	first := testenv.StartService(t, run, "CATALOG_HTTP_ADDR", env)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	getenv := func(k string) string {
		if k == "CATALOG_HTTP_ADDR" {
			return addr
		}
		if v, ok := env[k]; ok {
			return v
		}
		return testenv.Getenv(k)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var log bytes.Buffer
	err = run(rctx, getenv, &log)
	if !errors.Is(err, mongostore.ErrLeaseHeld) {
		t.Fatalf("second instance: run = %v, want ErrLeaseHeld\n%s", err, log.String())
	}
	if !strings.Contains(err.Error(), "single writer") {
		t.Errorf("error %q does not say why", err)
	}

	// Once the first instance stops, its lease is released and a new one starts at once.
	if err := first.Stop(); err != nil {
		t.Fatalf("first instance stop: %v", err)
	}
	second := testenv.StartService(t, run, "CATALOG_HTTP_ADDR", env)
	if err := second.Stop(); err != nil {
		t.Errorf("second instance stop: %v", err)
	}
}
