// Package orderstest drives the orders domain against a real PostgreSQL schema in tests:
// it seeds the local copies through the same event handler the consumers use, places
// orders, feeds replies built with events.New to the saga's reply handler, forces timers
// into the past, and reads back what the saga wrote to the outbox.
package orderstest

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/pgstore"
	"polyshop/shared/events"
	"polyshop/shared/testenv/pgtest"
)

// Consumers used as inbox names by the helpers (the service uses its durable names).
const (
	CopyConsumer  = "test-copies"
	ReplyConsumer = "test-replies"
)

// SlowTiming makes every timer far in the future, so only timers a test forces fire.
var SlowTiming = orders.Timing{StepTimeout: 5 * time.Minute, SagaTimeout: 10 * time.Minute,
	RetryInterval: time.Minute, MaxBackoff: 5 * time.Minute}

// Env is one test's schema, store and service.
type Env struct {
	Pool  *pgxpool.Pool
	URL   string
	Store *pgstore.Store
	Svc   *orders.Service
	seq   *atomic.Int64
}

// New migrates a fresh schema and returns a Service over it with timing t.
func New(t testing.TB, timing orders.Timing) Env {
	t.Helper()
	pool, url := pgtest.Schema(t, "ORDERS_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	st := pgstore.New(pool, timing.StepTimeout)
	return Env{Pool: pool, URL: url, Store: st, Svc: orders.NewService(st, timing, nil), seq: new(atomic.Int64)}
}

// WithService returns a copy of e with another Service (another "process") on the same
// schema, with its own pool.
func (e Env) WithService(t testing.TB, timing orders.Timing) Env {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), e.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := pgstore.New(pool, timing.StepTimeout)
	return Env{Pool: pool, URL: e.URL, Store: st, Svc: orders.NewService(st, timing, nil), seq: e.seq}
}

// Apply feeds a users or catalog event to the copy handler.
func (e Env) Apply(t testing.TB, typ, subject string, seq int64, data any) {
	t.Helper()
	env, err := events.New(context.Background(), typ, subject, seq, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.ApplyEvent(context.Background(), CopyConsumer, env); err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
}

// Customer registers a user with an address and returns its id.
func (e Env) Customer(t testing.TB) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	e.Apply(t, events.TypeUserRegistered, id, 1, events.UserRegistered{UserID: id, Email: id + "@example.com", Name: "Ada", Role: "customer", RegisteredAt: time.Now()})
	e.Apply(t, events.TypeUserAddressChanged, id, 2, events.UserAddressChanged{UserID: id,
		Address: events.Address{Street: "1 Main St", City: "Lyon", PostalCode: "69001", Country: "FR"}, ChangedAt: time.Now()})
	return id
}

// Product creates a product copy priced amount minor units of currency.
func (e Env) Product(t testing.TB, name string, amount int64, currency string) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	e.Apply(t, events.TypeProductCreated, id, 1, events.ProductCreated{ProductID: id, Name: name,
		Price: events.Money{Amount: amount, Currency: currency}, InitialStock: 10, CreatedAt: time.Now()})
	return id
}

// Place places an order of lines (productId, quantity pairs) for user and returns its id.
func (e Env) Place(t testing.TB, user string, lines ...orders.Line) string {
	t.Helper()
	p, err := e.Svc.Place(context.Background(), user, uuid.NewString(), lines)
	if err != nil {
		t.Fatalf("place: %v", err)
	}
	return p.ID
}

// Reply feeds a reply of typ for order (attempt, reason; error text for payments failed)
// to the reply handler and returns its envelope.
func (e Env) Reply(t testing.TB, order, user, typ string, attempt int, reason string) events.Envelope {
	t.Helper()
	var data any
	if strings.HasPrefix(typ, "polyshop.inventory.") {
		data = events.InventoryReply{OrderID: order, UserID: user, Attempt: attempt, Reason: reason, At: time.Now().UTC()}
	} else {
		p := events.PaymentReply{OrderID: order, UserID: user, Attempt: attempt, Reason: reason, At: time.Now().UTC()}
		switch typ {
		case events.TypeReplyPaymentCharged:
			p.PaymentID = "pay-" + order[:8]
		case events.TypeReplyPaymentFailed:
			p.Error = "processor unavailable"
		}
		data = p
	}
	env, err := events.New(context.Background(), typ, order, e.seq.Add(1), data)
	if err != nil {
		t.Fatal(err)
	}
	e.Deliver(t, env)
	return env
}

// Deliver hands env to the reply handler as the reply consumer would.
func (e Env) Deliver(t testing.TB, env events.Envelope) {
	t.Helper()
	if err := e.Svc.HandleReply(context.Background(), ReplyConsumer, env); err != nil {
		t.Fatalf("handle %s: %v", env.Type, err)
	}
}

// Timer columns Expire can force into the past.
const (
	NextAttempt  = "next_attempt_at"
	StepDeadline = "step_deadline_at"
	SagaDeadline = "saga_deadline_at"
)

// Expire sets column of order's saga one second before the database's now(); for
// SagaDeadline, a later step deadline is pulled back too (it never exceeds the saga's).
func (e Env) Expire(t testing.TB, order, column string) {
	t.Helper()
	q := `UPDATE sagas SET ` + column + ` = now() - interval '1 second' WHERE order_id = $1`
	if column == SagaDeadline {
		q = `UPDATE sagas SET saga_deadline_at = now() - interval '1 second',
			step_deadline_at = CASE WHEN step_deadline_at IS NULL THEN NULL ELSE now() - interval '1 second' END
			WHERE order_id = $1`
	}
	if _, err := e.Pool.Exec(context.Background(), q, order); err != nil {
		t.Fatal(err)
	}
}

// Timers runs one pass of the timer worker and returns how many sagas it claimed.
func (e Env) Timers(t testing.TB) int {
	t.Helper()
	n, err := e.Svc.RunTimers(context.Background(), 100)
	if err != nil {
		t.Fatalf("timers: %v", err)
	}
	return n
}

// Outbox returns what the saga wrote for order, in outbox order, as "<short type>#<attempt>"
// for commands ("reserve#1", "charge#2", "refund#1/timeout") and the short type for events
// ("order_placed", "order_cancelled/out_of_stock").
func (e Env) Outbox(t testing.TB, order string) []string {
	t.Helper()
	rows, err := e.Pool.Query(context.Background(), `SELECT type, envelope->'data' FROM outbox WHERE aggregate = $1 ORDER BY seq`, order)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			typ  string
			data []byte
		)
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		var d struct {
			Attempt int    `json:"attempt"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		short := strings.TrimSuffix(strings.TrimPrefix(typ, "polyshop.orders."), ".v1")
		if i := strings.LastIndex(short, "."); i >= 0 { // cmd.inventory.reserve → reserve
			short = short[i+1:] + "#" + strconv.Itoa(d.Attempt)
		}
		if d.Reason != "" {
			short += "/" + d.Reason
		}
		out = append(out, short)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// SagaState is the saga's and the order's state as a test compares it.
type SagaState struct {
	State       string
	OrderStatus string
	Reason      string
}

// State reads order's saga state, public status and reason.
func (e Env) State(t testing.TB, order string) SagaState {
	t.Helper()
	var s SagaState
	err := e.Pool.QueryRow(context.Background(), `SELECT s.state, o.status, coalesce(o.cancel_reason, coalesce(s.reason, ''))
		FROM sagas s JOIN orders o ON o.id = s.order_id WHERE s.order_id = $1`, order).Scan(&s.State, &s.OrderStatus, &s.Reason)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
