// Package mongotest gives each integration test its own database on the MongoDB-compatible
// server (FerretDB natively, MongoDB in compose).
package mongotest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/testenv"
)

// Database connects to the server at the URI in the setting uriVar (such as
// CATALOG_MONGODB_URI, read with testenv.Getenv) and returns a database named
// "t_<unique>", fresh for the test. The database is dropped and the client disconnected
// when the test ends. An unreachable server skips the test, or fails it under CI=true (see
// testenv.Require).
func Database(t testing.TB, uriVar string) *mongo.Database {
	t.Helper()
	uri := testenv.Getenv(uriVar)
	if uri == "" {
		testenv.Require(t, "ferretdb", fmt.Errorf("%s is not set", uriVar))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to %s: %v", uriVar, err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		testenv.Require(t, "ferretdb", err)
	}
	db := client.Database(testenv.UniqueName(t, "t"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("drop database %s: %v", db.Name(), err)
		}
		if err := client.Disconnect(ctx); err != nil {
			t.Errorf("disconnect: %v", err)
		}
	})
	return db
}
