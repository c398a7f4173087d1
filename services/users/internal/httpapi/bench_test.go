package httpapi_test

import (
	"context"
	"io"
	"net/http"
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
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(e.srv.URL + "/users/" + id)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	})
	// The HTTP no-op of the same server: GET /healthz through the same handler and
	// middleware chain, answered without any store, so "http" minus "noop" is the service.
	b.Run("noop", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(e.srv.URL + "/healthz")
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
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
