// Package redistest gives each integration test its own key prefix in a service's Redis,
// using that service's own credentials.
package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"polyshop/shared/testenv"
)

// Client connects to the Redis at the URL in the setting urlVar (such as SESSIONS_REDIS_URL,
// read with testenv.Getenv) and returns the client and a key prefix unique to the test,
// "<user>:t:<unique>:" (for example "sessions:t:k3v9q0x2m1ab:"), because each service's ACL
// user may only touch keys under its own name; with no user in the URL the prefix is
// "t:<unique>:". When the test ends, every key under the prefix is deleted (SCAN and DEL,
// since ACLs forbid KEYS) and the client closed. An unreachable server skips the test, or
// fails it under CI=true (see testenv.Require).
func Client(t testing.TB, urlVar string) (*redis.Client, string) {
	t.Helper()
	raw := testenv.Getenv(urlVar)
	if raw == "" {
		testenv.Require(t, "redis", fmt.Errorf("%s is not set", urlVar))
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", urlVar, err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		testenv.Require(t, "redis", err)
	}
	prefix := testenv.UniqueName(t, "t") + ":"
	prefix = prefix[:1] + ":" + prefix[2:] // "t_xxx:" → "t:xxx:"
	if opts.Username != "" && opts.Username != "default" {
		prefix = opts.Username + ":" + prefix
	}
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := DeletePrefix(ctx, rdb, prefix); err != nil {
			t.Errorf("delete test keys %s*: %v", prefix, err)
		}
	})
	return rdb, prefix
}

// DeletePrefix deletes every key that starts with prefix, walking the keyspace with SCAN so
// the server is never blocked and KEYS is not needed.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Del(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}

// escapeGlob escapes the characters SCAN MATCH treats as a pattern.
func escapeGlob(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
