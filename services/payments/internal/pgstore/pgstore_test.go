package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/payments/internal/payments"
	"polyshop/services/payments/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/testenv/pgtest"
)

func setup(t *testing.T) *pgstore.Store {
	t.Helper()
	pool, _ := pgtest.Schema(t, "PAYMENTS_DATABASE_URL")
	ctx := context.Background()
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// Migrating twice (a second instance, a restart) applies nothing again.
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pgstore.New(pool)
}

// A failing UpdateFunc leaves nothing: no row, no outbox row.
func TestUpdateRollsBackOnError(t *testing.T) {
	st := setup(t)
	ctx := context.Background()
	order := uuid.NewString()
	boom := errors.New("boom")
	err := st.Update(ctx, order, func(cur *payments.Payment) (*payments.Payment, []events.Envelope, error) {
		return nil, nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	ps, err := st.ByOrder(ctx, order)
	if err != nil || len(ps) != 0 {
		t.Errorf("ByOrder = %+v, %v; want none", ps, err)
	}
}

// A stored payment reads back as written, with the refund's amount in the payment's currency.
func TestPaymentRoundTrip(t *testing.T) {
	st := setup(t)
	ctx := context.Background()
	order, user, id := uuid.NewString(), uuid.NewString(), uuid.NewString()
	p, err := st.ByOrder(ctx, order)
	if err != nil || len(p) != 0 {
		t.Fatalf("ByOrder before = %+v, %v", p, err)
	}
	charge := func(cur *payments.Payment) (*payments.Payment, []events.Envelope, error) {
		if cur != nil {
			t.Errorf("cur = %+v on the first update, want nil", cur)
		}
		return &payments.Payment{ID: id, OrderID: order, UserID: user, Status: payments.StatusCharged,
			Amount: events.Money{Amount: 700, Currency: "EUR"}, Replies: 1, Version: 1}, nil, nil
	}
	if err := st.Update(ctx, order, charge); err != nil {
		t.Fatal(err)
	}
	refund := func(cur *payments.Payment) (*payments.Payment, []events.Envelope, error) {
		next := *cur
		next.Status, next.Refunded, next.Reason, next.Replies, next.Version = payments.StatusRefunded, &cur.Amount, "timeout", 2, 2
		return &next, nil, nil
	}
	if err := st.Update(ctx, order, refund); err != nil {
		t.Fatal(err)
	}
	got, err := st.ByOrder(ctx, order)
	if err != nil || len(got) != 1 {
		t.Fatalf("ByOrder = %+v, %v", got, err)
	}
	g := got[0]
	g.CreatedAt, g.UpdatedAt = g.CreatedAt.UTC().Truncate(0), g.UpdatedAt.UTC().Truncate(0)
	want := payments.Payment{ID: id, OrderID: order, UserID: user, Status: payments.StatusRefunded,
		Amount: events.Money{Amount: 700, Currency: "EUR"}, Refunded: &events.Money{Amount: 700, Currency: "EUR"},
		Reason: "timeout", Replies: 2, Version: 2, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
	if diff := cmp.Diff(g, want); diff != "" {
		t.Errorf("payment (-got +want):\n%s", diff)
	}
}

// The database refuses a refund larger than the charge, whatever the Go code does.
func TestRefundNeverExceedsTheCharge(t *testing.T) {
	st := setup(t)
	ctx := context.Background()
	order := uuid.NewString()
	if err := st.Update(ctx, order, func(*payments.Payment) (*payments.Payment, []events.Envelope, error) {
		return &payments.Payment{ID: uuid.NewString(), OrderID: order, UserID: uuid.NewString(), Status: payments.StatusCharged,
			Amount: events.Money{Amount: 100, Currency: "EUR"}, Replies: 1, Version: 1}, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	err := st.Update(ctx, order, func(cur *payments.Payment) (*payments.Payment, []events.Envelope, error) {
		next := *cur
		next.Status, next.Refunded = payments.StatusRefunded, &events.Money{Amount: 101, Currency: "EUR"}
		return &next, nil, nil
	})
	if err == nil {
		t.Error("a refund of 101 on a charge of 100 was stored")
	}
}
