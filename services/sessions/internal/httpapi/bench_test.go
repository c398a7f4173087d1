package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"polyshop/services/sessions/internal/sessions"
	"polyshop/shared/testenv"
)

// BenchmarkValidate compares token validation through the sessions HTTP API (JSON, HTTP
// over loopback, HGETALL+PEXPIRE in MULTI, PEXPIRE of the user set) with the bare Redis
// reads at the same concurrency: a plain GET of a key, and the HGETALL the service does.
// The HTTP no-op of the same server (GET /healthz) shows what any route costs there.
// Run: go test -run '^$' -bench Validate ./internal/httpapi
func BenchmarkValidate(b *testing.B) {
	user := uuid.NewString()
	e := setup(b, map[string]string{"ann@example.com": user}, sessions.DefaultConfig)
	ctx := context.Background()
	_, token, err := e.svc.Login(ctx, "ann@example.com", password, "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	prefix := e.store.OutboxStream()[:len(e.store.OutboxStream())-len("outbox")]
	sessionKey := prefix + "s:" + sessions.HashToken(token)
	plainKey := prefix + "bench:plain"
	if err := e.rdb.Set(ctx, plainKey, user, 0).Err(); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"token":"` + token + `"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	b.Run("http", func(b *testing.B) {
		testenv.BenchHTTP(b, 200, func() (*http.Response, error) {
			return client.Post(e.srv.URL+"/sessions/validate", "application/json", bytes.NewReader(body))
		})
	})
	// The HTTP no-op of the same server: GET /healthz through the same handler and
	// middleware chain, answered without any store, so "http" minus "noop" is the service.
	b.Run("noop", func(b *testing.B) {
		testenv.BenchHTTP(b, 200, func() (*http.Response, error) { return client.Get(e.srv.URL + "/healthz") })
	})
	b.Run("redis-get", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := e.rdb.Get(ctx, plainKey).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("redis-hgetall", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := e.rdb.HGetAll(ctx, sessionKey).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
