package main

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// mongoEngine: the MongoDB wire protocol through mongo-driver v1 (natively FerretDB v1;
// MongoDB 7 in compose). One document per item, event and counter; indexes on category and
// on {partition: 1, seq: -1}. The conditional update is a filter on the version read; the
// counter is $inc; the aggregation is a $group stage. Full text needs a text index, which
// MongoDB has and FerretDB v1 does not: Load tries to create one and FullText says n/a when
// the server refused it.
type mongoEngine struct {
	client  *mongo.Client
	db      *mongo.Database
	textErr error  // why there is no text index, if there is none
	ferret  string // FerretDB's version when the server cannot tell (embedded builds say "unknown")
}

func newMongo(ctx context.Context, uri, database, ferretVersion string, conns int) (*mongoEngine, error) {
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetMaxPoolSize(uint64(conns)))
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(ctx)
		return nil, err
	}
	return &mongoEngine{client: client, db: client.Database(database), ferret: ferretVersion}, nil
}

func (e *mongoEngine) Name() string { return "MongoDB API" }
func (e *mongoEngine) Close()       { _ = e.client.Disconnect(context.Background()) }

func (e *mongoEngine) Version(ctx context.Context) (string, error) {
	var info bson.M
	if err := e.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return "", err
	}
	if fv, ok := info["ferretdbVersion"]; ok {
		if fv == "unknown" && e.ferret != "" {
			fv = e.ferret
		}
		return fmt.Sprintf("FerretDB %v on PostgreSQL (MongoDB %v wire protocol)", fv, info["version"]), nil
	}
	return fmt.Sprintf("MongoDB %v", info["version"]), nil
}

func (e *mongoEngine) Load(ctx context.Context, d *Dataset) error {
	for _, c := range []string{"items", "events", "counters"} {
		if err := e.db.Collection(c).Drop(ctx); err != nil {
			return err
		}
	}
	items := make([]any, len(d.Items))
	for i, it := range d.Items {
		items[i] = bson.D{{Key: "_id", Value: it.ID}, {Key: "category", Value: it.Category}, {Key: "name", Value: it.Name},
			{Key: "description", Value: it.Description}, {Key: "price", Value: it.Price}, {Key: "version", Value: 0}}
	}
	if err := insertChunks(ctx, e.db.Collection("items"), items); err != nil {
		return err
	}
	var events []any
	_ = d.Events(func(_ string, es []Event) error {
		for _, ev := range es {
			events = append(events, bson.D{{Key: "partition", Value: ev.Partition}, {Key: "seq", Value: ev.Seq},
				{Key: "kind", Value: ev.Kind}, {Key: "payload", Value: ev.Payload}})
		}
		return nil
	})
	if err := insertChunks(ctx, e.db.Collection("events"), events); err != nil {
		return err
	}
	var counters []any
	for _, id := range d.CounterIDs() {
		counters = append(counters, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int64(0)}})
	}
	if err := insertChunks(ctx, e.db.Collection("counters"), counters); err != nil {
		return err
	}
	if _, err := e.db.Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "category", Value: 1}}}); err != nil {
		return err
	}
	if _, err := e.db.Collection("events").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "partition", Value: 1}, {Key: "seq", Value: -1}}}); err != nil {
		return err
	}
	_, e.textErr = e.db.Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "description", Value: "text"}}})
	return nil
}

func insertChunks(ctx context.Context, c *mongo.Collection, docs []any) error {
	for len(docs) > 0 {
		n := min(len(docs), 1000)
		if _, err := c.InsertMany(ctx, docs[:n], options.InsertMany().SetOrdered(false)); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

func (e *mongoEngine) PointRead(ctx context.Context, id string) error {
	var it bson.M
	return e.db.Collection("items").FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&it)
}

func (e *mongoEngine) BatchRead(ctx context.Context, ids []string) error {
	n, err := e.count(ctx, "items", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, nil)
	if err != nil {
		return err
	}
	return expect("batch", n, distinct(ids))
}

func (e *mongoEngine) NewestPage(ctx context.Context, partition string) error {
	n, err := e.count(ctx, "events", bson.D{{Key: "partition", Value: partition}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(20))
	if err != nil {
		return err
	}
	return expect("page", n, 20)
}

func (e *mongoEngine) BySecondary(ctx context.Context, category string) error {
	n, err := e.count(ctx, "items", bson.D{{Key: "category", Value: category}}, options.Find().SetLimit(20))
	if err != nil {
		return err
	}
	return expect("secondary", n, 20)
}

func (e *mongoEngine) Insert(ctx context.Context, ev Event) error {
	_, err := e.db.Collection("events").InsertOne(ctx, bson.D{{Key: "partition", Value: ev.Partition},
		{Key: "seq", Value: ev.Seq}, {Key: "kind", Value: ev.Kind}, {Key: "payload", Value: ev.Payload}})
	return err
}

func (e *mongoEngine) ConditionalUpdate(ctx context.Context, id string) error {
	var it struct{ Price, Version int }
	items := e.db.Collection("items")
	if err := items.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&it); err != nil {
		return err
	}
	res, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: it.Version}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "price", Value: it.Price + 1}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}})
	if err == nil && res.MatchedCount == 0 {
		return errConflict
	}
	return err
}

func (e *mongoEngine) Increment(ctx context.Context, counter string) error {
	res, err := e.db.Collection("counters").UpdateOne(ctx, bson.D{{Key: "_id", Value: counter}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
	if err != nil {
		return err
	}
	return expect("counters matched", int(res.MatchedCount), 1)
}

func (e *mongoEngine) FullText(ctx context.Context, word string) error {
	if e.textErr != nil {
		return na("no text index: the server refused one (" + shortErr(e.textErr) + ")")
	}
	n, err := e.count(ctx, "items", bson.D{{Key: "$text", Value: bson.D{{Key: "$search", Value: word}}}}, options.Find().SetLimit(20))
	if err != nil {
		return err
	}
	return expect("full text", n, 20)
}

func (e *mongoEngine) GroupBy(ctx context.Context) error {
	cur, err := e.db.Collection("items").Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$category"},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}, {Key: "total", Value: bson.D{{Key: "$sum", Value: "$price"}}}}}}})
	if err != nil {
		return err
	}
	var groups []bson.M
	if err := cur.All(ctx, &groups); err != nil {
		return err
	}
	return expect("groups", len(groups), 20)
}

// count runs a find and counts the documents it returns (decoding each, as a reader would).
func (e *mongoEngine) count(ctx context.Context, coll string, filter bson.D, opts *options.FindOptions) (int, error) {
	if opts == nil {
		opts = options.Find()
	}
	cur, err := e.db.Collection(coll).Find(ctx, filter, opts)
	if err != nil {
		return 0, err
	}
	var docs []bson.M
	err = cur.All(ctx, &docs)
	return len(docs), err
}

var _ Engine = (*mongoEngine)(nil)
