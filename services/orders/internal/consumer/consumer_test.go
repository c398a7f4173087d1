package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/orders/internal/consumer"
	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/shared/events"
)

func TestSpecsFilterExactSubjects(t *testing.T) {
	got := map[string][]string{}
	for _, s := range consumer.Specs("orders") {
		got[s.Stream+"/"+s.Durable] = s.Subjects
	}
	want := map[string][]string{
		"USERS/orders-users":     {"users.registered.v1", "users.address_changed.v1", "users.deleted.v1"},
		"CATALOG/orders-catalog": {"catalog.product_created.v1", "catalog.product_updated.v1", "catalog.product_deleted.v1"},
		"INVENTORY/orders-inventory": {"inventory.reply.reserved.v1", "inventory.reply.rejected.v1", "inventory.reply.released.v1",
			"inventory.reply.committed.v1", "inventory.reply.commit_failed.v1"},
		"PAYMENTS/orders-payments": {"payments.reply.charged.v1", "payments.reply.declined.v1", "payments.reply.failed.v1",
			"payments.reply.refunded.v1"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("specs (-got +want):\n%s", diff)
	}
}

// The handlers the broker calls route copies and replies to the service; a malformed
// payload is events.ErrInvalid (dead-lettered at once by the broker).
func TestHandlersRouteToTheService(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	specs := consumer.Specs("orders")
	users, catalog, inventory := consumer.Handler(e.Svc, specs[0]), consumer.Handler(e.Svc, specs[1]), consumer.Handler(e.Svc, specs[2])
	ctx := context.Background()
	call := func(h func(context.Context, events.Envelope) error, typ, subject string, seq int64, data any) error {
		env, err := events.New(ctx, typ, subject, seq, data)
		if err != nil {
			t.Fatal(err)
		}
		return h(ctx, env)
	}
	user, product := "01a2154a-0000-7000-8000-000000000001", "01a2154a-0000-7000-8000-000000000002"
	for _, err := range []error{
		call(users, events.TypeUserAddressChanged, user, 2, events.UserAddressChanged{UserID: user,
			Address: events.Address{Street: "1 Main St", City: "Lyon", PostalCode: "69001", Country: "FR"}, ChangedAt: time.Now()}),
		call(catalog, events.TypeProductCreated, product, 1, events.ProductCreated{ProductID: product, Name: "Mug",
			Price: events.Money{Amount: 100, Currency: "EUR"}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	order := e.Place(t, user, orders.Line{ProductID: product, Quantity: 1})
	if err := call(inventory, events.TypeReplyStockReserved, order, 1, events.InventoryReply{OrderID: order, UserID: user, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if s := e.State(t, order); s.State != "CHARGING" {
		t.Errorf("after reserved: %s, want CHARGING", s.State)
	}
	bad := call(inventory, events.TypeReplyStockReleased, order, 2, json.RawMessage(`{"orderId":"`+order+`","bogus":1}`))
	if !errors.Is(bad, events.ErrInvalid) {
		t.Errorf("malformed reply: %v, want events.ErrInvalid", bad)
	}
	if err := call(inventory, events.TypeReplyStockCommitted, "not-an-order", 3, events.InventoryReply{OrderID: "x"}); err != nil {
		t.Errorf("reply for an unknown order: %v, want it dropped (nil)", err)
	}
}
