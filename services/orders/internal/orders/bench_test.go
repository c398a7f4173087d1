package orders_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/shared/events"
)

// BenchmarkPlaceAndConfirm is orders' own share of one successful order: the placement
// transaction and the three reply transitions (reserved, charged, committed), each with its
// row lock, steps and outbox rows. The participants' work and the broker are not included.
func BenchmarkPlaceAndConfirm(b *testing.B) {
	e := orderstest.New(b, orderstest.SlowTiming)
	user := e.Customer(b)
	p := e.Product(b, "Mug", 1250, "EUR")
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pl, err := e.Svc.Place(ctx, user, uuid.NewString(), []orders.Line{{ProductID: p, Quantity: 1}})
			if err != nil {
				b.Error(err)
				return
			}
			for _, typ := range []string{events.TypeReplyStockReserved, events.TypeReplyPaymentCharged, events.TypeReplyStockCommitted} {
				var data any = events.InventoryReply{OrderID: pl.ID, UserID: user, Attempt: 1}
				if typ == events.TypeReplyPaymentCharged {
					data = events.PaymentReply{OrderID: pl.ID, UserID: user, Attempt: 1, PaymentID: "p"}
				}
				env, err := events.New(ctx, typ, pl.ID, 1, data)
				if err == nil {
					err = e.Svc.HandleReply(ctx, orderstest.ReplyConsumer, env)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
}
