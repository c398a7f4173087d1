package pgstore_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/admin/pgstats"
	"polyshop/shared/events"
	"polyshop/shared/testenv/pgtest"
)

func TestStatsQueries(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.Schema(t, "INVENTORY_DATABASE_URL")
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	count := pgstats.Count(pool, pgstore.StatsQueries)
	want := map[string]int64{"products": 0, "reservations": 0, "active reservations": 0}
	got, err := count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("empty (-got +want):\n%s", diff)
	}
	svc := inventory.NewService(pgstore.New(pool), inventory.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for range 2 {
		product := uuid.Must(uuid.NewV7()).String()
		ev, err := events.New(ctx, events.TypeProductCreated, product, 1, events.ProductCreated{ProductID: product, InitialStock: 5})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.ApplyCatalog(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	want["products"] = 2
	if got, err = count(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("after two products (-got +want):\n%s", diff)
	}
}
