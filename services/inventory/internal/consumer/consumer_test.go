package consumer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/inventory/internal/consumer"
	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

var ctx = context.Background()

type env struct {
	pool   *pgxpool.Pool
	svc    *inventory.Service
	conn   *broker.Conn
	stream string
	log    *slog.Logger
}

func setup(t *testing.T) env {
	t.Helper()
	pool, _ := pgtest.Schema(t, "INVENTORY_DATABASE_URL")
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	conn := natstest.TestConn(t)
	return env{pool: pool, svc: inventory.NewService(pgstore.New(pool), inventory.Options{Log: log}),
		conn: conn, stream: natstest.Stream(t, conn, "inventory"), log: log}
}

// spec is a consumer on a test-only subject of the test stream TEST_INVENTORY (the test user
// may not publish on the real catalog or command subjects, and must not).
func (e env) spec(t *testing.T, prefix string) consumer.Spec {
	return consumer.Spec{Stream: e.stream, Durable: natstest.Durable(t, e.conn, e.stream, prefix),
		Subjects: []string{events.SubjectFor(natstest.EventType(t, "inventory"))}}
}

// publish sends a real-typed envelope on a test subject.
func (e env) publish(t *testing.T, subject string, ev events.Envelope) {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.conn.PublishRaw(ctx, subject, ev.ID, body, nil); err != nil {
		t.Fatal(err)
	}
}

func mustEnv(t *testing.T, typ, subject string, data any) events.Envelope {
	t.Helper()
	ev, err := events.New(ctx, typ, subject, 1, data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// waitFor polls cond until it holds; it waits for an outcome, it does not time one.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e env) status(t *testing.T, order string) inventory.Status {
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

const user = "0193a1b2-0000-7000-8000-000000000001"

// Catalog events and commands flow through the broker; the down fault stops the command
// consumers (a command published meanwhile stays in the stream, unfetched) and clearing it
// attaches them again, so the command is handled.
func TestDownPausesCommandConsumption(t *testing.T) {
	e := setup(t)
	cat, fwd, comp := e.spec(t, "inv-cat"), e.spec(t, "inv-fwd"), e.spec(t, "inv-comp")
	changes := make(chan []string, 32)
	r := consumer.Start(ctx, e.conn, e.svc, e.log, consumer.Options{
		Catalog: cat, Forward: fwd, Compensations: comp, PollEvery: 20 * time.Millisecond,
		RetryEvery: 20 * time.Millisecond, DeliverNew: true,
		OnChange: func(a []string) { changes <- a },
	})
	t.Cleanup(func() { _ = r.Stop(ctx) })
	wait := func(want []string) {
		t.Helper()
		for {
			select {
			case got := <-changes:
				if cmp.Equal(got, want) {
					return
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("consumers never became %v (now %v)", want, r.Attached())
			}
		}
	}
	all := []string{cat.Durable, fwd.Durable, comp.Durable}
	slices.Sort(all)
	wait(all)

	product := uuid.Must(uuid.NewV7()).String()
	e.publish(t, cat.Subjects[0], mustEnv(t, events.TypeProductCreated, product, events.ProductCreated{
		ProductID: product, Name: "P", Price: events.Money{Amount: 1, Currency: "EUR"}, InitialStock: 3}))
	// The catalog and command consumers run side by side: a reserve handled before the
	// product arrived would be rejected (unknown_product), so the command waits for it.
	waitFor(t, "the product", func() bool { _, err := e.svc.Stock(ctx, product); return err == nil })
	order := uuid.Must(uuid.NewV7()).String()
	e.publish(t, fwd.Subjects[0], mustEnv(t, events.TypeCmdReserveStock, order, events.ReserveStock{
		OrderID: order, UserID: user, Attempt: 1, Items: []events.StockItem{{ProductID: product, Quantity: 2}}}))
	waitFor(t, "the reservation", func() bool { return e.status(t, order) == inventory.StatusActive })

	if _, err := e.svc.SetFaults(ctx, inventory.FaultsPatch{Down: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	wait([]string{cat.Durable})
	e.publish(t, comp.Subjects[0], mustEnv(t, events.TypeCmdReleaseStock, order, events.ReleaseStock{
		OrderID: order, UserID: user, Attempt: 1, Reason: "timeout"}))
	info, err := e.conn.JetStream().Consumer(ctx, e.stream, comp.Durable)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumPending != 1 || ci.NumAckPending != 0 {
		t.Errorf("while down: pending %d, ack pending %d; want the release waiting unfetched", ci.NumPending, ci.NumAckPending)
	}
	if got := e.status(t, order); got != inventory.StatusActive {
		t.Errorf("while down: status %s, want active", got)
	}

	// Another instance (or the API) clears the stored switch; this one follows.
	if _, err := inventory.NewService(pgstore.New(e.pool), inventory.Options{}).ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	wait(all)
	waitFor(t, "the release", func() bool { return e.status(t, order) == inventory.StatusReleased })
}

func ptr[T any](v T) *T { return &v }

// testPublisher sends relayed events to a test-only subject, so the real reply subjects
// that orders consumes are left alone.
type testPublisher struct {
	conn    *broker.Conn
	subject string
}

func (p testPublisher) Publish(ctx context.Context, ev events.Envelope) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return p.conn.PublishRaw(ctx, p.subject, ev.ID, body, nil)
}

// A crash between the state change and the relay loses no reply: the command's
// transaction commits with the reply in the outbox, no relay runs ("the process dies"),
// and a relay started afresh publishes it.
func TestReplySurvivesCrashBeforeRelay(t *testing.T) {
	e := setup(t)
	product := uuid.Must(uuid.NewV7()).String()
	if err := e.svc.ApplyCatalog(ctx, mustEnv(t, events.TypeProductCreated, product, events.ProductCreated{
		ProductID: product, InitialStock: 1})); err != nil {
		t.Fatal(err)
	}
	order := uuid.Must(uuid.NewV7()).String()
	if err := e.svc.Reserve(ctx, events.ReserveStock{OrderID: order, UserID: user, Attempt: 1,
		Items: []events.StockItem{{ProductID: product, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	var pending int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL AND type = $1`,
		events.TypeReplyStockReserved).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("pending replies after the crash: %d, %v; want 1", pending, err)
	}

	subject := events.SubjectFor(natstest.EventType(t, "inventory"))
	durable := natstest.Durable(t, e.conn, e.stream, "inv-relay")
	got := make(chan events.Envelope, 16)
	sub, err := e.conn.Consume(ctx, broker.ConsumerSpec{Stream: e.stream, Durable: durable, Subjects: []string{subject}},
		func(_ context.Context, ev events.Envelope) error { got <- ev; return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(ctx) })

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	store := pgoutbox.New(e.pool)
	t.Cleanup(store.Close)
	go func() { _ = outbox.NewRelay(store, testPublisher{e.conn, subject}, e.log).Run(rctx) }()
	for {
		select {
		case ev := <-got:
			if ev.Type != events.TypeReplyStockReserved {
				continue
			}
			var d events.InventoryReply
			if err := ev.Decode(&d); err != nil {
				t.Fatal(err)
			}
			if d.OrderID != order || d.UserID != user || d.Attempt != 1 || len(d.Items) != 1 {
				t.Errorf("published reply: %+v", d)
			}
			return
		case <-time.After(20 * time.Second):
			t.Fatal("the reply was never published")
		}
	}
}
