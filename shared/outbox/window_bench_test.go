package outbox_test

// The relay against the real limit, raw JetStream asynchronous publish, side by side in one
// run (rounds interleave raw, PostgreSQL, Redis and FerretDB, so the ratios compare runs
// under the same load on a shared machine):
//
//	go test -run '^$' -bench RelayVsRawAsync -benchtime 3x ./outbox/
//
// Each round: raw publishes n envelopes with PublishMsgAsync (at most window pending, each
// with its own Nats-Msg-Id) and waits for every ack; then, per adapter, n events are
// committed first (ten per commit, spread over aggregates as BenchmarkRelay* does; not
// timed), and a relay with the same window drains them: the clock runs from the relay's
// start until JetStream acknowledged the last event. Metrics are medians over the rounds.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/mongooutbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/outbox/redisoutbox"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/mongotest"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
	"polyshop/shared/testenv/redistest"
)

const (
	vsEvents      = 5000 // per round, raw, PostgreSQL and Redis
	vsMongoEvents = 1000 // per round, FerretDB
)

func BenchmarkRelayVsRawAsync(b *testing.B) {
	ctx := context.Background()
	c := natstest.TestConn(b)
	natstest.Stream(b, c, "users")
	typ := natstest.EventType(b, "users")
	window := outbox.DefaultWindow
	batch := 100
	if v, err := strconv.Atoi(os.Getenv("BENCH_BATCH")); err == nil {
		batch = v
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_WINDOW")); err == nil {
		window = v
	}
	spread := benchSpread{aggregates: benchAggregates, perCommit: benchPerCommit}
	if v, err := strconv.Atoi(os.Getenv("BENCH_AGGREGATES")); err == nil {
		spread.aggregates = v
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_PER_COMMIT")); err == nil {
		spread.perCommit = v
	}
	b.Logf("batch %d, window %d, %d aggregates, %d events per commit", batch, window, spread.aggregates, spread.perCommit)

	pool, _ := pgtest.Schema(b, "USERS_DATABASE_URL")
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	pgStore := pgoutbox.New(pool)
	defer pgStore.Close()
	pgCommit := func(ctx context.Context, evs ...events.Envelope) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgoutbox.Add(ctx, tx, evs...) })
	}
	// A live outbox table has planner statistics (autovacuum analyzes it); a fresh test
	// schema has none until analyzed, and its plans then read the whole backlog.
	analyze := func() {
		if _, err := pool.Exec(ctx, `ANALYZE outbox`); err != nil {
			b.Fatal(err)
		}
	}
	rdb, prefix := redistest.Client(b, "SESSIONS_REDIS_URL")
	stream := prefix + "outbox"
	redisStore := redisoutbox.New(rdb, stream)
	redisCommit := func(ctx context.Context, evs ...events.Envelope) error {
		_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error { return redisoutbox.Add(ctx, pipe, stream, evs...) })
		return err
	}
	// FerretDB is set up only when it is measured, so BENCH_SKIP_FERRETDB runs without it.
	var mongoStore *mongooutbox.Store
	var mongoCommit commitFunc
	if os.Getenv("BENCH_SKIP_FERRETDB") == "" {
		coll := mongotest.Database(b, "CATALOG_MONGODB_URI").Collection("products")
		if err := mongooutbox.EnsureIndexes(ctx, coll); err != nil {
			b.Fatal(err)
		}
		mongoStore = mongooutbox.New(coll)
		mongoCommit = func(ctx context.Context, evs ...events.Envelope) error {
			last := evs[len(evs)-1]
			update := bson.M{"$set": bson.M{"version": last.Sequence}}
			if err := mongooutbox.AppendUpdate(update, evs...); err != nil {
				return err
			}
			return mongooutbox.Write(ctx, coll, last.Subject, func(ctx context.Context) error {
				_, err := coll.UpdateOne(ctx, bson.M{"_id": last.Subject}, update, options.Update().SetUpsert(true))
				return err
			})
		}
	}

	seqs := map[string]int64{}
	var raw, pg, rd, mg, mgPub, mgFerret []float64
	for round := range b.N {
		raw = append(raw, rawAsync(b, c, typ, vsEvents, window))
		pg = append(pg, relayBacklog(b, c, typ, pgStore, pgCommit, analyze, seqs, fmt.Sprintf("pg%d-", round), spread, vsEvents, batch, window).rate)
		rd = append(rd, relayBacklog(b, c, typ, redisStore, redisCommit, nil, seqs, fmt.Sprintf("rd%d-", round), spread, vsEvents, batch, window).rate)
		if os.Getenv("BENCH_SKIP_FERRETDB") != "" {
			mg, mgPub, mgFerret = append(mg, 0), append(mgPub, 0), append(mgFerret, 0)
			continue
		}
		m := relayBacklog(b, c, typ, mongoStore, mongoCommit, nil, seqs, fmt.Sprintf("mg%d-", round), spread, vsMongoEvents, batch, window)
		mg, mgPub, mgFerret = append(mg, m.rate), append(mgPub, m.publishShare), append(mgFerret, m.ferretCPU)
	}
	b.ReportMetric(median(raw), "raw-events/s")
	b.ReportMetric(median(pg), "pg-events/s")
	b.ReportMetric(median(rd), "redis-events/s")
	b.ReportMetric(median(mg), "ferret-events/s")
	b.ReportMetric(median(ratios(pg, raw)), "pg/raw")
	b.ReportMetric(median(ratios(rd, raw)), "redis/raw")
	b.ReportMetric(median(ratios(mg, raw)), "ferret/raw")
	b.ReportMetric(median(mgPub), "ferret-publish-share")
	b.ReportMetric(median(mgFerret), "ferretdb-cpu-ms/1000ev")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratios(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}

// rawAsync publishes n envelopes with at most window acks pending and returns events/s.
func rawAsync(b testing.TB, c *broker.Conn, typ string, n, window int) float64 {
	ctx := context.Background()
	js, err := jetstream.New(c.NATS(), jetstream.WithPublishAsyncMaxPending(window))
	if err != nil {
		b.Fatal(err)
	}
	e, err := events.New(ctx, typ, "raw", 1, payload("raw", 1))
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	futures := make([]jetstream.PubAckFuture, n)
	start := time.Now()
	for i := range n {
		m := &nats.Msg{Subject: e.NATSSubject(), Header: nats.Header{}, Data: body}
		m.Header.Set("Content-Type", "application/cloudevents+json")
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-%d-%d", e.ID, time.Now().UnixNano(), i))
		if futures[i], err = js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw async publish: acks missing after a minute")
	}
	el := time.Since(start)
	for _, f := range futures {
		select {
		case err := <-f.Err():
			b.Fatal(err)
		default:
		}
	}
	return float64(n) / el.Seconds()
}

// benchSpread is how the committed events spread: over how many aggregates, how many
// events (of one aggregate) per commit.
type benchSpread struct{ aggregates, perCommit int }

type backlogResult struct {
	rate         float64 // events/s
	publishShare float64 // share of the drain's wall time spent inside publish (one at a time only)
	ferretCPU    float64 // FerretDB CPU ms per 1000 events, when a ferretdb process is found
}

// timedPub publishes, counts acknowledged events and the time spent publishing.
type timedPub struct {
	c  *broker.Conn
	n  atomic.Int64
	ns atomic.Int64
}

func (p *timedPub) Publish(ctx context.Context, e events.Envelope) error {
	t := time.Now()
	err := p.c.Publish(ctx, e)
	p.ns.Add(int64(time.Since(t)))
	if err == nil {
		p.n.Add(1)
	}
	return err
}

// PublishAsync makes timedPub an outbox.AsyncPublisher, as *broker.Conn is.
func (p *timedPub) PublishAsync(ctx context.Context, e events.Envelope) (func(context.Context) error, error) {
	return p.counted(p.c.PublishAsync(ctx, e))
}

// PublishEncodedAsync makes timedPub an outbox.EncodedPublisher, as *broker.Conn is.
func (p *timedPub) PublishEncodedAsync(ctx context.Context, id, typ, tp, corr string, body []byte) (func(context.Context) error, error) {
	return p.counted(p.c.PublishEncodedAsync(ctx, id, typ, tp, corr, body))
}

// counted wraps an asynchronous publish's wait so that an acknowledged publish is counted.
func (p *timedPub) counted(wait func(context.Context) error, err error) (func(context.Context) error, error) {
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		err := wait(ctx)
		if err == nil {
			p.n.Add(1)
		}
		return err
	}, nil
}

// relayBacklog commits n events (not timed), then times a relay draining them.
func relayBacklog(b *testing.B, c *broker.Conn, typ string, store outbox.Store, commit commitFunc, prepare func(), seqs map[string]int64, aggPrefix string, spread benchSpread, n, batch, window int) backlogResult {
	ctx := context.Background()
	for i := 0; i < n; {
		agg := fmt.Sprintf("%sagg%d", aggPrefix, (i/spread.perCommit)%spread.aggregates)
		var evs []events.Envelope
		for ; len(evs) < spread.perCommit && i < n; i++ {
			seqs[agg]++
			e, err := events.New(ctx, typ, agg, seqs[agg], payload(agg, seqs[agg]))
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, e)
		}
		if err := commit(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
	if prepare != nil {
		prepare()
	}
	pub := &timedPub{c: c}
	rctx, cancel := context.WithCancel(ctx)
	relay := outbox.NewRelay(store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)),
		outbox.WithBatch(batch), outbox.WithWindow(window), outbox.WithInterval(10*time.Millisecond))
	done := make(chan struct{})
	cpu0 := ferretCPU()
	start := time.Now()
	go func() { defer close(done); _ = relay.Run(rctx) }()
	for pub.n.Load() < int64(n) {
		time.Sleep(200 * time.Microsecond)
	}
	el := time.Since(start)
	cpu := ferretCPU() - cpu0
	cancel()
	<-done
	return backlogResult{
		rate:         float64(n) / el.Seconds(),
		publishShare: float64(pub.ns.Load()) / float64(el),
		ferretCPU:    float64(cpu.Milliseconds()) / float64(n) * 1000,
	}
}

// ferretCPU is the CPU time the local ferretdb processes have used so far (0 when there is none).
func ferretCPU() time.Duration {
	return testenv.CPUTime(func(name, _ string) bool { return name == "ferretdb" })
}
