// Package mongooutbox is the MongoDB outbox for engines without multi-document
// transactions or change streams (FerretDB v1): an aggregate's pending events live inside
// the aggregate's own document, written by the same single-document update as the state
// change, and a relay removes them once published.
//
// Fields the package owns in an aggregate document:
//
//	_outbox       array of {id, seq, type, envelope (the event as a JSON string)}, oldest first
//	_outboxN      number of elements in _outbox (indexed: how relays find pending events;
//	              FerretDB v1 silently ignores $pull by condition, so removal is a $set)
//
// Write the state change with update operators merged with AppendUpdate (or insert with
// AppendFields), inside Write; never replace a whole document that may have pending events.
//
// Cost on FerretDB v1: only a filter that is a lone _id is pushed down to SQLite, so the
// relay's query on _outboxN and Write's lock documents read whole collections. That is fine
// for small collections and for MongoDB; the catalog, whose collection is large, uses its own
// adapter that follows its own writes by _id (services/catalog/internal/mongostore).
package mongooutbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// Field names in an aggregate document.
const (
	FieldEvents = "_outbox"
	FieldCount  = "_outboxN"
)

// pending is one element of _outbox.
type pending struct {
	ID       string `bson:"id"`
	Seq      int64  `bson:"seq"`
	Type     string `bson:"type"`
	Envelope string `bson:"envelope"`
}

func elements(evs []events.Envelope) (bson.A, error) {
	out := make(bson.A, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("outbox: encode event %s: %w", e.ID, err)
		}
		out[i] = pending{ID: e.ID, Seq: e.Sequence, Type: e.Type, Envelope: string(b)}
	}
	return out, nil
}

// AppendUpdate adds to update (a MongoDB update document such as bson.M{"$set": …}) the
// operators that append evs to the document's pending events: $push with $each on _outbox
// and $inc on _outboxN. Existing "$push"/"$inc" entries (bson.M or bson.D) are kept.
func AppendUpdate(update bson.M, evs ...events.Envelope) error {
	if len(evs) == 0 {
		return nil
	}
	els, err := elements(evs)
	if err != nil {
		return err
	}
	if err := addOp(update, "$push", FieldEvents, bson.M{"$each": els}); err != nil {
		return err
	}
	return addOp(update, "$inc", FieldCount, len(evs))
}

// Update returns an update document that only appends evs; merge your own operators into it.
func Update(evs ...events.Envelope) (bson.M, error) {
	u := bson.M{}
	return u, AppendUpdate(u, evs...)
}

func addOp(update bson.M, op, field string, v any) error {
	switch cur := update[op].(type) {
	case nil:
		update[op] = bson.M{field: v}
	case bson.M:
		cur[field] = v
	case bson.D:
		update[op] = append(cur, bson.E{Key: field, Value: v})
	default:
		return fmt.Errorf("outbox: cannot merge into %s of type %T", op, cur)
	}
	return nil
}

// AppendFields returns doc with the fields that hold evs as pending events, for
// inserting a new aggregate together with its first events.
func AppendFields(doc bson.D, evs ...events.Envelope) (bson.D, error) {
	els, err := elements(evs)
	if err != nil {
		return nil, err
	}
	return append(doc, bson.E{Key: FieldEvents, Value: els}, bson.E{Key: FieldCount, Value: len(evs)}), nil
}

// EnsureIndexes creates the index relays use to find documents with pending events.
func EnsureIndexes(ctx context.Context, coll *mongo.Collection) error {
	_, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: FieldCount, Value: 1}}},
	})
	if err != nil {
		return fmt.Errorf("outbox indexes on %s: %w", coll.Name(), err)
	}
	return nil
}

// Write runs write, the caller's update of the aggregate document with the given _id,
// while holding that document's outbox lock, and returns write's error. Every write to a
// document that may hold pending events must go through Write.
//
// Why: FerretDB v1 applies an update by reading the document, changing it in memory and
// writing the whole document back, without a transaction around the three steps, so two
// concurrent updates of one document can lose one of them. Without the lock a relay
// removing published events could erase an event (and a state change) committed at the
// same moment. On MongoDB the lock is unnecessary but harmless. The lock is a document in
// the collection "<coll>_outbox_locks", taken by inserting it (the unique _id makes that
// atomic on every engine) and expiring after 10 seconds if its holder dies.
func Write(ctx context.Context, coll *mongo.Collection, id any, write func(ctx context.Context) error) error {
	unlock, err := lock(ctx, coll, id, true)
	if err != nil {
		return err
	}
	defer unlock()
	return write(ctx)
}

const lockTTL = 10 * time.Second

var errLocked = errors.New("outbox: document locked")

func locks(coll *mongo.Collection) *mongo.Collection {
	return coll.Database().Collection(coll.Name() + "_outbox_locks")
}

// lock takes the outbox lock of document id; with wait it retries until ctx ends,
// otherwise it returns errLocked at once when another holder has it.
func lock(ctx context.Context, coll *mongo.Collection, id any, wait bool) (func(), error) {
	lc := locks(coll)
	token := uuid.NewString()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		now := time.Now()
		_, err := lc.InsertOne(ctx, bson.M{"_id": id, "token": token, "until": now.Add(lockTTL)})
		if err == nil {
			return func() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_, _ = lc.DeleteOne(uctx, bson.M{"_id": id, "token": token})
			}, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("outbox: lock %v: %w", id, err)
		}
		// A holder that died leaves an expired lock behind.
		if _, err := lc.DeleteOne(ctx, bson.M{"_id": id, "until": bson.M{"$lt": now}}); err != nil {
			return nil, fmt.Errorf("outbox: clear expired lock %v: %w", id, err)
		}
		if !wait {
			return nil, errLocked
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("outbox: lock %v: %w", id, ctx.Err())
		}
	}
}

// Store drains the pending events of one collection. It is safe for concurrent use, and
// several relays may drain one collection at once: a relay works on a document only while
// holding its outbox lock (see Write), so one aggregate's events are published by one relay
// at a time, in order, and never concurrently with a write to the aggregate.
type Store struct {
	coll *mongo.Collection
}

var _ outbox.Store = (*Store)(nil)

// New returns a Store over coll.
func New(coll *mongo.Collection) *Store { return &Store{coll: coll} }

type doc struct {
	ID     any       `bson:"_id"`
	Events []pending `bson:"_outbox"`
	N      int       `bson:"_outboxN"`
}

// Drain implements outbox.Store. It finds up to limit documents with pending events, and
// for each one whose lock it gets (documents locked by a writer or another relay are left
// for the next drain) rereads the pending events, publishes them in array order until one
// fails, and removes the published ones before releasing the lock. If the relay dies before
// the removal, the events stay and are published again (the lock expires after 10s).
func (s *Store) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	cur, err := s.coll.Find(ctx, bson.M{FieldCount: bson.M{"$gt": 0}},
		options.Find().SetLimit(int64(limit)).SetProjection(bson.M{"_id": 1}))
	if err != nil {
		return 0, fmt.Errorf("outbox drain: find pending: %w", err)
	}
	var cands []doc
	if err := cur.All(ctx, &cands); err != nil {
		return 0, fmt.Errorf("outbox drain: find pending: %w", err)
	}
	sent := 0
	var firstErr error
	for _, c := range cands {
		if sent >= limit {
			break
		}
		n, err := s.drainDoc(ctx, c.ID, limit-sent, publish)
		sent += n
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return sent, firstErr
}

func (s *Store) drainDoc(ctx context.Context, id any, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	unlock, err := lock(ctx, s.coll, id, false)
	if errors.Is(err, errLocked) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer unlock()
	var d doc
	err = s.coll.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{FieldEvents: 1, FieldCount: 1})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("outbox drain: read %v: %w", id, err)
	}
	n := 0
	var pubErr error
	for _, p := range d.Events {
		if n >= limit {
			break
		}
		e, err := events.Parse([]byte(p.Envelope))
		if err == nil {
			err = publish(ctx, e)
		}
		if err != nil {
			pubErr = fmt.Errorf("%w: %s: %w", outbox.ErrNotPublished, p.ID, err)
			break
		}
		n++
	}
	if n == 0 || ctx.Err() != nil {
		return 0, pubErr
	}
	// The filter on the count guards against a writer that bypassed Write.
	res, err := s.coll.UpdateOne(ctx,
		bson.M{"_id": id, FieldCount: d.N},
		bson.M{"$set": bson.M{FieldEvents: d.Events[n:], FieldCount: d.N - n}})
	if err != nil {
		return 0, fmt.Errorf("outbox drain: remove sent from %v: %w", id, err)
	}
	if res.MatchedCount != 1 {
		return 0, fmt.Errorf("outbox drain: %v changed without its lock; events are sent again", id)
	}
	return n, pubErr
}

// Wait implements outbox.Store by sleeping d: FerretDB v1 has no change streams, so the
// relay polls, and d (outbox.WithInterval) is the delivery latency.
func (s *Store) Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
