package inventory_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/testenv/pgtest"
)

// ledgerCounts are the counts lab 03 looks at.
type ledgerCounts struct{ Available, Reserved, Held, Sold, Released int64 }

func counts(st inventory.Stock) ledgerCounts {
	return ledgerCounts{st.Available, st.Reserved, st.Held, st.Sold, st.Released}
}

// The lab pattern switch inventory.dedup, on the real store: a reserve command delivered
// three times (duplicates ×3: three envelopes of one command) holds the order's items once
// with deduplication on, and three times with it off — the ledger equation still balances,
// but reserved exceeds what the active reservations hold (Held). Reconcile gives the excess
// back; a second Reconcile changes nothing; the commit then sells exactly the order's items.
func TestDedupOffHoldsTwiceAndReconcileRepairs(t *testing.T) {
	cases := []struct {
		name        string
		dedup       bool
		afterDups   ledgerCounts
		returned    int64
		afterCommit ledgerCounts
	}{
		{"dedup on", true, ledgerCounts{Available: 8, Reserved: 2, Held: 2}, 0,
			ledgerCounts{Available: 8, Sold: 2}},
		{"dedup off", false, ledgerCounts{Available: 4, Reserved: 6, Held: 2}, 4,
			ledgerCounts{Available: 8, Sold: 2, Released: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, _ := pgtest.Schema(t, "INVENTORY_DATABASE_URL")
			if err := pgstore.Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
			dedup := c.dedup
			svc := inventory.NewService(pgstore.New(pool), inventory.Options{TTL: time.Hour,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Dedup: func() bool { return dedup }})
			e := env{svc: svc, pool: pool}
			p := e.product(t, 10)
			order := newUUID()
			for range 3 { // the same command, three copies (distinct envelopes, as duplicates sends them)
				if err := svc.HandleCommand(ctx, cmd(t, "reserve", order, 1, item(p, 2))); err != nil {
					t.Fatal(err)
				}
			}
			st, err := svc.Ledger(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(counts(st), c.afterDups); diff != "" {
				t.Errorf("after the duplicates (-got +want):\n%s", diff)
			}
			if !st.Balanced() {
				t.Errorf("ledger equation broken: %+v", st)
			}
			// The operator's repair, once dedup is back on.
			dedup = true
			_, returned, err := svc.Reconcile(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if returned != c.returned {
				t.Errorf("reconcile returned %d, want %d", returned, c.returned)
			}
			if _, again, err := svc.Reconcile(ctx, p); err != nil || again != 0 {
				t.Errorf("second reconcile returned %d, %v; want 0, nil", again, err)
			}
			if err := svc.HandleCommand(ctx, cmd(t, "commit", order, 1)); err != nil {
				t.Fatal(err)
			}
			st, err = svc.Ledger(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(counts(st), c.afterCommit); diff != "" {
				t.Errorf("after reconcile and commit (-got +want):\n%s", diff)
			}
			if !st.Balanced() {
				t.Errorf("ledger equation broken: %+v", st)
			}
		})
	}
}

func TestReconcileUnknownProduct(t *testing.T) {
	e := setup(t)
	if _, _, err := e.svc.Reconcile(ctx, newUUID()); err != inventory.ErrNotFound {
		t.Errorf("err %v, want ErrNotFound", err)
	}
}
