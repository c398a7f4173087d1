package mongooutbox_test

import (
	"context"
	"encoding/json"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/mongooutbox"
	"polyshop/shared/outbox/outboxtest"
	"polyshop/shared/testenv/mongotest"
)

func TestContract(t *testing.T) {
	outboxtest.Run(t, outboxtest.Harness{
		Owner:      "catalog",
		NATSURLVar: "CATALOG_NATS_URL",
		New: func(t *testing.T) outboxtest.Fixture {
			coll := mongotest.Database(t, "CATALOG_MONGODB_URI").Collection("products")
			if err := mongooutbox.EnsureIndexes(context.Background(), coll); err != nil {
				t.Fatal(err)
			}
			return outboxtest.Fixture{
				NewStore: func() outbox.Store { return mongooutbox.New(coll) },
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
