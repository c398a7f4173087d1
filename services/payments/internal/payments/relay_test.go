package payments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/payments/internal/payments"
	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/natstest"
)

// testPublisher publishes into the tests' own namespace (TEST_PAYMENTS, never the live
// PAYMENTS), under a test-only type ("polyshop.test.payments.test_<unique>.<rest>"), so
// that no real consumer (orders, activity) takes a test's replies for real ones.
type testPublisher struct {
	pub  outbox.Publisher
	base string
}

func (p testPublisher) Publish(ctx context.Context, e events.Envelope) error {
	e.Type, e.Source = p.testType(e.Type), p.testSource()
	return p.pub.Publish(ctx, e)
}

// testSource is the source matching the test type's owner ("test"), so the envelope stays valid.
func (p testPublisher) testSource() string {
	return events.SourcePrefix + events.OwnerOf(p.base+".x.v1")
}

func (p testPublisher) testType(typ string) string {
	return strings.Replace(typ, "polyshop.payments.", p.base+".", 1)
}

// A crash between the state change and the relay loses no reply: the charge commits with
// its reply in the outbox and no relay runs (the process died); a relay started afresh,
// in a new process (a new pool), publishes the reply and the event, once.
func TestCrashBeforeTheRelayLosesNoReply(t *testing.T) {
	ctx := context.Background()
	svc, pool, url := setup(t, payments.Options{})
	conn := natstest.TestConn(t)
	stream := natstest.Stream(t, conn, "payments")
	pub := testPublisher{pub: conn, base: strings.TrimSuffix(natstest.EventType(t, "payments"), ".v1")}

	order, user := newID(t), newID(t)
	if _, err := svc.Charge(ctx, chargeCmd(t, order, user, 1, 4200)); err != nil {
		t.Fatal(err)
	}
	pool.Close() // the process is gone before any relay ran

	pool2, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	want := pending(t, pool2)
	if len(want) != 2 {
		t.Fatalf("%d pending outbox rows after the charge, want 2 (reply and event)", len(want))
	}
	store := pgoutbox.New(pool2)
	defer store.Close()
	relayCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = outbox.NewRelay(store, pub, nil, outbox.WithInterval(100*time.Millisecond)).Run(relayCtx)
	}()
	defer func() { stop(); <-done }()

	s, err := conn.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range want {
		subject := events.SubjectFor(pub.testType(e.Type))
		var got events.Envelope
		waitFor(t, "the "+e.Type+" message on "+subject, func() bool {
			m, err := s.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				return false
			}
			got, err = events.Parse(m.Data)
			return err == nil
		})
		e.Type, e.Source = pub.testType(e.Type), pub.testSource()
		got.Data, e.Data = compact(t, got.Data), compact(t, e.Data)
		if diff := cmp.Diff(got, e); diff != "" {
			t.Errorf("published %s (-got +want):\n%s", e.Type, diff)
		}
	}
	waitFor(t, "the outbox to be marked published", func() bool { return len(pending(t, pool2)) == 0 })
}

func compact(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pending returns the outbox rows not yet published, in order.
func pending(t testing.TB, pool *pgxpool.Pool) []events.Envelope {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT envelope::text FROM outbox WHERE published_at IS NULL ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.Envelope
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		e, err := events.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond until it holds or 15 s pass. It waits for asynchronous delivery; it
// asserts nothing about how long that takes.
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
