package pgstore_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/payments/internal/pgstore"
	"polyshop/shared/admin/pgstats"
	"polyshop/shared/testenv/pgtest"
)

func TestStatsQueries(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.Schema(t, "PAYMENTS_DATABASE_URL")
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	count := pgstats.Count(pool, pgstore.StatsQueries)
	got, err := count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]int64{"payments": 0, "tombstones": 0}); diff != "" {
		t.Errorf("empty (-got +want):\n%s", diff)
	}
	for _, status := range []string{"charged", "declined", "tombstone"} {
		if _, err := pool.Exec(ctx, `INSERT INTO payments (id, order_id, user_id, status, amount, currency, replies, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 0, '', 1, 1, now(), now())`, uuid.New(), uuid.New(), uuid.New(), status); err != nil {
			t.Fatal(err)
		}
	}
	if got, err = count(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]int64{"payments": 2, "tombstones": 1}); diff != "" {
		t.Errorf("after two payments and a tombstone (-got +want):\n%s", diff)
	}
}
