package pgstore_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/users/internal/pgstore"
	"polyshop/shared/admin/pgstats"
)

func TestStatsQueries(t *testing.T) {
	ctx := context.Background()
	store, pool := newStore(t)
	count := pgstats.Count(pool, pgstore.StatsQueries)
	got, err := count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]int64{"accounts": 0, "deleted accounts": 0}); diff != "" {
		t.Errorf("empty (-got +want):\n%s", diff)
	}
	for _, email := range []string{"a@example.com", "b@example.com"} {
		u, ev := newUser(t, email)
		if err := store.Create(ctx, u, ev); err != nil {
			t.Fatal(err)
		}
	}
	if got, err = count(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]int64{"accounts": 2, "deleted accounts": 0}); diff != "" {
		t.Errorf("after two sign-ups (-got +want):\n%s", diff)
	}
}
