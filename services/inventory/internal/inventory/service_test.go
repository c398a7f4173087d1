package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/testenv/pgtest"
)

// fakeClock is the service clock a test moves by hand, so expiry is driven, not waited for.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	svc   *inventory.Service
	pool  *pgxpool.Pool
	clock *fakeClock
	slept *[]time.Duration
}

func setup(t testing.TB) env {
	t.Helper()
	pool, _ := pgtest.Schema(t, "INVENTORY_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	slept := &[]time.Duration{}
	svc := inventory.NewService(pgstore.New(pool), inventory.Options{
		TTL: time.Hour, Now: clock.Now,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			*slept = append(*slept, d)
			return nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return env{svc: svc, pool: pool, clock: clock, slept: slept}
}

var ctx = context.Background()

func newUUID() string { return uuid.Must(uuid.NewV7()).String() }

func mustEnv(t testing.TB, typ, subject string, data any) events.Envelope {
	t.Helper()
	e, err := events.New(ctx, typ, subject, 1, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) product(t testing.TB, initial int64) string {
	t.Helper()
	id := newUUID()
	ev := mustEnv(t, events.TypeProductCreated, id, events.ProductCreated{ProductID: id, Name: "P",
		Price: events.Money{Amount: 100, Currency: "EUR"}, InitialStock: initial, CreatedAt: time.Now()})
	if err := e.svc.ApplyCatalog(ctx, ev); err != nil {
		t.Fatal(err)
	}
	return id
}

const user = "0193a1b2-0000-7000-8000-000000000001"

// cmd builds the envelope of a saga command for order.
func cmd(t testing.TB, verb, order string, attempt int, items ...events.StockItem) events.Envelope {
	t.Helper()
	switch verb {
	case "reserve":
		return mustEnv(t, events.TypeCmdReserveStock, order, events.ReserveStock{OrderID: order, UserID: user, Attempt: attempt, Items: items})
	case "release":
		return mustEnv(t, events.TypeCmdReleaseStock, order, events.ReleaseStock{OrderID: order, UserID: user, Attempt: attempt, Reason: "timeout"})
	case "commit":
		return mustEnv(t, events.TypeCmdCommitStock, order, events.CommitStock{OrderID: order, UserID: user, Attempt: attempt})
	}
	t.Fatalf("unknown verb %s", verb)
	return events.Envelope{}
}

func item(p string, q int64) events.StockItem { return events.StockItem{ProductID: p, Quantity: q} }

// outbox returns the envelopes in the outbox about subject, in commit order.
func (e env) outbox(t testing.TB, subject string) []events.Envelope {
	t.Helper()
	rows, err := e.pool.Query(ctx, `SELECT envelope::text FROM outbox WHERE aggregate = $1 ORDER BY seq`, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.Envelope
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		ev, err := events.Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// reply is what a test compares of an inventory reply.
type reply struct {
	Type    string
	Reason  string
	Attempt int
	Seq     int64
}

func (e env) replies(t testing.TB, order string) []reply {
	t.Helper()
	var out []reply
	ids := map[string]bool{}
	for _, ev := range e.outbox(t, order) {
		if !strings.HasPrefix(ev.Type, "polyshop.inventory.reply.") {
			continue
		}
		if ids[ev.ID] {
			t.Errorf("reply id %s written twice", ev.ID)
		}
		ids[ev.ID] = true
		var d events.InventoryReply
		if err := ev.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.UserID != user || d.OrderID != order {
			t.Errorf("reply %s carries order %s user %s", ev.Type, d.OrderID, d.UserID)
		}
		out = append(out, reply{Type: strings.TrimSuffix(strings.TrimPrefix(ev.Type, "polyshop.inventory.reply."), ".v1"), Reason: d.Reason, Attempt: d.Attempt, Seq: ev.Sequence})
	}
	return out
}

func (e env) domainEvents(t testing.TB, order string) []string {
	t.Helper()
	var out []string
	for _, ev := range e.outbox(t, order) {
		if strings.HasPrefix(ev.Type, "polyshop.inventory.stock_") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(ev.Type, "polyshop.inventory."), ".v1"))
		}
	}
	return out
}

type ledger struct{ Initial, Restocked, Reserved, Sold, Released, Available int64 }

func (e env) ledger(t testing.TB, p string) ledger {
	t.Helper()
	st, err := e.svc.Ledger(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Balanced() {
		t.Errorf("ledger of %s does not balance: %+v", p, st)
	}
	return ledger{st.Initial, st.Restocked, st.Reserved, st.Sold, st.Released, st.Available}
}

func (e env) status(t testing.TB, order string) inventory.Status {
	t.Helper()
	rs, err := e.svc.Reservations(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return inventory.StatusNone
	}
	return rs[0].Status
}

func (e env) handle(t testing.TB, ev events.Envelope) {
	t.Helper()
	if err := e.svc.HandleCommand(ctx, ev); err != nil {
		t.Fatalf("handle %s: %v", ev.Type, err)
	}
}

// Every case runs its commands for one order against stock 5 of product A and 5 of B, and
// checks the replies (in order), the order's domain events, its final status and both ledgers.
func TestSagaCommands(t *testing.T) {
	type step struct {
		verb    string
		attempt int
		items   func(a, b string) []events.StockItem // verb "again": the previous command delivered again (same event id)
	}
	two := func(a, b string) []events.StockItem { return []events.StockItem{item(a, 2), item(b, 1)} }
	tooMany := func(a, b string) []events.StockItem { return []events.StockItem{item(a, 2), item(b, 6)} }
	tests := []struct {
		name    string
		steps   []step
		replies []reply
		events  []string
		status  inventory.Status
		a, b    ledger
	}{
		{"reserve then commit", []step{{"reserve", 1, two}, {"commit", 1, nil}},
			[]reply{{"reserved", "", 1, 1}, {"committed", "", 1, 2}},
			[]string{"stock_reserved", "stock_committed"}, inventory.StatusCommitted,
			ledger{Initial: 5, Sold: 2, Available: 3}, ledger{Initial: 5, Sold: 1, Available: 4}},
		{"the same reserve twice: one effect, the stored reply again", []step{{"reserve", 1, two}, {"reserve", 2, two}},
			[]reply{{"reserved", "", 1, 1}, {"reserved", "", 2, 2}},
			[]string{"stock_reserved"}, inventory.StatusActive,
			ledger{Initial: 5, Reserved: 2, Available: 3}, ledger{Initial: 5, Reserved: 1, Available: 4}},
		{"all or none", []step{{"reserve", 1, tooMany}},
			[]reply{{"rejected", "out_of_stock", 1, 1}},
			[]string{"stock_reservation_failed"}, inventory.StatusRejected,
			ledger{Initial: 5, Available: 5}, ledger{Initial: 5, Available: 5}},
		{"release gives back once", []step{{"reserve", 1, two}, {"release", 1, nil}, {"release", 2, nil}},
			[]reply{{"reserved", "", 1, 1}, {"released", "", 1, 2}, {"released", "", 2, 3}},
			[]string{"stock_reserved", "stock_released"}, inventory.StatusReleased,
			ledger{Initial: 5, Released: 2, Available: 5}, ledger{Initial: 5, Released: 1, Available: 5}},
		{"release before reserve: tombstone, late reserve refused, commit fails", []step{{"release", 1, nil}, {"reserve", 1, two}, {"commit", 1, nil}},
			[]reply{{"released", "", 1, 1}, {"rejected", "released", 1, 2}, {"commit_failed", "released", 1, 3}},
			[]string{"stock_reservation_failed"}, inventory.StatusTombstone,
			ledger{Initial: 5, Available: 5}, ledger{Initial: 5, Available: 5}},
		{"commit after release fails, never re-takes", []step{{"reserve", 1, two}, {"release", 1, nil}, {"commit", 1, nil}},
			[]reply{{"reserved", "", 1, 1}, {"released", "", 1, 2}, {"commit_failed", "released", 1, 3}},
			[]string{"stock_reserved", "stock_released"}, inventory.StatusReleased,
			ledger{Initial: 5, Released: 2, Available: 5}, ledger{Initial: 5, Released: 1, Available: 5}},
		{"the same commit twice: one sale", []step{{"reserve", 1, two}, {"commit", 1, nil}, {"commit", 2, nil}},
			[]reply{{"reserved", "", 1, 1}, {"committed", "", 1, 2}, {"committed", "", 2, 3}},
			[]string{"stock_reserved", "stock_committed"}, inventory.StatusCommitted,
			ledger{Initial: 5, Sold: 2, Available: 3}, ledger{Initial: 5, Sold: 1, Available: 4}},
		{"a reserve delivered again (same event id): nothing, not even a reply",
			[]step{{"reserve", 1, two}, {"again", 0, nil}, {"again", 0, nil}},
			[]reply{{"reserved", "", 1, 1}},
			[]string{"stock_reserved"}, inventory.StatusActive,
			ledger{Initial: 5, Reserved: 2, Available: 3}, ledger{Initial: 5, Reserved: 1, Available: 4}},
		{"a release and a commit delivered again: nothing; a resend still gets the stored reply",
			[]step{{"reserve", 1, two}, {"release", 1, nil}, {"again", 0, nil}, {"release", 2, nil}, {"again", 0, nil}},
			[]reply{{"reserved", "", 1, 1}, {"released", "", 1, 2}, {"released", "", 2, 3}},
			[]string{"stock_reserved", "stock_released"}, inventory.StatusReleased,
			ledger{Initial: 5, Released: 2, Available: 5}, ledger{Initial: 5, Released: 1, Available: 5}},
		{"commit without a reservation", []step{{"commit", 1, nil}},
			[]reply{{"commit_failed", inventory.ReasonNotReserved, 1, 1}},
			nil, inventory.StatusNone,
			ledger{Initial: 5, Available: 5}, ledger{Initial: 5, Available: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t)
			a, b := e.product(t, 5), e.product(t, 5)
			order := newUUID()
			var last events.Envelope
			for _, s := range tt.steps {
				if s.verb != "again" {
					var items []events.StockItem
					if s.items != nil {
						items = s.items(a, b)
					}
					last = cmd(t, s.verb, order, s.attempt, items...)
				}
				e.handle(t, last)
			}
			if diff := cmp.Diff(e.replies(t, order), tt.replies); diff != "" {
				t.Errorf("replies (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(e.domainEvents(t, order), tt.events); diff != "" {
				t.Errorf("domain events (-got +want):\n%s", diff)
			}
			if got := e.status(t, order); got != tt.status {
				t.Errorf("status = %s, want %s", got, tt.status)
			}
			if diff := cmp.Diff(e.ledger(t, a), tt.a); diff != "" {
				t.Errorf("ledger A (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(e.ledger(t, b), tt.b); diff != "" {
				t.Errorf("ledger B (-got +want):\n%s", diff)
			}
		})
	}
}

// Every availability change writes stock_changed with the row's version as sequence.
func TestStockChangedFollowsVersion(t *testing.T) {
	e := setup(t)
	p := e.product(t, 5)
	order := newUUID()
	e.handle(t, cmd(t, "reserve", order, 1, item(p, 2)))
	e.handle(t, cmd(t, "release", order, 1))
	st, err := e.svc.Restock(ctx, p, 9, 3)
	if err != nil {
		t.Fatal(err)
	}
	type changed struct{ Seq, Available, Version int64 }
	var got []changed
	for _, ev := range e.outbox(t, p) {
		var d events.StockChanged
		if err := ev.Decode(&d); err != nil {
			t.Fatal(err)
		}
		got = append(got, changed{ev.Sequence, d.Available, d.Version})
	}
	want := []changed{{1, 5, 1}, {2, 3, 2}, {3, 5, 3}, {4, 9, 4}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("stock_changed (-got +want):\n%s", diff)
	}
	if st.Version != 4 || st.Available != 9 {
		t.Errorf("after restock: %+v", st)
	}
	if diff := cmp.Diff(e.ledger(t, p), ledger{Initial: 5, Restocked: 4, Released: 2, Available: 9}); diff != "" {
		t.Errorf("ledger (-got +want):\n%s", diff)
	}
	if _, err := e.svc.Restock(ctx, p, 1, 3); err != inventory.ErrStaleVersion {
		t.Errorf("restock with a stale version: %v, want ErrStaleVersion", err)
	}
}

func TestCatalogEvents(t *testing.T) {
	e := setup(t)
	id := newUUID()
	created := mustEnv(t, events.TypeProductCreated, id, events.ProductCreated{ProductID: id, Name: "P",
		Price: events.Money{Amount: 1, Currency: "EUR"}, InitialStock: 7, CreatedAt: time.Now()})
	deleted := mustEnv(t, events.TypeProductDeleted, id, events.ProductDeleted{ProductID: id, DeletedAt: time.Now()})
	for range 2 { // a redelivery changes nothing
		if err := e.svc.ApplyCatalog(ctx, created); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.outbox(t, id)); got != 1 {
		t.Errorf("stock_changed after a duplicate create: %d events, want 1", got)
	}
	order := newUUID()
	e.handle(t, cmd(t, "reserve", order, 1, item(id, 1)))
	if err := e.svc.ApplyCatalog(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Stock(ctx, id); err != inventory.ErrNotFound {
		t.Errorf("stock of a retired product: %v, want ErrNotFound", err)
	}
	st, err := e.svc.Ledger(ctx, id)
	if err != nil || !st.Retired || st.Reserved != 1 {
		t.Errorf("ledger of a retired product: %+v, %v", st, err)
	}
	// A retired product and one never seen cannot be reserved.
	for _, p := range []string{id, newUUID()} {
		o := newUUID()
		e.handle(t, cmd(t, "reserve", o, 1, item(p, 1)))
		if diff := cmp.Diff(e.replies(t, o), []reply{{"rejected", "unknown_product", 1, 1}}); diff != "" {
			t.Errorf("reserve of %s (-got +want):\n%s", p, diff)
		}
	}
	// A delete that comes before its create leaves a retired row; the create changes nothing.
	late := newUUID()
	if err := e.svc.ApplyCatalog(ctx, mustEnv(t, events.TypeProductDeleted, late, events.ProductDeleted{ProductID: late})); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyCatalog(ctx, mustEnv(t, events.TypeProductCreated, late, events.ProductCreated{ProductID: late, InitialStock: 3})); err != nil {
		t.Fatal(err)
	}
	if st, err := e.svc.Ledger(ctx, late); err != nil || !st.Retired || st.Available != 0 {
		t.Errorf("create after delete: %+v, %v", st, err)
	}
}

// 64 orders of one unit race for 10: exactly 10 are reserved, 54 rejected, nothing oversold.
func TestConcurrentReservationsNeverOversell(t *testing.T) {
	e := setup(t)
	p := e.product(t, 10)
	const n = 64
	orders := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range orders {
		orders[i] = newUUID()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.svc.HandleCommand(ctx, cmd(t, "reserve", orders[i], 1, item(p, 1)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	count := map[string]int{}
	for _, o := range orders {
		for _, r := range e.replies(t, o) {
			count[r.Type+" "+r.Reason]++
		}
	}
	if diff := cmp.Diff(count, map[string]int{"reserved ": 10, "rejected out_of_stock": 54}); diff != "" {
		t.Errorf("replies (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(e.ledger(t, p), ledger{Initial: 10, Reserved: 10, Available: 0}); diff != "" {
		t.Errorf("ledger (-got +want):\n%s", diff)
	}
}

// Orders locking the same products in different line order never deadlock (rows are
// locked in product id order).
func TestCrossedOrdersDoNotDeadlock(t *testing.T) {
	e := setup(t)
	a, b := e.product(t, 1000), e.product(t, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items := []events.StockItem{item(a, 1), item(b, 1)}
			if i%2 == 1 {
				items[0], items[1] = items[1], items[0]
			}
			errs <- e.svc.HandleCommand(ctx, cmd(t, "reserve", newUUID(), 1, items...))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.ledger(t, a); got.Reserved != 40 {
		t.Errorf("ledger A: %+v", got)
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name     string
		after    func(e env, t *testing.T, p, order string) // runs after the sweep
		replies  []reply
		status   inventory.Status
		want     ledger
		sweptTwo int
	}{
		{"commit after expiry re-takes the stock", func(e env, t *testing.T, p, order string) {
			e.handle(t, cmd(t, "commit", order, 1))
		}, []reply{{"reserved", "", 1, 1}, {"committed", "", 1, 2}}, inventory.StatusCommitted,
			ledger{Initial: 3, Sold: 2, Released: 2, Available: 1}, 0},
		{"commit after expiry fails when the stock is gone", func(e env, t *testing.T, p, order string) {
			e.handle(t, cmd(t, "reserve", newUUID(), 1, item(p, 2)))
			e.handle(t, cmd(t, "commit", order, 1))
			e.handle(t, cmd(t, "commit", order, 2)) // final: no re-take later either
		}, []reply{{"reserved", "", 1, 1}, {"commit_failed", "expired", 1, 2}, {"commit_failed", "expired", 2, 3}}, inventory.StatusExpired,
			ledger{Initial: 3, Reserved: 2, Released: 2, Available: 1}, 0},
		{"release after expiry gives nothing back twice", func(e env, t *testing.T, p, order string) {
			e.handle(t, cmd(t, "release", order, 1))
			e.handle(t, cmd(t, "commit", order, 1))
		}, []reply{{"reserved", "", 1, 1}, {"released", "", 1, 2}, {"commit_failed", "released", 1, 3}}, inventory.StatusReleased,
			ledger{Initial: 3, Released: 2, Available: 3}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t)
			p := e.product(t, 3)
			order := newUUID()
			e.handle(t, cmd(t, "reserve", order, 1, item(p, 2)))
			if n, err := e.svc.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("sweep before the expiry: %d, %v; want 0", n, err)
			}
			e.clock.Add(e.svc.TTL())
			if n, err := e.svc.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep at the expiry: %d, %v; want 1", n, err)
			}
			if n, err := e.svc.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("second sweep: %d, %v; want 0 (stock returns once)", n, err)
			}
			if diff := cmp.Diff(e.ledger(t, p), ledger{Initial: 3, Released: 2, Available: 3}); diff != "" {
				t.Errorf("ledger after expiry (-got +want):\n%s", diff)
			}
			tt.after(e, t, p, order)
			if diff := cmp.Diff(e.replies(t, order), tt.replies); diff != "" {
				t.Errorf("replies (-got +want):\n%s", diff)
			}
			if got := e.status(t, order); got != tt.status {
				t.Errorf("status = %s, want %s", got, tt.status)
			}
			if diff := cmp.Diff(e.ledger(t, p), tt.want); diff != "" {
				t.Errorf("ledger (-got +want):\n%s", diff)
			}
		})
	}
}

// The sweeper and a commit racing for the same reservation: the row lock orders them, and
// the stock is counted exactly once whichever wins.
func TestSweepRacingCommit(t *testing.T) {
	for i := range 5 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := setup(t)
			p := e.product(t, 2)
			order := newUUID()
			e.handle(t, cmd(t, "reserve", order, 1, item(p, 2)))
			e.clock.Add(e.svc.TTL())
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = e.svc.Sweep(ctx) }()
			go func() { defer wg.Done(); e.handle(t, cmd(t, "commit", order, 1)) }()
			wg.Wait()
			// Either commit-then-nothing-to-sweep or expire-then-re-take: both end sold.
			got := e.ledger(t, p)
			if got.Sold != 2 || got.Available != 0 || got.Reserved != 0 {
				t.Errorf("ledger: %+v, want 2 sold", got)
			}
		})
	}
}

func TestLatencyFault(t *testing.T) {
	e := setup(t)
	if _, err := e.svc.SetFaults(ctx, inventory.FaultsPatch{LatencyMs: ptr(250)}); err != nil {
		t.Fatal(err)
	}
	// A second service over the same database reads the stored switch (it survives restarts).
	other := inventory.NewService(pgstore.New(e.pool), inventory.Options{})
	f, err := other.RefreshFaults(ctx)
	if err != nil || f != (inventory.Faults{LatencyMs: 250}) {
		t.Errorf("stored faults: %+v, %v", f, err)
	}
	p := e.product(t, 1)
	e.handle(t, cmd(t, "reserve", newUUID(), 1, item(p, 1)))
	if diff := cmp.Diff(*e.slept, []time.Duration{250 * time.Millisecond}); diff != "" {
		t.Errorf("slept (-got +want):\n%s", diff)
	}
	if _, err := e.svc.SetFaults(ctx, inventory.FaultsPatch{LatencyMs: ptr(20001)}); err == nil {
		t.Error("latency 20001 accepted")
	}
}

func ptr[T any](v T) *T { return &v }

// A reply's data is stored whole, so a re-sent reply carries the same content.
func TestResentReplyKeepsContent(t *testing.T) {
	e := setup(t)
	p := e.product(t, 4)
	order := newUUID()
	e.handle(t, cmd(t, "reserve", order, 1, item(p, 3)))
	e.handle(t, cmd(t, "reserve", order, 2, item(p, 3)))
	evs := e.outbox(t, order)
	var data []events.InventoryReply
	for _, ev := range evs {
		if ev.Type == events.TypeReplyStockReserved {
			var d events.InventoryReply
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			data = append(data, d)
		}
	}
	if len(data) != 2 {
		t.Fatalf("reserved replies: %d, want 2", len(data))
	}
	data[1].Attempt = 1
	if diff := cmp.Diff(data[1], data[0]); diff != "" {
		t.Errorf("re-sent reply differs beyond the attempt (-resent +first):\n%s", diff)
	}
}
