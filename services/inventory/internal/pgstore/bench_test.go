package pgstore_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/testenv/pgtest"
)

// parallelism is b.SetParallelism's factor: goroutines = parallelism × GOMAXPROCS, for
// both benchmarks alike.
const parallelism = 4

// BenchmarkReserve compares reservations per second through the command handler (row lock
// on the order, stock rows locked, ledger, stored reply, outbox rows for the reply, the
// stock_reserved and stock_changed events, all in one transaction) with the bare
// conditional UPDATE that is the least any oversell-safe reservation costs. Both hit one
// hot product, so they measure the contended case.
func BenchmarkReserve(b *testing.B) {
	ctx := context.Background()
	pool, _ := pgtest.Schema(b, "INVENTORY_DATABASE_URL")
	if err := pgstore.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	b.Run("handler", func(b *testing.B) {
		svc := inventory.NewService(pgstore.New(pool), inventory.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		product := uuid.Must(uuid.NewV7()).String()
		ev, err := events.New(ctx, events.TypeProductCreated, product, 1, events.ProductCreated{ProductID: product, InitialStock: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.ApplyCatalog(ctx, ev); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				err := svc.Reserve(ctx, events.ReserveStock{OrderID: uuid.Must(uuid.NewV7()).String(), UserID: "bench", Attempt: 1,
					Items: []events.StockItem{{ProductID: product, Quantity: 1}}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
	})
	b.Run("raw_update", func(b *testing.B) {
		// A bare table: the service's stock table would (rightly) refuse an UPDATE that
		// breaks its ledger CHECK.
		if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS raw_stock (product_id text PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0));
			INSERT INTO raw_stock VALUES ('p', 1099511627776) ON CONFLICT (product_id) DO UPDATE SET available = 1099511627776`); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tag, err := pool.Exec(ctx, `UPDATE raw_stock SET available = available - $2 WHERE product_id = $1 AND available >= $2`, "p", int64(1))
				if err != nil || tag.RowsAffected() != 1 {
					b.Errorf("update: %v, %d rows", err, tag.RowsAffected())
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
	})
}
