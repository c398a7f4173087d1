package pginbox_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/inbox/pginbox"
	"polyshop/shared/testenv/pgtest"
)

func event(t *testing.T, agg string, seq int64) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), "polyshop.users.test_inbox.v1", agg, seq, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestClaimAndAdvance(t *testing.T) {
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	ctx := context.Background()
	if err := pginbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pginbox.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate twice: %v", err)
	}
	a1, a2, a3, b1 := event(t, "a", 1), event(t, "a", 2), event(t, "a", 3), event(t, "b", 1)

	// step runs Claim and Advance for e in one transaction and commits or rolls back.
	step := func(consumer string, e events.Envelope, commit bool) [2]bool {
		t.Helper()
		var got [2]bool
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if got[0], err = pginbox.Claim(ctx, tx, consumer, e); err != nil {
			t.Fatal(err)
		}
		if got[1], err = pginbox.Advance(ctx, tx, consumer, e); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	tests := []struct {
		name     string
		consumer string
		e        events.Envelope
		commit   bool
		want     [2]bool // first, apply
	}{
		{"first event", "c1", a1, true, [2]bool{true, true}},
		{"duplicate", "c1", a1, true, [2]bool{false, false}},
		{"newer, rolled back", "c1", a3, false, [2]bool{true, true}},
		{"newer again after rollback", "c1", a3, true, [2]bool{true, true}},
		{"stale (arrives late)", "c1", a2, true, [2]bool{true, false}},
		{"other aggregate", "c1", b1, true, [2]bool{true, true}},
		{"other consumer", "c2", a1, true, [2]bool{true, true}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(step(tc.consumer, tc.e, tc.commit), tc.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", tc.name, diff)
		}
	}
	var seq int64
	if err := pool.QueryRow(ctx, `SELECT seq FROM aggregate_seq WHERE consumer = 'c1' AND aggregate = $1`,
		pginbox.AggregateKey(a1)).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq != 3 {
		t.Errorf("stored seq = %d, want 3", seq)
	}
}

// One catalog change can emit product_updated and product_price_changed with the same
// sequence (the product's version after the change): sequence orders an aggregate's
// changes, not its events. A consumer of both types that kept one last-applied sequence
// per aggregate would drop the second event of every such change; it must keep one per
// (aggregate, type), as Advance does when each type gets its own consumer name. Each
// consumer below sees: the change at version 2 (both types), a stale copy of version 1's
// update, and a redelivery of version 2's price change.
func TestAdvanceWithEventsSharingASequence(t *testing.T) {
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	ctx := context.Background()
	if err := pginbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	mk := func(typ string, seq int64) events.Envelope {
		e, err := events.New(ctx, typ, "p1", seq, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	upd1, upd2, price2 := mk(events.TypeProductUpdated, 1), mk(events.TypeProductUpdated, 2), mk(events.TypeProductPriceChanged, 2)
	both := []events.Envelope{upd2, price2, upd1, price2}

	tests := []struct {
		name       string
		deliveries []events.Envelope
		key        func(e events.Envelope) string // the consumer name Advance is given
		want       []bool
	}{
		{"only price_changed", []events.Envelope{price2, price2}, func(events.Envelope) string { return "prices" }, []bool{true, false}},
		{"only product_updated", []events.Envelope{upd2, upd1}, func(events.Envelope) string { return "products" }, []bool{true, false}},
		// Wrong: one sequence per aggregate for both types loses the price change.
		{"both types, one key per aggregate", both, func(events.Envelope) string { return "both" }, []bool{true, false, false, false}},
		// Right: one key per (aggregate, type).
		{"both types, one key per type", both, func(e events.Envelope) string { return "both/" + e.Type }, []bool{true, true, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []bool
			for _, e := range tc.deliveries {
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				apply, err := pginbox.Advance(ctx, tx, tc.name+"/"+tc.key(e), e)
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				got = append(got, apply)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("applied per delivery (-got +want):\n%s", diff)
			}
		})
	}
}
