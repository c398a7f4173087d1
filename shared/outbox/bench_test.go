package outbox_test

// Relay throughput per adapter next to a raw JetStream publish loop of the same payload:
//
//	go test -run '^$' -bench 'Relay|RawJetStream' ./outbox/...
//
// The relay benchmarks time the whole path, from commit to broker acknowledgement: a relay
// runs while the benchmark commits b.N events (state and outbox in one atomic write, ten
// events per commit), and the clock stops when JetStream has acknowledged the last one.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	"polyshop/shared/testenv/mongotest"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
	"polyshop/shared/testenv/redistest"
)

const (
	benchAggregates = 20 // events are spread over this many aggregates
	benchPerCommit  = 10 // events per commit (one aggregate each)
)

type commitFunc func(ctx context.Context, evs ...events.Envelope) error

// countingPub publishes and counts acknowledged events.
type countingPub struct {
	c *broker.Conn
	n atomic.Int64
}

func (p *countingPub) Publish(ctx context.Context, e events.Envelope) error {
	if err := p.c.Publish(ctx, e); err != nil {
		return err
	}
	p.n.Add(1)
	return nil
}

func payload(agg string, seq int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"aggregate":%q,"seq":%d,"name":"benchmark payload of a typical size","price":{"amount":1299,"currency":"EUR"}}`, agg, seq))
}

func benchRelay(b *testing.B, owner string, store outbox.Store, commit commitFunc) {
	c := natstest.TestConn(b)
	natstest.Stream(b, c, owner)
	typ := natstest.EventType(b, owner)
	ctx := context.Background()

	pub := &countingPub{c: c}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	relay := outbox.NewRelay(store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)),
		outbox.WithBatch(100), outbox.WithInterval(10*time.Millisecond))
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() { defer close(done); _ = relay.Run(rctx) }()

	seqs := map[string]int64{}
	for i := 0; i < b.N; {
		agg := fmt.Sprintf("agg%d", (i/benchPerCommit)%benchAggregates)
		var evs []events.Envelope
		for ; len(evs) < benchPerCommit && i < b.N; i++ {
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
	for pub.n.Load() < int64(b.N) {
		time.Sleep(200 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
}

func BenchmarkRelayPostgres(b *testing.B) {
	pool, _ := pgtest.Schema(b, "USERS_DATABASE_URL")
	ctx := context.Background()
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	store := pgoutbox.New(pool)
	defer store.Close()
	benchRelay(b, "users", store, func(ctx context.Context, evs ...events.Envelope) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgoutbox.Add(ctx, tx, evs...) })
	})
}

func BenchmarkRelayMongo(b *testing.B) {
	coll := mongotest.Database(b, "CATALOG_MONGODB_URI").Collection("products")
	if err := mongooutbox.EnsureIndexes(context.Background(), coll); err != nil {
		b.Fatal(err)
	}
	benchRelay(b, "catalog", mongooutbox.New(coll), func(ctx context.Context, evs ...events.Envelope) error {
		last := evs[len(evs)-1]
		update := bson.M{"$set": bson.M{"version": last.Sequence}}
		if err := mongooutbox.AppendUpdate(update, evs...); err != nil {
			return err
		}
		return mongooutbox.Write(ctx, coll, last.Subject, func(ctx context.Context) error {
			_, err := coll.UpdateOne(ctx, bson.M{"_id": last.Subject}, update, options.Update().SetUpsert(true))
			return err
		})
	})
}

func BenchmarkRelayRedis(b *testing.B) {
	rdb, prefix := redistest.Client(b, "SESSIONS_REDIS_URL")
	stream := prefix + "outbox"
	benchRelay(b, "sessions", redisoutbox.New(rdb, stream), func(ctx context.Context, evs ...events.Envelope) error {
		_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			return redisoutbox.Add(ctx, pipe, stream, evs...)
		})
		return err
	})
}

// BenchmarkRawJetStreamPublish is the ceiling: the same envelope bytes published in a loop,
// each with its own Nats-Msg-Id and waiting for the PubAck.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	c := natstest.TestConn(b)
	natstest.Stream(b, c, "users")
	typ := natstest.EventType(b, "users")
	ctx := context.Background()
	e, err := events.New(ctx, typ, "agg0", 1, payload("agg0", 1))
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	js := c.JetStream()
	subject := e.NATSSubject()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := js.Publish(ctx, subject, body, jetstream.WithMsgID(fmt.Sprintf("%s-%d", e.ID, i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
