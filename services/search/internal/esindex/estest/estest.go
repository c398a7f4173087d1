// Package estest gives tests an Elasticsearch index of their own: an alias
// "products_<unique>" (inside the search user's privileges) with a concrete index behind it,
// both deleted when the test ends.
package estest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"polyshop/services/search/internal/esindex"
	"polyshop/shared/testenv"
)

// Config returns the connection settings of the search user with a unique alias.
func Config(t testing.TB) esindex.Config {
	t.Helper()
	url := testenv.Getenv("SEARCH_ELASTICSEARCH_URL")
	if url == "" {
		testenv.Require(t, "elasticsearch", fmt.Errorf("SEARCH_ELASTICSEARCH_URL is not set"))
	}
	user := testenv.Getenv("SEARCH_ELASTICSEARCH_USERNAME")
	if user == "" {
		user = "search"
	}
	return esindex.Config{URL: url, Username: user, Password: testenv.Getenv("SEARCH_ELASTICSEARCH_PASSWORD"),
		Alias: testenv.UniqueName(t, "products")}
}

// New returns an index behind a unique alias, created with Ensure; it is deleted when the
// test ends. An unreachable server skips the test (fails it under CI=true).
func New(t testing.TB) *esindex.Index {
	t.Helper()
	x, err := esindex.New(Config(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testenv.Require(t, "elasticsearch", x.Ping(ctx))
	if err := x.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := x.DeleteAll(context.Background()); err != nil {
			t.Errorf("delete test indices: %v", err)
		}
	})
	return x
}
