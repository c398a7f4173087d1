package consumer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/payments/internal/consumer"
	"polyshop/services/payments/internal/payments"
	"polyshop/services/payments/internal/pgstore"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// End to end over NATS, with test-only command types published in the tests' own namespace
// (TEST_ORDERS, as the test user; the live ORDERS never sees them): the charge and refund consumers
// handle commands; the down switch detaches them, so a command waits in the stream (not
// nak'ed, not handled) until the switch is cleared.
func TestCommandsEndToEndAndDown(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.Schema(t, "PAYMENTS_DATABASE_URL")
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	svc := payments.NewService(pgstore.New(pool), payments.Options{})
	orders := natstest.TestConn(t)
	stream := natstest.Stream(t, orders, "orders")
	pay := natstest.TestConn(t) // dead letters, if any, go to DLQ_TEST

	base := strings.TrimSuffix(natstest.EventType(t, "orders"), ".v1")
	chargeType, refundType := base+".charge.v1", base+".refund.v1"
	prefix := testenv.UniqueName(t, "payments_test")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, d := range []string{prefix + "-charge", prefix + "-refund"} {
			if err := pay.JetStream().DeleteConsumer(ctx, stream, d); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				t.Errorf("delete consumer %s: %v", d, err)
			}
		}
	})
	g := consumer.Start(ctx, pay, svc, slog.New(slog.NewTextHandler(io.Discard, nil)), consumer.Options{
		DurablePrefix: prefix, Stream: stream, ChargeSubject: events.SubjectFor(chargeType), RefundSubject: events.SubjectFor(refundType),
		DeliverNew: true, PollEvery: 50 * time.Millisecond, Concurrency: 2,
	}, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	waitFor(t, "the consumers to attach", func() bool { a, _ := g.State(); return a })

	user := newID(t)
	publish := func(typ, order string, data any) {
		t.Helper()
		e, err := events.New(ctx, typ, order, 1, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := orders.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	status := func(order string) payments.Status {
		ps, err := svc.ByOrder(ctx, order)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return ""
		}
		return ps[0].Status
	}
	charge := func(order string) {
		publish(chargeType, order, events.ChargePayment{OrderID: order, UserID: user, Attempt: 1, Amount: 990, Currency: "EUR"})
	}

	a := newID(t)
	charge(a)
	waitFor(t, "order A charged", func() bool { return status(a) == payments.StatusCharged })
	publish(refundType, a, events.RefundPayment{OrderID: a, UserID: user, Attempt: 1, Reason: "timeout"})
	waitFor(t, "order A refunded", func() bool { return status(a) == payments.StatusRefunded })

	down := true
	if _, err := svc.PatchFaults(ctx, payments.FaultsPatch{Down: &down}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumers to detach", func() bool { a, d := g.State(); return !a && d })
	c := newID(t)
	charge(c)
	cons, err := pay.JetStream().Consumer(ctx, stream, prefix+"-charge")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 1 || info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Errorf("while down: pending %d, ack pending %d, redelivered %d; want the command waiting in the stream (1, 0, 0)",
			info.NumPending, info.NumAckPending, info.NumRedelivered)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE order_id = $1`, c).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("order C has %d payment rows while down (%v), want 0", rows, err)
	}

	// A restart while down: the new process reads the stored switch and does not attach.
	restarted := consumer.Start(ctx, pay, svc, slog.New(slog.NewTextHandler(io.Discard, nil)), consumer.Options{
		DurablePrefix: prefix, Stream: stream, ChargeSubject: events.SubjectFor(chargeType), RefundSubject: events.SubjectFor(refundType),
		PollEvery: 50 * time.Millisecond,
	}, nil)
	waitFor(t, "the restarted consumers to read the down switch", func() bool { _, d := restarted.State(); return d })
	if a, _ := restarted.State(); a {
		t.Error("restarted while down: the consumers attached")
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := restarted.Stop(stopCtx); err != nil {
		t.Errorf("stop restarted: %v", err)
	}
	cancel()

	if err := svc.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "order C charged after the down switch is cleared", func() bool {
		ps, err := svc.ByOrder(ctx, c)
		return err == nil && len(ps) == 1 && ps[0].Status == payments.StatusCharged
	})
	if a, d := g.State(); !a || d {
		t.Errorf("state after clear: attached %v, down %v; want attached, not down", a, d)
	}
}

// An invalid command is dead-lettered at once (permanent), not retried.
func TestHandlerMarksInvalidCommandsPermanent(t *testing.T) {
	if !broker.IsPermanent(payments.ErrInvalid) {
		t.Fatal("payments.ErrInvalid is not permanent for the broker")
	}
}
