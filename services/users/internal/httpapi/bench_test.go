package httpapi_test

import (
	"context"
	"net/http"
	"polyshop/shared/testenv"
	"testing"
)

// BenchmarkGetUser compares reading a user by id through the users HTTP API (HTTP over
// loopback, JSON, pgx pool) with the bare pgx query the store runs, at the same
// concurrency, and with the HTTP no-op of the same server (GET /healthz).
// Run: go test -run '^$' -bench GetUser ./internal/httpapi
func BenchmarkGetUser(b *testing.B) {
	e := setup(b)
	r := e.do(b, "POST", "/users", signUpBody)
	id := decode[map[string]any](b, r.body)["id"].(string)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ctx := context.Background()

	b.Run("http", func(b *testing.B) {
		testenv.BenchHTTP(b, 200, func() (*http.Response, error) { return client.Get(e.srv.URL + "/users/" + id) })
	})
	// The HTTP no-op of the same server: GET /healthz through the same handler and
	// middleware chain, answered without any store, so "http" minus "noop" is the service.
	b.Run("noop", func(b *testing.B) {
		testenv.BenchHTTP(b, 200, func() (*http.Response, error) { return client.Get(e.srv.URL + "/healthz") })
	})
	b.Run("pgx", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			var email, name string
			for pb.Next() {
				if err := e.pool.QueryRow(ctx, `SELECT email, name FROM users WHERE id = $1 AND deleted_at IS NULL`, id).Scan(&email, &name); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
