package payments_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/payments/internal/payments"
	"polyshop/services/payments/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/testenv/pgtest"
)

// setup returns a Service over a fresh schema of the real payments database.
func setup(t testing.TB, opts payments.Options) (*payments.Service, *pgxpool.Pool, string) {
	t.Helper()
	pool, url := pgtest.Schema(t, "PAYMENTS_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return payments.NewService(pgstore.New(pool), opts), pool, url
}

func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func chargeCmd(t testing.TB, orderID, userID string, attempt int, amount int64) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), events.TypeCmdChargePayment, orderID, int64(attempt),
		events.ChargePayment{OrderID: orderID, UserID: userID, Attempt: attempt, Amount: amount, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func refundCmd(t testing.TB, orderID, userID string, attempt int) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), events.TypeCmdRefundPayment, orderID, int64(attempt),
		events.RefundPayment{OrderID: orderID, UserID: userID, Attempt: attempt, Reason: "timeout"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// msg is what a test compares of an outbox row: type, sequence and the payload fields that
// carry meaning. PaymentID is "" or "<id>" (whether it is the stored payment's id).
type msg struct {
	Type      string
	Seq       int64
	Attempt   int
	Amount    *events.Money
	Reason    string
	PaymentID string
}

// outboxRows returns the outbox rows in commit order, checking every id is distinct.
func outboxRows(t testing.TB, pool *pgxpool.Pool, paymentID string) []msg {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT envelope::text FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []msg
	seen := map[string]bool{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		e, err := events.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] {
			t.Errorf("envelope id %s appears twice in the outbox", e.ID)
		}
		seen[e.ID] = true
		m := msg{Type: e.Type, Seq: e.Sequence}
		pid := ""
		switch e.Type {
		case events.TypePaymentCharged:
			var p events.PaymentCharged
			mustDecode(t, e, &p)
			m.Amount, pid = &p.Amount, p.PaymentID
		case events.TypePaymentDeclined:
			var p events.PaymentDeclined
			mustDecode(t, e, &p)
			m.Amount, m.Reason, pid = &p.Amount, p.Reason, p.PaymentID
		case events.TypePaymentRefunded:
			var p events.PaymentRefunded
			mustDecode(t, e, &p)
			m.Amount, m.Reason, pid = &p.Amount, p.Reason, p.PaymentID
		default:
			var p events.PaymentReply
			mustDecode(t, e, &p)
			m.Attempt, m.Amount, m.Reason, pid = p.Attempt, p.Amount, p.Reason, p.PaymentID
		}
		switch {
		case pid == "":
		case pid == paymentID:
			m.PaymentID = "<id>"
		default:
			m.PaymentID = "<other>"
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustDecode(t testing.TB, e events.Envelope, v any) {
	t.Helper()
	if err := e.Decode(v); err != nil {
		t.Fatal(err)
	}
}

func eur(a int64) *events.Money { return &events.Money{Amount: a, Currency: "EUR"} }

// step is one command (or fault change) of a scenario.
type step struct {
	verb    string // "charge", "refund", "faults", "clear"
	attempt int
	faults  payments.Faults
	want    payments.Outcome
}

// The participant table of SAGA.md, one scenario per row: each runs its commands against a
// fresh schema and compares the outcomes, the stored payment and every outbox row.
func TestCommandScenarios(t *testing.T) {
	const (
		charged   = events.TypeReplyPaymentCharged
		declined  = events.TypeReplyPaymentDeclined
		failed    = events.TypeReplyPaymentFailed
		refunded  = events.TypeReplyPaymentRefunded
		evCharged = events.TypePaymentCharged
		evDecl    = events.TypePaymentDeclined
		evRefund  = events.TypePaymentRefunded
	)
	type stored struct {
		Status   payments.Status
		Amount   events.Money
		Refunded *events.Money
		Reason   string
		Replies  int64
		Version  int64
	}
	tests := []struct {
		name   string
		steps  []step
		stored *stored
		out    []msg
	}{{
		name:   "charge",
		steps:  []step{{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "charged"}}},
		stored: &stored{Status: payments.StatusCharged, Amount: *eur(1299), Replies: 1, Version: 1},
		out: []msg{
			{Type: charged, Seq: 1, Attempt: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evCharged, Seq: 1, Amount: eur(1299), PaymentID: "<id>"},
		},
	}, {
		name: "a repeated charge re-sends the stored reply as a new envelope",
		steps: []step{
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "charged"}},
			{verb: "charge", attempt: 2, want: payments.Outcome{Reply: "charged", Resent: true}},
		},
		stored: &stored{Status: payments.StatusCharged, Amount: *eur(1299), Replies: 2, Version: 1},
		out: []msg{
			{Type: charged, Seq: 1, Attempt: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evCharged, Seq: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: charged, Seq: 2, Attempt: 2, Amount: eur(1299), PaymentID: "<id>"},
		},
	}, {
		name: "decline rate 1: declined, stored and final",
		steps: []step{
			{verb: "faults", faults: payments.Faults{DeclineRate: 1}},
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "declined"}},
			{verb: "clear"},
			{verb: "charge", attempt: 2, want: payments.Outcome{Reply: "declined", Resent: true}},
		},
		stored: &stored{Status: payments.StatusDeclined, Amount: *eur(1299), Reason: payments.ReasonCardDeclined, Replies: 2, Version: 1},
		out: []msg{
			{Type: declined, Seq: 1, Attempt: 1, Reason: "card_declined", PaymentID: "<id>"},
			{Type: evDecl, Seq: 1, Amount: eur(1299), Reason: "card_declined", PaymentID: "<id>"},
			{Type: declined, Seq: 2, Attempt: 2, Reason: "card_declined", PaymentID: "<id>"},
		},
	}, {
		name: "error rate 1: failed and nothing stored; the retry with the fault cleared charges",
		steps: []step{
			{verb: "faults", faults: payments.Faults{ErrorRate: 1, DeclineRate: 1}},
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "failed"}},
			{verb: "charge", attempt: 2, want: payments.Outcome{Reply: "failed"}},
			{verb: "clear"},
			{verb: "charge", attempt: 3, want: payments.Outcome{Reply: "charged"}},
		},
		stored: &stored{Status: payments.StatusCharged, Amount: *eur(1299), Replies: 1, Version: 1},
		out: []msg{
			{Type: failed, Seq: 1, Attempt: 1},
			{Type: failed, Seq: 1, Attempt: 2},
			{Type: charged, Seq: 1, Attempt: 3, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evCharged, Seq: 1, Amount: eur(1299), PaymentID: "<id>"},
		},
	}, {
		name: "refund after charge gives back exactly the charge; a second refund changes nothing",
		steps: []step{
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "charged"}},
			{verb: "refund", attempt: 1, want: payments.Outcome{Reply: "refunded"}},
			{verb: "refund", attempt: 2, want: payments.Outcome{Reply: "refunded", Resent: true}},
		},
		stored: &stored{Status: payments.StatusRefunded, Amount: *eur(1299), Refunded: eur(1299), Reason: "timeout", Replies: 3, Version: 2},
		out: []msg{
			{Type: charged, Seq: 1, Attempt: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evCharged, Seq: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: refunded, Seq: 2, Attempt: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evRefund, Seq: 2, Amount: eur(1299), Reason: "timeout", PaymentID: "<id>"},
			{Type: refunded, Seq: 3, Attempt: 2, Amount: eur(1299), PaymentID: "<id>"},
		},
	}, {
		name: "a charge after its refund re-sends the stored charged",
		steps: []step{
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "charged"}},
			{verb: "refund", attempt: 1, want: payments.Outcome{Reply: "refunded"}},
			{verb: "charge", attempt: 2, want: payments.Outcome{Reply: "charged", Resent: true}},
		},
		stored: &stored{Status: payments.StatusRefunded, Amount: *eur(1299), Refunded: eur(1299), Reason: "timeout", Replies: 3, Version: 2},
		out: []msg{
			{Type: charged, Seq: 1, Attempt: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evCharged, Seq: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: refunded, Seq: 2, Attempt: 1, Amount: eur(1299), PaymentID: "<id>"},
			{Type: evRefund, Seq: 2, Amount: eur(1299), Reason: "timeout", PaymentID: "<id>"},
			{Type: charged, Seq: 3, Attempt: 2, Amount: eur(1299), PaymentID: "<id>"},
		},
	}, {
		name: "refund before charge: tombstone, refunded 0, the late charges are declined refunded",
		steps: []step{
			{verb: "refund", attempt: 1, want: payments.Outcome{Reply: "refunded"}},
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "declined", Resent: true}},
			{verb: "refund", attempt: 2, want: payments.Outcome{Reply: "refunded", Resent: true}},
			{verb: "charge", attempt: 2, want: payments.Outcome{Reply: "declined", Resent: true}},
		},
		stored: &stored{Status: payments.StatusTombstone, Reason: "timeout", Replies: 4, Version: 1},
		out: []msg{
			{Type: refunded, Seq: 1, Attempt: 1, Amount: &events.Money{}, PaymentID: "<id>"},
			{Type: declined, Seq: 2, Attempt: 1, Reason: "refunded", PaymentID: "<id>"},
			{Type: refunded, Seq: 3, Attempt: 2, Amount: &events.Money{}, PaymentID: "<id>"},
			{Type: declined, Seq: 4, Attempt: 2, Reason: "refunded", PaymentID: "<id>"},
		},
	}, {
		name: "refund of a declined charge: refunded 0, nothing changes",
		steps: []step{
			{verb: "faults", faults: payments.Faults{DeclineRate: 1}},
			{verb: "charge", attempt: 1, want: payments.Outcome{Reply: "declined"}},
			{verb: "refund", attempt: 1, want: payments.Outcome{Reply: "refunded", Resent: true}},
		},
		stored: &stored{Status: payments.StatusDeclined, Amount: *eur(1299), Reason: payments.ReasonCardDeclined, Replies: 2, Version: 1},
		out: []msg{
			{Type: declined, Seq: 1, Attempt: 1, Reason: "card_declined", PaymentID: "<id>"},
			{Type: evDecl, Seq: 1, Amount: eur(1299), Reason: "card_declined", PaymentID: "<id>"},
			{Type: refunded, Seq: 2, Attempt: 1, Amount: &events.Money{Currency: "EUR"}, PaymentID: "<id>"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			svc, pool, _ := setup(t, payments.Options{})
			order, user := newID(t), newID(t)
			for i, s := range tt.steps {
				var got payments.Outcome
				var err error
				switch s.verb {
				case "charge":
					got, err = svc.Charge(ctx, chargeCmd(t, order, user, s.attempt, 1299))
				case "refund":
					got, err = svc.Refund(ctx, refundCmd(t, order, user, s.attempt))
				case "faults":
					f := s.faults
					_, err = svc.PatchFaults(ctx, payments.FaultsPatch{DeclineRate: &f.DeclineRate, ErrorRate: &f.ErrorRate})
				case "clear":
					err = svc.ClearFaults(ctx)
				}
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.verb, err)
				}
				if diff := cmp.Diff(got, s.want); diff != "" {
					t.Errorf("step %d (%s) outcome (-got +want):\n%s", i, s.verb, diff)
				}
			}
			ps, err := svc.ByOrder(ctx, order)
			if err != nil {
				t.Fatal(err)
			}
			var got *stored
			pid := ""
			if len(ps) > 1 {
				t.Fatalf("order has %d payments, want at most 1", len(ps))
			}
			if len(ps) == 1 {
				p := ps[0]
				pid = p.ID
				got = &stored{Status: p.Status, Amount: p.Amount, Refunded: p.Refunded, Reason: p.Reason, Replies: p.Replies, Version: p.Version}
				if p.OrderID != order || p.UserID != user {
					t.Errorf("payment order/user = %s/%s, want %s/%s", p.OrderID, p.UserID, order, user)
				}
			}
			if diff := cmp.Diff(got, tt.stored); diff != "" {
				t.Errorf("stored payment (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(outboxRows(t, pool, pid), tt.out); diff != "" {
				t.Errorf("outbox (-got +want):\n%s", diff)
			}
		})
	}
}

// 32 charges of one order at once: one payment row, one payment_charged event, and 32
// charged replies with distinct sequences, all naming the same payment.
func TestConcurrentChargesOfOneOrderChargeOnce(t *testing.T) {
	ctx := context.Background()
	svc, pool, _ := setup(t, payments.Options{})
	order, user := newID(t), newID(t)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		cmd := chargeCmd(t, order, user, i+1, 500)
		wg.Go(func() {
			if _, err := svc.Charge(ctx, cmd); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE order_id = $1`, order).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("payments rows = %d, want 1", rows)
	}
	ps, _ := svc.ByOrder(ctx, order)
	msgs := outboxRows(t, pool, ps[0].ID)
	counts := map[string]int{}
	seqs := map[int64]bool{}
	for _, m := range msgs {
		counts[m.Type]++
		if m.PaymentID != "<id>" {
			t.Errorf("message %+v does not name the stored payment", m)
		}
		if m.Type == events.TypeReplyPaymentCharged {
			seqs[m.Seq] = true
		}
	}
	want := map[string]int{events.TypeReplyPaymentCharged: n, events.TypePaymentCharged: 1}
	if diff := cmp.Diff(counts, want); diff != "" {
		t.Errorf("outbox types (-got +want):\n%s", diff)
	}
	if len(seqs) != n || ps[0].Replies != n {
		t.Errorf("%d distinct reply sequences, stored replies %d; want %d", len(seqs), ps[0].Replies, n)
	}
}

// Charges and refunds of one order racing: whichever comes first, the end state is
// consistent — no money held (refunded, or a tombstone with every charge declined).
func TestConcurrentChargesAndRefundsEndConsistent(t *testing.T) {
	ctx := context.Background()
	svc, pool, _ := setup(t, payments.Options{})
	order, user := newID(t), newID(t)
	var wg sync.WaitGroup
	for i := range 16 {
		c, r := chargeCmd(t, order, user, i+1, 700), refundCmd(t, order, user, i+1)
		wg.Go(func() {
			if _, err := svc.Charge(ctx, c); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := svc.Refund(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ps, err := svc.ByOrder(ctx, order)
	if err != nil || len(ps) != 1 {
		t.Fatalf("payments = %+v, %v; want one", ps, err)
	}
	counts := map[string]int{}
	for _, m := range outboxRows(t, pool, ps[0].ID) {
		counts[m.Type]++
	}
	switch ps[0].Status {
	case payments.StatusRefunded:
		if *ps[0].Refunded != *eur(700) || counts[events.TypePaymentCharged] != 1 || counts[events.TypePaymentRefunded] != 1 {
			t.Errorf("refunded payment %+v with events %v", ps[0], counts)
		}
	case payments.StatusTombstone:
		if counts[events.TypeReplyPaymentDeclined] != 16 || counts[events.TypePaymentCharged] != 0 {
			t.Errorf("tombstone with messages %v, want 16 declined and no charge", counts)
		}
	default:
		t.Errorf("status %s, want refunded or tombstone", ps[0].Status)
	}
	if counts[events.TypeReplyPaymentRefunded] != 16 {
		t.Errorf("%d refunded replies, want 16", counts[events.TypeReplyPaymentRefunded])
	}
}

// The decision is injectable: it is asked with the stored rates, error first.
func TestFaultRatesAreDrawnFromTheStoredSwitches(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var asked []float64
	answers := []bool{false, true} // not failed, declined
	svc, _, _ := setup(t, payments.Options{Decide: func(rate float64) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, rate)
		a := answers[0]
		answers = answers[1:]
		return a
	}})
	d, e := 0.25, 0.5
	if _, err := svc.PatchFaults(ctx, payments.FaultsPatch{DeclineRate: &d, ErrorRate: &e}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Charge(ctx, chargeCmd(t, newID(t), newID(t), 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, payments.Outcome{Reply: "declined"}); diff != "" {
		t.Errorf("outcome (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(asked, []float64{0.5, 0.25}); diff != "" {
		t.Errorf("rates asked (-got +want):\n%s", diff)
	}
}

func TestInvalidCommandsArePermanent(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := setup(t, payments.Options{})
	tests := []struct {
		name string
		data events.ChargePayment
	}{
		{"order id", events.ChargePayment{OrderID: "x", UserID: newID(t), Amount: 1, Currency: "EUR"}},
		{"amount", events.ChargePayment{OrderID: newID(t), UserID: newID(t), Amount: 0, Currency: "EUR"}},
		{"currency", events.ChargePayment{OrderID: newID(t), UserID: newID(t), Amount: 1, Currency: "eur"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := events.New(ctx, events.TypeCmdChargePayment, newID(t), 1, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Charge(ctx, e); !errors.Is(err, events.ErrInvalid) {
				t.Errorf("Charge = %v, want an error matching events.ErrInvalid", err)
			}
		})
	}
}

// Fault switches are stored: a new process (a new pool on the same schema) sees them, and a
// partial update changes only the fields it names.
func TestFaultsSurviveARestart(t *testing.T) {
	ctx := context.Background()
	svc, _, url := setup(t, payments.Options{})
	d, l, down := 0.3, 250, true
	if _, err := svc.PatchFaults(ctx, payments.FaultsPatch{DeclineRate: &d, LatencyMs: &l}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PatchFaults(ctx, payments.FaultsPatch{Down: &down}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PatchFaults(ctx, payments.FaultsPatch{}); err != nil {
		t.Fatal(err)
	}
	pool2, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	restarted := payments.NewService(pgstore.New(pool2), payments.Options{})
	got, err := restarted.Faults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, payments.Faults{DeclineRate: 0.3, LatencyMs: 250, Down: true}); diff != "" {
		t.Errorf("faults after restart (-got +want):\n%s", diff)
	}
	if _, err := restarted.ByOrder(ctx, newID(t)); !errors.Is(err, payments.ErrDown) {
		t.Errorf("ByOrder while down = %v, want ErrDown", err)
	}
	bad := 1.5
	var ferr *payments.FieldError
	if _, err := restarted.PatchFaults(ctx, payments.FaultsPatch{ErrorRate: &bad}); !errors.As(err, &ferr) || ferr.Field != "errorRate" {
		t.Errorf("errorRate 1.5: %v, want a FieldError naming errorRate", err)
	}
}
