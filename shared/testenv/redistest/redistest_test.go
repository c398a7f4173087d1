package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"polyshop/shared/testenv/redistest"
)

func TestClient(t *testing.T) {
	ctx := context.Background()
	var prefix string
	var keys []string
	t.Run("isolated", func(t *testing.T) {
		rdb, p := redistest.Client(t, "SESSIONS_REDIS_URL")
		prefix = p
		if !strings.HasPrefix(prefix, "sessions:t:") || !strings.HasSuffix(prefix, ":") {
			t.Fatalf("prefix = %q, want sessions:t:<unique>:", prefix)
		}
		for i := range 1200 { // more than one SCAN page and one DEL batch
			keys = append(keys, fmt.Sprintf("%sk%d", prefix, i))
		}
		pipe := rdb.Pipeline()
		for _, k := range keys {
			pipe.Set(ctx, k, "v", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if prefix == "" {
		return // skipped: no Redis
	}
	rdb, _ := redistest.Client(t, "SESSIONS_REDIS_URL")
	n, err := rdb.Exists(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d keys under %s survived the test", n, prefix)
	}
}
