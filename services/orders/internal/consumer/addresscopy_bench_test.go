package consumer_test

// users commit → orders' address copy visible, end to end on the real engines, at a
// constant arrival rate (issue 15: p99 ≤ 50 ms at 200 events/s):
//
//	go test -run '^$' -bench AddressCopyLatency -benchtime 2000x ./internal/consumer/
//
// The path is the production one, pointed at test names:
//   - users' side: a users-style table and pgoutbox's table in a per-test schema; each
//     address change is one transaction that bumps the user's version and adds
//     users.address_changed.v1 with pgoutbox.Add (as users' service does). The schema lives
//     in the orders database, with orders' test credentials (the bench borrows no other
//     service's role); both databases are on the same PostgreSQL cluster.
//   - the relay: outbox.NewRelay with users' settings (one relay, default batch, window
//     and interval), woken by LISTEN/NOTIFY, publishing asynchronously on the TEST_USERS
//     stream (natstest) under the event's real type.
//   - orders' side: consumer.Start with orders' settings (ORDERS_CONSUMER_CONCURRENCY
//     default, a pgpool.Open pool of 16 connections like main), the real copy handler
//     writing into a per-test orders schema.
//
// Open model: event i is committed at start + i/rate by its own goroutine, whatever the
// earlier commits are doing, so a slow stage shows up as latency, not as a lower rate.
// "Visible" is the moment the copy handler returned nil, i.e. orders' transaction that
// wrote the customers row has committed (broker.Conn.OnHandled, called before the ack);
// no polling. Latencies: commit→visible from the return of users' COMMIT,
// intended→visible from the scheduled arrival time (includes users' own commit and any
// lateness of the producer: the coordinated-omission-free figure), commit→relayed up to
// JetStream's ack of the relay's publish. Percentiles from HdrHistogram, in ms.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/orders/internal/consumer"
	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/services/orders/internal/pgstore"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgpool"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

var (
	benchRate        = flag.Int("addrcopy.rate", 200, "address changes committed per second")
	benchConcurrency = flag.String("addrcopy.concurrency", "16", "comma-separated consumer concurrencies to run, one sub-benchmark each")
)

// benchUsers is how many users the changes cycle over; at 200/s a user changes again
// every 2.5 s, so the copy handler's per-user sequence check never drops an event.
const benchUsers = 500

func BenchmarkAddressCopyLatency(b *testing.B) {
	for _, c := range strings.Split(*benchConcurrency, ",") {
		var n int
		if _, err := fmt.Sscan(c, &n); err != nil || n < 1 {
			b.Fatalf("-addrcopy.concurrency %q", *benchConcurrency)
		}
		b.Run(fmt.Sprintf("rate=%d/concurrency=%d", *benchRate, n), func(b *testing.B) { addressCopyLatency(b, *benchRate, n) })
	}
}

// stamps are the moments of one event; zero until reached.
type stamps struct {
	intended, committed    time.Time
	sent, relayed, visible atomic.Int64 // unix nanoseconds
}

func addressCopyLatency(b *testing.B, rate, concurrency int) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// users' side.
	_, usersURL := pgtest.Schema(b, "ORDERS_DATABASE_URL")
	users, err := pgpool.Open(ctx, usersURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(users.Close)
	if _, err := users.Exec(ctx, `CREATE TABLE users (id uuid PRIMARY KEY, street text NOT NULL, city text NOT NULL,
		postal_code text NOT NULL, country text NOT NULL, version bigint NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if err := pgoutbox.Migrate(ctx, users); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, benchUsers)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	if _, err := users.Exec(ctx, `INSERT INTO users SELECT unnest($1::uuid[]), 'street', 'Lyon', '69001', 'FR', 1`, ids); err != nil {
		b.Fatal(err)
	}

	// orders' side: its schema, a pool sized as main's, the real service.
	env := orderstest.New(b, orderstest.SlowTiming)
	pool, err := pgpool.Open(ctx, env.URL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	svc := orders.NewService(pgstore.New(pool, orderstest.SlowTiming.StepTimeout), orderstest.SlowTiming, nil)

	// The broker: one connection for users' relay, one for orders' consumer.
	relayConn, consConn := natstest.TestConn(b), natstest.TestConn(b)
	stream := natstest.Stream(b, relayConn, "users")

	var mu sync.Mutex
	byID := map[string]*stamps{}
	lookup := func(id string) *stamps {
		mu.Lock()
		defer mu.Unlock()
		return byID[id]
	}
	stamp := func(field func(*stamps) *atomic.Int64) func(id string) {
		return func(id string) {
			if s := lookup(id); s != nil {
				field(s).CompareAndSwap(0, time.Now().UnixNano())
			}
		}
	}
	pub := &testSubjectPub{c: relayConn,
		sent:  stamp(func(s *stamps) *atomic.Int64 { return &s.sent }),
		acked: stamp(func(s *stamps) *atomic.Int64 { return &s.relayed })}
	var visibleN atomic.Int64
	consConn.OnHandled(func(_ string, e events.Envelope) {
		if s := lookup(e.ID); s != nil && s.visible.CompareAndSwap(0, time.Now().UnixNano()) {
			visibleN.Add(1)
		}
	})

	rctx, stopRelay := context.WithCancel(ctx)
	obox := pgoutbox.New(users)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = outbox.NewRelay(obox, pub, quiet).Run(rctx)
	}()
	b.Cleanup(func() { stopRelay(); <-relayDone; obox.Close() })

	spec := consumer.Spec{Stream: stream, Durable: natstest.Durable(b, consConn, stream, "orders-users"),
		Subjects: natstest.Subjects(events.TypeUserRegistered, events.TypeUserAddressChanged, events.TypeUserDeleted)}
	group := consumer.Start(ctx, consConn, svc, []consumer.Spec{spec},
		consumer.Options{Concurrency: concurrency, DeliverNew: true, RetryEvery: 50 * time.Millisecond})
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := group.Stop(sctx); err != nil {
			b.Error(err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); len(group.Attached()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("consumer not attached within 10s")
		}
	}

	var seq atomic.Int64 // event number, to pick the user
	commit := func(s *stamps) error {
		i := seq.Add(1)
		user := ids[int(i)%benchUsers]
		addr := events.Address{Street: fmt.Sprintf("%d Main St", i), City: "Lyon", PostalCode: "69001", Country: "FR"}
		err := pgx.BeginFunc(ctx, users, func(tx pgx.Tx) error {
			var version int64
			if err := tx.QueryRow(ctx, `UPDATE users SET street = $2, version = version + 1 WHERE id = $1 RETURNING version`,
				user, addr.Street).Scan(&version); err != nil {
				return err
			}
			e, err := events.New(ctx, events.TypeUserAddressChanged, user, version,
				events.UserAddressChanged{UserID: user, Address: addr, ChangedAt: time.Now().UTC()})
			if err != nil {
				return err
			}
			mu.Lock()
			byID[e.ID] = s
			mu.Unlock()
			return pgoutbox.Add(ctx, tx, e)
		})
		s.committed = time.Now()
		return err
	}
	// run commits n events at rate from now on (open model) and returns their stamps once
	// every one is visible.
	run := func(n int) []*stamps {
		all := make([]*stamps, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := time.Now()
		interval := time.Second / time.Duration(rate)
		for i := range n {
			s := &stamps{intended: start.Add(time.Duration(i) * interval)}
			all[i] = s
			time.Sleep(time.Until(s.intended))
			wg.Go(func() {
				if err := commit(s); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatalf("commit: %v", err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			missing := 0
			for _, s := range all {
				if s.visible.Load() == 0 {
					missing++
				}
			}
			if missing == 0 {
				return all
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d events not visible in orders after 30s", missing, n)
			}
		}
	}

	time.Sleep(200 * time.Millisecond) // the relay is listening
	run(rate)                          // one second of warm-up: connections, plans, caches
	load0 := testenv.LoadAvg()
	b.ResetTimer()
	all := run(b.N)
	b.StopTimer()
	load1 := testenv.LoadAvg()

	// The copy holds what users committed last for every user (the measured path worked).
	var wrong int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM customers c JOIN unnest($1::text[], $2::text[]) AS w(id, street)
		ON c.user_id = w.id::uuid WHERE c.street IS DISTINCT FROM w.street`, ids, lastStreets(ctx, b, users, ids)).Scan(&wrong); err != nil {
		b.Fatal(err)
	}
	if wrong > 0 {
		b.Fatalf("%d copies differ from users' last address", wrong)
	}

	vis, fromIntended, userCommit, wake, publish, deliver := hist(), hist(), hist(), hist(), hist(), hist()
	for _, s := range all {
		v, r, sent := time.Unix(0, s.visible.Load()), time.Unix(0, s.relayed.Load()), time.Unix(0, s.sent.Load())
		record(b, vis, v.Sub(s.committed))
		record(b, fromIntended, v.Sub(s.intended))
		record(b, userCommit, s.committed.Sub(s.intended))
		record(b, wake, sent.Sub(s.committed))
		record(b, publish, r.Sub(sent))
		record(b, deliver, v.Sub(r))
	}
	elapsed := all[len(all)-1].intended.Sub(all[0].intended)
	if elapsed > 0 {
		b.ReportMetric(float64(len(all)-1)/elapsed.Seconds(), "events/s")
	}
	for _, m := range []struct {
		name string
		h    *hdrhistogram.Histogram
	}{{"visible", vis}, {"fromIntended", fromIntended}} {
		b.ReportMetric(ms(m.h.ValueAtQuantile(50)), m.name+"-p50-ms")
		b.ReportMetric(ms(m.h.ValueAtQuantile(99)), m.name+"-p99-ms")
		b.ReportMetric(ms(m.h.ValueAtQuantile(99.9)), m.name+"-p99.9-ms")
	}
	b.ReportMetric(ms(vis.Max()), "visible-max-ms")
	if b.N < rate {
		return // the probe run testing makes with b.N = 1
	}
	b.Logf("load %s → %s; %d events at %d/s, consumer concurrency %d", load0, load1, len(all), rate, concurrency)
	for _, m := range []struct {
		name string
		h    *hdrhistogram.Histogram
	}{{"commit→visible", vis}, {"intended→visible", fromIntended}, {"intended→commit (users' transaction)", userCommit},
		{"commit→sent (relay wake-up + drain query)", wake}, {"sent→relayed (JetStream publish ack)", publish},
		{"relayed→visible (delivery, handler, ack)", deliver}} {
		b.Logf("%-42s p50 %6.1f  p90 %6.1f  p99 %6.1f  p99.9 %6.1f  max %6.1f ms", m.name,
			ms(m.h.ValueAtQuantile(50)), ms(m.h.ValueAtQuantile(90)), ms(m.h.ValueAtQuantile(99)),
			ms(m.h.ValueAtQuantile(99.9)), ms(m.h.Max()))
	}
}

// lastStreets returns users' current street of each id, in order.
func lastStreets(ctx context.Context, b *testing.B, users *pgxpool.Pool, ids []string) []string {
	b.Helper()
	out := make([]string, len(ids))
	rows, err := users.Query(ctx, `SELECT u.street FROM unnest($1::uuid[]) WITH ORDINALITY AS w(id, ord) JOIN users u ON u.id = w.id ORDER BY w.ord`, ids)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for rows.Next() {
		if err := rows.Scan(&out[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

func hist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
}

func record(b *testing.B, h *hdrhistogram.Histogram, d time.Duration) {
	b.Helper()
	if err := h.RecordValue(max(d.Microseconds(), 1)); err != nil {
		b.Fatal(err)
	}
}

func ms(us int64) float64 { return float64(us) / 1000 }

// testSubjectPub is the relay's publisher of users' service (*broker.Conn, an
// outbox.EncodedPublisher: asynchronous, the stored envelope sent as it is) with one
// difference: it publishes on the test namespace's subject of the event's type
// (natstest.Subject), so no live consumer sees the events. sent is called when the relay
// hands an event over, acked when the relay sees JetStream's acknowledgement.
type testSubjectPub struct {
	c           *broker.Conn
	sent, acked func(id string)
}

var _ outbox.EncodedPublisher = (*testSubjectPub)(nil)

func (p *testSubjectPub) Publish(ctx context.Context, e events.Envelope) error {
	p.sent(e.ID)
	if err := p.c.PublishOn(ctx, natstest.Subject(e.Type), e); err != nil {
		return err
	}
	p.acked(e.ID)
	return nil
}

func (p *testSubjectPub) PublishAsync(ctx context.Context, e events.Envelope) (func(context.Context) error, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return p.PublishEncodedAsync(ctx, e.ID, e.Type, e.TraceParent, e.CorrelationID, body)
}

// PublishEncodedAsync mirrors broker.Conn.PublishEncodedAsync (headers, de-duplication id,
// ack timeout) on natstest.Subject(typ).
func (p *testSubjectPub) PublishEncodedAsync(_ context.Context, id, typ, traceParent, correlationID string, body []byte) (func(context.Context) error, error) {
	hdr := nats.Header{}
	hdr.Set("Content-Type", "application/cloudevents+json")
	if traceParent != "" {
		hdr.Set(broker.HeaderTraceParent, traceParent)
	}
	if correlationID != "" {
		hdr.Set(broker.HeaderCorrelationID, correlationID)
	}
	hdr.Set(jetstream.MsgIDHeader, id)
	p.sent(id)
	f, err := p.c.JetStream().PublishMsgAsync(&nats.Msg{Subject: natstest.Subject(typ), Header: hdr, Data: body})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		t := time.NewTimer(broker.AckTimeout)
		defer t.Stop()
		select {
		case <-f.Ok():
			p.acked(id)
			return nil
		case err := <-f.Err():
			return err
		case <-t.C:
			return jetstream.ErrAsyncPublishTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}
