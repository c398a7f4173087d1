package orders_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/shared/events"
)

// act is one thing that happens to a saga: a reply, or a timer column forced into the past
// (then, unless expireOnly, one pass of the timer worker).
type act struct {
	reply      string
	attempt    int
	reason     string
	timer      string
	expireOnly bool
}

func reply(typ string, attempt int, reason string) act {
	return act{reply: typ, attempt: attempt, reason: reason}
}
func st(state, status, reason string) orderstest.SagaState {
	return orderstest.SagaState{State: state, OrderStatus: status, Reason: reason}
}
func timer(col string) act  { return act{timer: col} }
func expire(col string) act { return act{timer: col, expireOnly: true} }

var (
	reserved     = reply(events.TypeReplyStockReserved, 1, "")
	charged      = reply(events.TypeReplyPaymentCharged, 1, "")
	committed    = reply(events.TypeReplyStockCommitted, 1, "")
	commitFailed = reply(events.TypeReplyStockCommitFailed, 1, events.RejectExpired)
	refunded     = reply(events.TypeReplyPaymentRefunded, 1, "")
	released     = reply(events.TypeReplyStockReleased, 1, "")
	declined     = reply(events.TypeReplyPaymentDeclined, 1, "card_declined")
	failed1      = reply(events.TypeReplyPaymentFailed, 1, "")
)

// Every row of SAGA.md's orchestrator table, driven through the real store: the commands
// the saga wrote to the outbox (type, attempt, reason) and where it stands.
func TestOrchestratorTable(t *testing.T) {
	placed := []string{"order_placed", "reserve#1"}
	with := func(more ...string) []string { return append(append([]string{}, placed...), more...) }
	cases := []struct {
		name   string
		acts   []act
		outbox []string
		want   orderstest.SagaState
	}{
		{"RESERVING reserved: charge", []act{reserved},
			with("charge#1"), st("CHARGING", "PENDING", "")},
		{"RESERVING reserved after the saga deadline: release, never charge", []act{expire(orderstest.SagaDeadline), reserved},
			with("release#1/timeout"), st("RELEASING", "PENDING", "timeout")},
		{"RESERVING rejected out of stock: cancelled, nothing to undo", []act{reply(events.TypeReplyStockRejected, 1, events.RejectOutOfStock)},
			with("order_cancelled/out_of_stock"), st("CANCELLED", "CANCELLED", "out_of_stock")},
		{"RESERVING rejected unknown product", []act{reply(events.TypeReplyStockRejected, 1, events.RejectUnknownProduct)},
			with("order_cancelled/unknown_product"), st("CANCELLED", "CANCELLED", "unknown_product")},
		{"RESERVING retry timer: reserve again", []act{timer(orderstest.NextAttempt), timer(orderstest.NextAttempt)},
			with("reserve#2", "reserve#3"), st("RESERVING", "PENDING", "")},
		{"RESERVING step deadline: release (the reserve may have happened)", []act{timer(orderstest.StepDeadline)},
			with("release#1/timeout"), st("RELEASING", "PENDING", "timeout")},
		{"CHARGING charged: commit", []act{reserved, charged},
			with("charge#1", "commit#1"), st("COMMITTING", "PENDING", "")},
		{"CHARGING declined: release", []act{reserved, declined},
			with("charge#1", "release#1/payment_declined"), st("RELEASING", "PENDING", "payment_declined")},
		{"CHARGING failed of the current attempt: only a backoff", []act{reserved, failed1},
			with("charge#1"), st("CHARGING", "PENDING", "")},
		{"CHARGING retry timer: charge again with the next attempt", []act{reserved, failed1, timer(orderstest.NextAttempt)},
			with("charge#1", "charge#2"), st("CHARGING", "PENDING", "")},
		{"CHARGING failed of an older attempt is ignored", []act{reserved, timer(orderstest.NextAttempt), failed1, timer(orderstest.StepDeadline)},
			with("charge#1", "charge#2", "refund#1/timeout"), st("REFUNDING", "PENDING", "timeout")},
		{"CHARGING step deadline after failed: refund, payment_failed", []act{reserved, failed1, timer(orderstest.StepDeadline)},
			with("charge#1", "refund#1/payment_failed"), st("REFUNDING", "PENDING", "payment_failed")},
		{"CHARGING step deadline without reply: refund, timeout", []act{reserved, timer(orderstest.StepDeadline)},
			with("charge#1", "refund#1/timeout"), st("REFUNDING", "PENDING", "timeout")},
		{"CHARGING retry due after the saga deadline: refund, no charge", []act{reserved, expire(orderstest.SagaDeadline), timer(orderstest.NextAttempt)},
			with("charge#1", "refund#1/timeout"), st("REFUNDING", "PENDING", "timeout")},
		{"COMMITTING committed: confirmed", []act{reserved, charged, committed},
			with("charge#1", "commit#1", "order_confirmed"), st("CONFIRMED", "CONFIRMED", "")},
		{"COMMITTING retry timer: commit again", []act{reserved, charged, timer(orderstest.NextAttempt), timer(orderstest.NextAttempt)},
			with("charge#1", "commit#1", "commit#2", "commit#3"), st("COMMITTING", "PENDING", "")},
		{"COMMITTING commit_failed: refund, out_of_stock", []act{reserved, charged, commitFailed},
			with("charge#1", "commit#1", "refund#1/out_of_stock"), st("REFUNDING", "PENDING", "out_of_stock")},
		{"REFUNDING refunded: release with the reason", []act{reserved, charged, commitFailed, refunded},
			with("charge#1", "commit#1", "refund#1/out_of_stock", "release#1/out_of_stock"), st("RELEASING", "PENDING", "out_of_stock")},
		{"RELEASING released: cancelled with the reason", []act{reserved, charged, commitFailed, refunded, released},
			with("charge#1", "commit#1", "refund#1/out_of_stock", "release#1/out_of_stock", "order_cancelled/out_of_stock"),
			st("CANCELLED", "CANCELLED", "out_of_stock")},
		{"REFUNDING retry timer: refund again", []act{reserved, timer(orderstest.StepDeadline), timer(orderstest.NextAttempt)},
			with("charge#1", "refund#1/timeout", "refund#2/timeout"), st("REFUNDING", "PENDING", "timeout")},
		{"RELEASING retry timer: release again", []act{timer(orderstest.StepDeadline), timer(orderstest.NextAttempt)},
			with("release#1/timeout", "release#2/timeout"), st("RELEASING", "PENDING", "timeout")},
		{"RELEASING late charged: refund, reason kept", []act{reserved, declined, charged},
			with("charge#1", "release#1/payment_declined", "refund#1/payment_declined"), st("REFUNDING", "PENDING", "payment_declined")},
		{"CANCELLED late charged: refund, then release; cancelled once", []act{reserved, timer(orderstest.StepDeadline), refunded, released, charged, refunded, released},
			with("charge#1", "refund#1/timeout", "release#1/timeout", "order_cancelled/timeout", "refund#1/timeout", "release#1/timeout"),
			st("CANCELLED", "CANCELLED", "timeout")},
		{"replies that do not fit RESERVING change nothing", []act{committed, released, refunded, charged, declined, failed1,
			reply(events.TypeReplyStockRejected, 1, events.RejectReleased)},
			placed, st("RESERVING", "PENDING", "")},
		{"a finished saga ignores late replies", []act{reserved, charged, committed, declined, released, reserved, committed, charged, commitFailed},
			with("charge#1", "commit#1", "order_confirmed"), st("CONFIRMED", "CONFIRMED", "")},
		{"a duplicate reserved in CHARGING changes nothing", []act{reserved, reserved, reply(events.TypeReplyStockReserved, 2, "")},
			with("charge#1"), st("CHARGING", "PENDING", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := orderstest.New(t, orderstest.SlowTiming)
			user := e.Customer(t)
			p := e.Product(t, "Mug", 1250, "EUR")
			order := e.Place(t, user, orders.Line{ProductID: p, Quantity: 2})
			for _, a := range tc.acts {
				switch {
				case a.reply != "":
					e.Reply(t, order, user, a.reply, a.attempt, a.reason)
				default:
					e.Expire(t, order, a.timer)
					if !a.expireOnly {
						e.Timers(t)
					}
				}
			}
			if diff := cmp.Diff(e.Outbox(t, order), tc.outbox); diff != "" {
				t.Errorf("outbox (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(e.State(t, order), tc.want); diff != "" {
				t.Errorf("state (-got +want):\n%s", diff)
			}
		})
	}
}

// The reserve and charge commands carry what the participants need.
func TestCommandsCarryTheOrder(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	user := e.Customer(t)
	p1, p2 := e.Product(t, "Mug", 1250, "EUR"), e.Product(t, "Tea", 399, "EUR")
	order := e.Place(t, user, orders.Line{ProductID: p1, Quantity: 2}, orders.Line{ProductID: p2, Quantity: 3})
	e.Reply(t, order, user, events.TypeReplyStockReserved, 1, "")
	var reserve events.ReserveStock
	var charge events.ChargePayment
	for typ, dst := range map[string]any{events.TypeCmdReserveStock: &reserve, events.TypeCmdChargePayment: &charge} {
		var env events.Envelope
		if err := e.Pool.QueryRow(context.Background(), `SELECT envelope FROM outbox WHERE aggregate = $1 AND type = $2`, order, typ).Scan(&env); err != nil {
			t.Fatal(err)
		}
		if env.Subject != order || env.Sequence < 1 {
			t.Errorf("%s: subject %q sequence %d, want the order id and a saga version", typ, env.Subject, env.Sequence)
		}
		if err := env.Decode(dst); err != nil {
			t.Fatal(err)
		}
	}
	wantReserve := events.ReserveStock{OrderID: order, UserID: user, Attempt: 1,
		Items: []events.StockItem{{ProductID: p1, Quantity: 2}, {ProductID: p2, Quantity: 3}}}
	if diff := cmp.Diff(reserve, wantReserve); diff != "" {
		t.Errorf("reserve (-got +want):\n%s", diff)
	}
	wantCharge := events.ChargePayment{OrderID: order, UserID: user, Attempt: 1, Amount: 2*1250 + 3*399, Currency: "EUR"}
	if diff := cmp.Diff(charge, wantCharge); diff != "" {
		t.Errorf("charge (-got +want):\n%s", diff)
	}
}

// The same reply envelope delivered twice (a redelivery) is handled once.
func TestDuplicateReplyIsHandledOnce(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	user := e.Customer(t)
	order := e.Place(t, user, orders.Line{ProductID: e.Product(t, "Mug", 1250, "EUR"), Quantity: 1})
	e.Reply(t, order, user, events.TypeReplyStockReserved, 1, "")
	f := e.Reply(t, order, user, events.TypeReplyPaymentFailed, 1, "")
	e.Expire(t, order, orderstest.NextAttempt)
	e.Timers(t)     // charge#2
	e.Deliver(t, f) // the same failed#1 again: already in the inbox
	if got, want := e.Outbox(t, order), []string{"order_placed", "reserve#1", "charge#1", "charge#2"}; !cmp.Equal(got, want) {
		t.Errorf("outbox %v, want %v", got, want)
	}
}

// Two timer workers (two orders processes) running at once never transition one saga twice.
func TestTwoWorkersClaimDisjointSagas(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	other := e.WithService(t, orderstest.SlowTiming)
	user := e.Customer(t)
	p := e.Product(t, "Mug", 1250, "EUR")
	var ids []string
	for range 40 {
		ids = append(ids, e.Place(t, user, orders.Line{ProductID: p, Quantity: 1}))
	}
	if _, err := e.Pool.Exec(context.Background(), `UPDATE sagas SET next_attempt_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	claimed := make([]int, 4)
	for i := range claimed {
		svc := e.Svc
		if i%2 == 1 {
			svc = other.Svc
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := svc.RunTimers(context.Background(), 7)
			for err == nil && n > 0 {
				claimed[i] += n
				n, err = svc.RunTimers(context.Background(), 7)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range claimed {
		total += n
	}
	if total != len(ids) {
		t.Errorf("workers claimed %d sagas in all (%v), want %d", total, claimed, len(ids))
	}
	for _, id := range ids {
		if got, want := e.Outbox(t, id), []string{"order_placed", "reserve#1", "reserve#2"}; !cmp.Equal(got, want) {
			t.Errorf("order %s: outbox %v, want %v", id, got, want)
		}
	}
}

// A new orders process (another pool, another Service) resumes a saga from the database:
// its due timer and the next reply are handled there.
func TestRestartResumesFromTheDatabase(t *testing.T) {
	first := orderstest.New(t, orderstest.SlowTiming)
	user := first.Customer(t)
	order := first.Place(t, user, orders.Line{ProductID: first.Product(t, "Mug", 1250, "EUR"), Quantity: 1})
	first.Reply(t, order, user, events.TypeReplyStockReserved, 1, "")
	first.Pool.Close() // the first process is gone

	second := first.WithService(t, orderstest.SlowTiming)
	if n := second.Timers(t); n != 0 {
		t.Fatalf("claimed %d sagas before any timer was due", n)
	}
	second.Expire(t, order, orderstest.NextAttempt)
	if n := second.Timers(t); n != 1 {
		t.Fatalf("claimed %d sagas, want 1", n)
	}
	second.Reply(t, order, user, events.TypeReplyPaymentCharged, 2, "")
	second.Reply(t, order, user, events.TypeReplyStockCommitted, 1, "")
	if got, want := second.Outbox(t, order), []string{"order_placed", "reserve#1", "charge#1", "charge#2", "commit#1", "order_confirmed"}; !cmp.Equal(got, want) {
		t.Errorf("outbox %v, want %v", got, want)
	}
	o, err := second.Svc.Get(context.Background(), order)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range o.Steps {
		steps = append(steps, s.Name+":"+s.Status+":"+itoa(s.Attempts))
	}
	if want := []string{"reserve:done:1", "charge:done:2", "commit:done:1"}; !cmp.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The step timeout fault switch applies to steps that start after it is set.
func TestStepTimeoutFaultShortensTheNextStep(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	if err := e.Svc.SetStepTimeout(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	user := e.Customer(t)
	order := e.Place(t, user, orders.Line{ProductID: e.Product(t, "Mug", 1250, "EUR"), Quantity: 1})
	var left time.Duration
	if err := e.Pool.QueryRow(context.Background(), `SELECT step_deadline_at - created_at FROM sagas WHERE order_id = $1`, order).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != time.Millisecond {
		t.Errorf("step deadline %v after placement, want 1ms (the fault switch)", left)
	}
}

// Forward commands are resent soon (their step has a deadline); commits and compensations
// only after the participants' ack wait, doubling to the same cap.
func TestBackoffIn(t *testing.T) {
	tm := orders.Timing{RetryInterval: 2 * time.Second, SettleRetry: 30 * time.Second, MaxBackoff: 5 * time.Minute}
	got := map[orders.State][]time.Duration{}
	for _, st := range []orders.State{orders.Reserving, orders.Charging, orders.Committing, orders.Refunding, orders.Releasing} {
		for a := 1; a <= 6; a++ {
			got[st] = append(got[st], tm.BackoffIn(st, a))
		}
	}
	s := time.Second
	fwd := []time.Duration{2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s}
	settle := []time.Duration{30 * s, 60 * s, 120 * s, 240 * s, 300 * s, 300 * s}
	want := map[orders.State][]time.Duration{orders.Reserving: fwd, orders.Charging: fwd,
		orders.Committing: settle, orders.Refunding: settle, orders.Releasing: settle}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("backoff by state (-got +want):\n%s", diff)
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	tm := orders.Timing{StepTimeout: time.Second, SagaTimeout: time.Second, RetryInterval: time.Second, MaxBackoff: 30 * time.Second}
	var got []time.Duration
	for a := 1; a <= 8; a++ {
		got = append(got, tm.Backoff(a))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("backoff (-got +want):\n%s", diff)
	}
}
