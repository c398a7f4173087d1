package payments_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"polyshop/services/payments/internal/payments"
)

// benchParallelism × GOMAXPROCS goroutines charge at once, in both benchmarks.
const benchParallelism = 4

// BenchmarkChargeHandler charges distinct orders through Service.Charge: read the fault
// switches, lock (or first-insert) the order's row, write the payment, its reply and its
// event to the outbox, commit. Compare with BenchmarkRawInsert at the same concurrency.
func BenchmarkChargeHandler(b *testing.B) {
	ctx := context.Background()
	svc, _, _ := setup(b, payments.Options{})
	user := uuid.NewString()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			order := uuid.NewString()
			if _, err := svc.Charge(ctx, chargeCmd(b, order, user, 1, 1299)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "charges/s")
}

// BenchmarkRawInsert is the floor: one INSERT of a payments row per charge, autocommit, no
// lock, no fault read, no outbox.
func BenchmarkRawInsert(b *testing.B) {
	ctx := context.Background()
	_, pool, _ := setup(b, payments.Options{})
	user := uuid.NewString()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now()
			_, err := pool.Exec(ctx, `INSERT INTO payments (id, order_id, user_id, status, amount, currency,
				reason, replies, version, created_at, updated_at)
				VALUES ($1, $2, $3, 'charged', 1299, 'EUR', '', 1, 1, $4, $4)`,
				uuid.NewString(), uuid.NewString(), user, now)
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "charges/s")
}
