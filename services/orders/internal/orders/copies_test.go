package orders_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/shared/events"
)

func address(street string) events.Address {
	return events.Address{Street: street, City: "Lyon", PostalCode: "69001", Country: "FR"}
}

func shipping(t *testing.T, e orderstest.Env, id string) *orders.Address {
	t.Helper()
	o, err := e.Svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o.ShippingAddress
}

// Copies apply each aggregate's newest event whatever the delivery order; placement reads
// them, and an order keeps the name and price it was placed with.
func TestLocalCopiesKeepTheNewestState(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	user := uuid.NewString()
	e.Apply(t, events.TypeUserAddressChanged, user, 3, events.UserAddressChanged{UserID: user, Address: address("3 New St")})
	e.Apply(t, events.TypeUserAddressChanged, user, 2, events.UserAddressChanged{UserID: user, Address: address("2 Old St")})
	e.Apply(t, events.TypeUserRegistered, user, 1, events.UserRegistered{UserID: user, Email: "a@example.com", Role: "customer"})
	p := e.Product(t, "Mug", 1250, "EUR")
	first := e.Place(t, user, orders.Line{ProductID: p, Quantity: 1})
	e.Apply(t, events.TypeProductUpdated, p, 3, events.ProductUpdated{ProductID: p, Name: "Big mug", Price: events.Money{Amount: 1500, Currency: "EUR"}})
	e.Apply(t, events.TypeProductUpdated, p, 2, events.ProductUpdated{ProductID: p, Name: "Stale mug", Price: events.Money{Amount: 1, Currency: "EUR"}})
	second := e.Place(t, user, orders.Line{ProductID: p, Quantity: 1})

	for id, want := range map[string]orders.Item{
		first:  {ProductID: p, Name: "Mug", Quantity: 1, UnitPrice: orders.Money{Amount: 1250, Currency: "EUR"}},
		second: {ProductID: p, Name: "Big mug", Quantity: 1, UnitPrice: orders.Money{Amount: 1500, Currency: "EUR"}},
	} {
		o, err := e.Svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(o.Items, []orders.Item{want}); diff != "" {
			t.Errorf("items (-got +want):\n%s", diff)
		}
		if o.ShippingAddress == nil || o.ShippingAddress.Street != "3 New St" {
			t.Errorf("shipping address %+v, want the newest (3 New St)", o.ShippingAddress)
		}
	}
	e.Apply(t, events.TypeProductDeleted, p, 4, events.ProductDeleted{ProductID: p})
	e.Apply(t, events.TypeProductUpdated, p, 3, events.ProductUpdated{ProductID: p, Name: "Big mug", Price: events.Money{Amount: 1500, Currency: "EUR"}})
	var inv orders.Invalid
	if _, err := e.Svc.Place(context.Background(), user, "k", []orders.Line{{ProductID: p, Quantity: 1}}); !errors.As(err, &inv) || inv[0].Field != "items[0].productId" {
		t.Errorf("placing a deleted product: %v, want 422 on items[0].productId", err)
	}
}

// users.deleted: the address copy goes; a terminal order loses its address at once; a
// pending order finishes its saga normally and loses its address when it ends; items and
// amounts stay.
func TestUserDeletedChoreography(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	user := e.Customer(t)
	p := e.Product(t, "Mug", 1250, "EUR")
	done := e.Place(t, user, orders.Line{ProductID: p, Quantity: 1})
	e.Reply(t, done, user, events.TypeReplyStockRejected, 1, events.RejectOutOfStock)
	pending := e.Place(t, user, orders.Line{ProductID: p, Quantity: 2})
	e.Reply(t, pending, user, events.TypeReplyStockReserved, 1, "")

	e.Apply(t, events.TypeUserDeleted, user, 3, events.UserDeleted{UserID: user, DeletedAt: time.Now()})
	e.Apply(t, events.TypeUserAddressChanged, user, 2, events.UserAddressChanged{UserID: user, Address: address("late")})

	if a := shipping(t, e, done); a != nil {
		t.Errorf("cancelled order keeps address %+v, want it erased", a)
	}
	if a := shipping(t, e, pending); a == nil {
		t.Errorf("pending order lost its address before it ended")
	}
	var inv orders.Invalid
	if _, err := e.Svc.Place(context.Background(), user, "after", []orders.Line{{ProductID: p, Quantity: 1}}); !errors.As(err, &inv) || inv[0].Field != "userId" {
		t.Errorf("placing for a deleted user: %v, want 422 on userId", err)
	}
	e.Reply(t, pending, user, events.TypeReplyPaymentCharged, 1, "")
	e.Reply(t, pending, user, events.TypeReplyStockCommitted, 1, "")
	o, err := e.Svc.Get(context.Background(), pending)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != orders.StatusConfirmed || o.ShippingAddress != nil || o.Total.Amount != 2500 || len(o.Items) != 1 {
		t.Errorf("after its saga: status %s address %+v total %v items %d; want CONFIRMED, erased, 2500, 1",
			o.Status, o.ShippingAddress, o.Total, len(o.Items))
	}
}

// The deletion and the saga's last transition race on the order row; whichever waits for
// the other, the address ends erased. The race is forced: the test holds the order row,
// queues both writers behind it in a chosen order, then lets go.
func TestDeletionRacingTheSagaEndStillErases(t *testing.T) {
	for _, sagaFirst := range []bool{true, false} {
		e := orderstest.New(t, orderstest.SlowTiming)
		ctx := context.Background()
		user := e.Customer(t)
		order := e.Place(t, user, orders.Line{ProductID: e.Product(t, "Mug", 1250, "EUR"), Quantity: 1})
		e.Reply(t, order, user, events.TypeReplyStockReserved, 1, "")
		e.Reply(t, order, user, events.TypeReplyPaymentCharged, 1, "")

		hold, err := e.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hold.Exec(ctx, `SELECT 1 FROM orders WHERE id = $1 FOR UPDATE`, order); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		saga := func() {
			env, _ := events.New(ctx, events.TypeReplyStockCommitted, order, 99,
				events.InventoryReply{OrderID: order, UserID: user, Attempt: 1, At: time.Now()})
			errs <- e.Svc.HandleReply(ctx, orderstest.ReplyConsumer, env)
		}
		deletion := func() {
			env, _ := events.New(ctx, events.TypeUserDeleted, user, 3, events.UserDeleted{UserID: user, DeletedAt: time.Now()})
			errs <- e.Svc.ApplyEvent(ctx, orderstest.CopyConsumer, env)
		}
		first, second := saga, deletion
		if !sagaFirst {
			first, second = deletion, saga
		}
		go first()
		waitForLockWaiters(t, e, 1)
		go second()
		waitForLockWaiters(t, e, 2)
		if err := hold.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if a := shipping(t, e, order); a != nil {
			t.Errorf("saga first %v: address %+v survived the deletion", sagaFirst, a)
		}
		if s := e.State(t, order); s.OrderStatus != "CONFIRMED" {
			t.Errorf("saga first %v: status %s, want CONFIRMED", sagaFirst, s.OrderStatus)
		}
	}
}

// waitForLockWaiters polls until n sessions of this schema's role wait on a row lock.
func waitForLockWaiters(t *testing.T, e orderstest.Env, n int) {
	t.Helper()
	for range 2000 {
		var got int
		err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%orders%'`).Scan(&got)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never saw %d sessions waiting for the order row", n)
}

// Two address changes of one user applied at once (concurrent consumer handlers) end with
// the newest, whichever reaches the user's sequence row first. The race is forced: the
// test holds the row, queues both writers behind it in a chosen order, then lets go.
func TestAddressChangesRacingKeepTheNewest(t *testing.T) {
	for _, newerFirst := range []bool{true, false} {
		e := orderstest.New(t, orderstest.SlowTiming)
		ctx := context.Background()
		user := uuid.NewString()
		e.Apply(t, events.TypeUserRegistered, user, 1, events.UserRegistered{UserID: user, Email: "a@example.com", Role: "customer"})

		hold, err := e.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hold.Exec(ctx, `SELECT 1 FROM aggregate_seq WHERE consumer = $1 AND aggregate = $2 FOR UPDATE`,
			orderstest.CopyConsumer, "users/"+user); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		change := func(seq int64, street string) func() {
			return func() {
				env, _ := events.New(ctx, events.TypeUserAddressChanged, user, seq, events.UserAddressChanged{UserID: user, Address: address(street)})
				errs <- e.Svc.ApplyEvent(ctx, orderstest.CopyConsumer, env)
			}
		}
		first, second := change(3, "3 New St"), change(2, "2 Old St")
		if !newerFirst {
			first, second = second, first
		}
		go first()
		waitForCopyWaiters(t, e, 1)
		go second()
		waitForCopyWaiters(t, e, 2)
		if err := hold.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var street string
		var seq int64
		if err := e.Pool.QueryRow(ctx, `SELECT c.street, s.seq FROM customers c, aggregate_seq s
			WHERE c.user_id = $1 AND s.consumer = $2 AND s.aggregate = $3`, user, orderstest.CopyConsumer, "users/"+user).Scan(&street, &seq); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]any{street, seq}, []any{"3 New St", int64(3)}); diff != "" {
			t.Errorf("newer first %v: (street, sequence) (-got +want):\n%s", newerFirst, diff)
		}
	}
}

// waitForCopyWaiters polls until n sessions wait on a lock while writing the address copy.
func waitForCopyWaiters(t *testing.T, e orderstest.Env, n int) {
	t.Helper()
	for range 2000 {
		var got int
		if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO customers%'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never saw %d address writers waiting", n)
}
