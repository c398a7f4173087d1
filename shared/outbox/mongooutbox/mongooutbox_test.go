package mongooutbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/mongooutbox"
	"polyshop/shared/outbox/outboxtest"
	"polyshop/shared/testenv/mongotest"
)

// footprint counts the events still held in the collection's documents.
func footprint(coll *mongo.Collection) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		cur, err := coll.Find(ctx, bson.M{}, options.Find().SetProjection(bson.M{mongooutbox.FieldCount: 1}))
		if err != nil {
			return 0, err
		}
		var docs []struct {
			N int `bson:"_outboxN"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return 0, err
		}
		n := 0
		for _, d := range docs {
			n += d.N
		}
		return n, nil
	}
}

// TestContract runs the suite against lock documents and a scan on every drain.
func TestContract(t *testing.T) {
	outboxtest.Run(t, outboxtest.Harness{
		Owner: "catalog",
		New: func(t *testing.T) outboxtest.Fixture {
			coll := mongotest.Database(t, "CATALOG_MONGODB_URI").Collection("products")
			if err := mongooutbox.EnsureIndexes(context.Background(), coll); err != nil {
				t.Fatal(err)
			}
			return outboxtest.Fixture{
				NewStore:  func() outbox.Store { return mongooutbox.New(coll) },
				Footprint: footprint(coll),
				// One single-document upsert: the state change and the events together.
				Commit: func(ctx context.Context, evs ...events.Envelope) error {
					last := evs[len(evs)-1]
					update := bson.M{"$set": bson.M{"version": last.Sequence}}
					if err := mongooutbox.AppendUpdate(update, evs...); err != nil {
						return err
					}
					return mongooutbox.Write(ctx, coll, last.Subject, func(ctx context.Context) error {
						_, err := coll.UpdateOne(ctx, bson.M{"_id": last.Subject}, update, options.Update().SetUpsert(true))
						return err
					})
				},
			}
		},
	})
}

// TestContractFollowingWrites runs the suite as the catalog uses the adapter: one writing
// process with in-process locks, the relay following its writes by _id. Each NewStore is
// another process, whose relay finds others' events by the periodic scan: the
// crash-recovery path (a crashed process's writes were never hinted to the new one).
func TestContractFollowingWrites(t *testing.T) {
	outboxtest.Run(t, outboxtest.Harness{
		Owner: "catalog",
		New: func(t *testing.T) outboxtest.Fixture {
			coll := mongotest.Database(t, "CATALOG_MONGODB_URI").Collection("products")
			if err := mongooutbox.EnsureIndexes(context.Background(), coll); err != nil {
				t.Fatal(err)
			}
			locks := &mongooutbox.Locks{} // one process
			writer := mongooutbox.New(coll, mongooutbox.WithFollowWrites(200*time.Millisecond), mongooutbox.WithLocalLock(locks, false))
			first := true
			return outboxtest.Fixture{
				// The first store is the writer's own (it follows the writes); later ones
				// are relays that were never told of the writes (a restarted process),
				// which find events only by the periodic scan. They share the process's
				// locks, as everything must with WithLocalLock on FerretDB.
				NewStore: func() outbox.Store {
					if first {
						first = false
						return writer
					}
					return mongooutbox.New(coll, mongooutbox.WithFollowWrites(200*time.Millisecond), mongooutbox.WithLocalLock(locks, false))
				},
				Footprint: footprint(coll),
				Commit: func(ctx context.Context, evs ...events.Envelope) error {
					last := evs[len(evs)-1]
					update := bson.M{"$set": bson.M{"version": last.Sequence}}
					if err := mongooutbox.AppendUpdate(update, evs...); err != nil {
						return err
					}
					return writer.Write(ctx, last.Subject, func(ctx context.Context) error {
						_, err := coll.UpdateOne(ctx, bson.M{"_id": last.Subject}, update, options.Update().SetUpsert(true))
						return err
					})
				},
				WakesOnCommit: true,
			}
		},
	})
}

func TestAppendFieldsInsert(t *testing.T) {
	coll := mongotest.Database(t, "CATALOG_MONGODB_URI").Collection("products")
	ctx := context.Background()
	e, err := events.New(ctx, "polyshop.catalog.test_insert.v1", "p1", 1, json.RawMessage(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := mongooutbox.AppendFields(bson.D{{Key: "_id", Value: "p1"}, {Key: "name", Value: "x"}}, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, d); err != nil {
		t.Fatal(err)
	}
	var got []string
	n, err := mongooutbox.New(coll).Drain(ctx, 10, func(_ context.Context, e events.Envelope) error {
		got = append(got, e.ID)
		return nil
	})
	if err != nil || n != 1 || len(got) != 1 || got[0] != e.ID {
		t.Errorf("Drain = %d, %v, %v; want the inserted event", n, err, got)
	}
}

// A relay that publishes for longer than the lock's TTL keeps the lock (it is renewed),
// so a writer waits instead of slipping in, and the writer's event survives the relay's
// removal of what it published.
func TestSlowRelayKeepsItsLock(t *testing.T) {
	coll := mongotest.Database(t, "CATALOG_MONGODB_URI").Collection("products")
	ctx := context.Background()
	newEvent := func(seq int64) events.Envelope {
		e, err := events.New(ctx, "polyshop.catalog.test_slow.v1", "p1", seq, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	commit := func(e events.Envelope) error {
		update := bson.M{"$set": bson.M{"version": e.Sequence}}
		if err := mongooutbox.AppendUpdate(update, e); err != nil {
			return err
		}
		return mongooutbox.Write(ctx, coll, "p1", func(ctx context.Context) error {
			_, err := coll.UpdateOne(ctx, bson.M{"_id": "p1"}, update, options.Update().SetUpsert(true))
			return err
		})
	}
	first, second := newEvent(1), newEvent(2)
	if err := commit(first); err != nil {
		t.Fatal(err)
	}
	store := mongooutbox.New(coll)
	writerDone := make(chan error, 1)
	var published []string
	n, err := store.Drain(ctx, 10, func(_ context.Context, e events.Envelope) error {
		published = append(published, e.ID)
		go func() { writerDone <- commit(second) }()
		time.Sleep(12 * time.Second) // past the 10s lock TTL
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("slow Drain = %d, %v; want 1, nil", n, err)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	var handed []string
	if n, err := store.Drain(ctx, 10, func(_ context.Context, e events.Envelope) error {
		handed = append(handed, e.ID)
		return nil
	}); n != 1 || err != nil {
		t.Fatalf("next Drain = %d, %v; want 1, nil", n, err)
	}
	if len(handed) != 1 || handed[0] != second.ID || len(published) != 1 || published[0] != first.ID {
		t.Errorf("published %v then %v; want %s then %s", published, handed, first.ID, second.ID)
	}
}

// A drain of more documents than FerretDB v1 has PostgreSQL connections (50) completes:
// it once sent them in one bulk update, which held a connection per statement until the
// command ended and hung FerretDB for every client (a fresh ./scripts/up's seeding did).
// On MongoDB this only checks that a drain of many documents removes all it published.
func TestDrainOfManyDocuments(t *testing.T) {
	coll := mongotest.Database(t, "CATALOG_MONGODB_URI").Collection("products")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const docs = 4*mongooutbox.MaxUpdatesPerCommand + 70 // > 50 statements in one command before
	for i := range docs {
		id := fmt.Sprintf("p%03d", i)
		e, err := events.New(ctx, "polyshop.catalog.test_many.v1", id, 1, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		update := bson.M{"$set": bson.M{"version": 1}}
		if err := mongooutbox.AppendUpdate(update, e); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.UpdateOne(ctx, bson.M{"_id": id}, update, options.Update().SetUpsert(true)); err != nil {
			t.Fatal(err)
		}
	}
	published := map[string]bool{}
	n, err := mongooutbox.New(coll).Drain(ctx, 1000, func(_ context.Context, e events.Envelope) error {
		published[e.Subject] = true
		return nil
	})
	if err != nil || n != docs || len(published) != docs {
		t.Fatalf("Drain = %d, %v (%d aggregates published); want %d, nil", n, err, len(published), docs)
	}
	left, err := footprint(coll)(ctx)
	if err != nil || left != 0 {
		t.Errorf("events left in the documents after the drain = %d, %v; want 0", left, err)
	}
}

// On FerretDB v1 the scan's filter is passed down to PostgreSQL (its explain says
// filterPushdown), so only documents with pending events are read and decoded; with a $gt
// alone it decoded every document of the collection at every scan. MongoDB's explain has no
// such field (it uses the count's index), and the test says so and stops there.
func TestScanFilterIsPushedDown(t *testing.T) {
	db := mongotest.Database(t, "CATALOG_MONGODB_URI")
	coll := db.Collection("products")
	ctx := context.Background()
	if _, err := coll.InsertOne(ctx, bson.M{"_id": "p1", mongooutbox.FieldCount: int32(0)}); err != nil {
		t.Fatal(err)
	}
	var out bson.M
	err := db.RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: "products"}, {Key: "filter", Value: mongooutbox.PendingFilter()},
	}}}).Decode(&out)
	if err != nil {
		t.Fatal(err)
	}
	pushdown, ok := out["filterPushdown"]
	if !ok {
		t.Skip("not FerretDB (no filterPushdown in explain): MongoDB serves the filter from the count's index")
	}
	if pushdown != true {
		t.Errorf("filterPushdown = %v; want true (explain: %v)", pushdown, out)
	}
}
