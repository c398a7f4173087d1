package outbox_test

// How fast a waiting relay notices a new outbox row: one event committed every 50 ms
// (20/s, the relay idle in between), latency from the commit's return to JetStream's ack.
//
//	go test -run '^$' -bench RelayWakeUp -benchtime 200x ./outbox/
//
// PostgreSQL wakes on LISTEN/NOTIFY (pgoutbox.Add notifies in the transaction), Redis on
// XREAD BLOCK, FerretDB (no change streams) on the in-process hint of Store.Write
// (WithFollowWrites, as the catalog runs it); WithInterval (1s) is only the fallback.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// ackPub records when each event was acknowledged.
type ackPub struct {
	c    *broker.Conn
	mu   sync.Mutex
	acks map[string]chan struct{}
}

func (p *ackPub) done(id string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.acks[id]
	if !ok {
		ch = make(chan struct{})
		p.acks[id] = ch
	}
	return ch
}

func (p *ackPub) Publish(ctx context.Context, e events.Envelope) error {
	if err := p.c.Publish(ctx, e); err != nil {
		return err
	}
	close(p.done(e.ID))
	return nil
}

func (p *ackPub) PublishAsync(ctx context.Context, e events.Envelope) (func(context.Context) error, error) {
	wait, err := p.c.PublishAsync(ctx, e)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		err := wait(ctx)
		if err == nil {
			close(p.done(e.ID))
		}
		return err
	}, nil
}

func (p *ackPub) PublishEncodedAsync(ctx context.Context, id, typ, tp, corr string, body []byte) (func(context.Context) error, error) {
	wait, err := p.c.PublishEncodedAsync(ctx, id, typ, tp, corr, body)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		err := wait(ctx)
		if err == nil {
			close(p.done(id))
		}
		return err
	}, nil
}

func wakeUp(b *testing.B, store outbox.Store, commit commitFunc) {
	c := natstest.TestConn(b)
	natstest.Stream(b, c, "users")
	typ := natstest.EventType(b, "users")
	ctx := context.Background()
	pub := &ackPub{c: c, acks: map[string]chan struct{}{}}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	relay := outbox.NewRelay(store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = relay.Run(rctx) }()
	time.Sleep(200 * time.Millisecond) // the relay is waiting
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		agg := fmt.Sprintf("w%d", i)
		e, err := events.New(ctx, typ, agg, 1, payload(agg, 1))
		if err != nil {
			b.Fatal(err)
		}
		if err := commit(ctx, e); err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		select {
		case <-pub.done(e.ID):
		case <-time.After(10 * time.Second):
			b.Fatal("not published within 10s")
		}
		lat = append(lat, time.Since(t))
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkRelayWakeUpPostgres(b *testing.B) {
	pool, _ := pgtest.Schema(b, "USERS_DATABASE_URL")
	ctx := context.Background()
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	store := pgoutbox.New(pool)
	defer store.Close()
	wakeUp(b, store, func(ctx context.Context, evs ...events.Envelope) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgoutbox.Add(ctx, tx, evs...) })
	})
}

func BenchmarkRelayWakeUpRedis(b *testing.B) {
	rdb, prefix := redistest.Client(b, "SESSIONS_REDIS_URL")
	stream := prefix + "outbox"
	wakeUp(b, redisoutbox.New(rdb, stream), func(ctx context.Context, evs ...events.Envelope) error {
		_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error { return redisoutbox.Add(ctx, pipe, stream, evs...) })
		return err
	})
}

func BenchmarkRelayWakeUpFerretDB(b *testing.B) {
	coll := mongotest.Database(b, "CATALOG_MONGODB_URI").Collection("products")
	if err := mongooutbox.EnsureIndexes(context.Background(), coll); err != nil {
		b.Fatal(err)
	}
	store := mongooutbox.New(coll, mongooutbox.WithFollowWrites(30*time.Second), mongooutbox.WithLocalLock(nil, false))
	wakeUp(b, store, func(ctx context.Context, evs ...events.Envelope) error {
		e := evs[0]
		update := bson.M{"$set": bson.M{"version": e.Sequence}}
		if err := mongooutbox.AppendUpdate(update, evs...); err != nil {
			return err
		}
		return store.Write(ctx, e.Subject, func(ctx context.Context) error {
			_, err := coll.UpdateOne(ctx, bson.M{"_id": e.Subject}, update, options.Update().SetUpsert(true))
			return err
		})
	})
}
