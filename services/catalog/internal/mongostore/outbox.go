package mongostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// Fields of the in-document outbox. The pending events of a product live in its own
// document, written by the same update as the change they describe: that is the atomic
// unit MongoDB (and FerretDB) guarantee without transactions.
const (
	outboxField        = "outbox"        // array of pendingEvent, oldest first
	outboxPendingField = "outboxPending" // true while outbox may be non-empty; indexed
)

// pendingEvent is one event waiting for the relay. The envelope is kept as its JSON text,
// so what the relay publishes is byte for byte what the change produced.
type pendingEvent struct {
	ID       string `bson:"id"`
	Type     string `bson:"type"`
	Envelope string `bson:"envelope"`
}

func pendingEvents(evs []events.Envelope) ([]pendingEvent, error) {
	out := make([]pendingEvent, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		out[i] = pendingEvent{ID: e.ID, Type: e.Type, Envelope: string(b)}
	}
	return out, nil
}

// Outbox is the relay side of the in-document outbox: an outbox.Store over the products
// collection.
//
// Finding pending events: FerretDB v1 on SQLite evaluates most filters in its own process
// after reading every document, so a query on outboxPending costs a collection scan. The
// relay therefore works from the ids this process's Store has just written (a lookup by
// _id, which FerretDB answers from its primary key), and scans the collection only every
// scan interval, to pick up what other instances or a crashed run left behind.
//
// Why not shared/outbox/mongooutbox: that adapter finds pending documents with a query on a
// counter field and serialises writers across processes with lock documents; on FerretDB v1
// both read the whole collection (only a lone _id filter is pushed down), which at catalog
// sizes costs hundreds of milliseconds per write. This one follows its own writes by _id and
// serialises writers in-process (one catalog per FerretDB; MongoDB guards in the filter).
// Both meet the same outbox.Store contract; folding this strategy into the shared adapter
// is the planned clean-up, so that one Mongo outbox serves every document store.
type Outbox struct {
	store    *Store
	coll     *mongo.Collection
	written  <-chan string
	kick     <-chan struct{}
	scan     time.Duration
	lastScan time.Time
	mu       sync.Mutex // one Drain at a time per process
}

var _ outbox.Store = (*Outbox)(nil)

// NewOutbox returns the relay side of s's outbox, scanning the whole collection for
// pending events every scan interval.
func NewOutbox(s *Store, scan time.Duration) *Outbox {
	if scan <= 0 {
		scan = time.Second
	}
	return &Outbox{store: s, coll: s.coll, written: s.written, kick: s.kick, scan: scan}
}

type outboxDoc struct {
	ID      string         `bson:"_id"`
	Version int64          `bson:"version"`
	Outbox  []pendingEvent `bson:"outbox"`
}

// Drain implements outbox.Store. It takes up to limit documents with pending events (those
// just written by this process, or all of them when a scan is due) and publishes each
// document's events in order, stopping at a document's first failure so its later events
// wait. Published events are removed with an update guarded by the version that was read;
// a concurrent change (which always bumps the version and appends events) makes the guard
// fail, and the removal is redone on a fresh read. Two relays may publish the same event;
// the broker's de-duplication by event id drops the second copy.
func (o *Outbox) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	docs, err := o.pending(ctx, limit)
	if err != nil {
		return 0, err
	}
	sent := 0
	var pub outbox.InOrder
	for _, d := range docs {
		done := map[string]bool{}
		for _, pe := range d.Outbox {
			// A cancelled ctx surfaces below, when the removal's own calls fail.
			if ok, _ := pub.Publish(ctx, publish, d.ID, pe.ID, pe.Envelope); !ok {
				break
			}
			done[pe.ID] = true
		}
		if err := o.remove(ctx, d, done); err != nil {
			return sent, err
		}
		sent += len(done)
	}
	if pub.Err() != nil {
		o.lastScan = time.Time{} // look at everything again on the next try
	}
	return sent, pub.Err()
}

var outboxProjection = bson.D{{Key: "_id", Value: 1}, {Key: "version", Value: 1}, {Key: outboxField, Value: 1}}

// pending returns documents with pending events: the hinted ones first; a scan only when
// there are no hints and the scan interval has passed.
func (o *Outbox) pending(ctx context.Context, limit int) ([]outboxDoc, error) {
	if len(o.written) == 0 && time.Since(o.lastScan) >= o.scan {
		o.lastScan = time.Now()
		cur, err := o.coll.Find(ctx, bson.D{{Key: outboxPendingField, Value: true}},
			options.Find().SetLimit(int64(limit)).SetProjection(outboxProjection))
		if err != nil {
			return nil, fmt.Errorf("find pending events: %w", err)
		}
		var docs []outboxDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("read pending events: %w", err)
		}
		return docs, nil
	}
	seen := map[string]bool{}
	var docs []outboxDoc
	for len(docs) < limit {
		var id string
		select {
		case id = <-o.written:
		default:
			return docs, nil
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		var d outboxDoc
		err := o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(outboxProjection)).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read pending events of %s: %w", id, err)
		}
		if len(d.Outbox) > 0 {
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// remove takes the events in done out of d's outbox. It re-reads the document under the
// product's lock and writes with the store's version guard, so events a concurrent change
// appended stay pending.
func (o *Outbox) remove(ctx context.Context, d outboxDoc, done map[string]bool) error {
	if len(done) == 0 && len(d.Outbox) > 0 {
		return nil
	}
	unlock := o.store.lock(d.ID)
	defer unlock()
	for range maxAttempts {
		err := o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, options.FindOne().SetProjection(outboxProjection)).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("re-read outbox of %s: %w", d.ID, err)
		}
		rest := make([]pendingEvent, 0, len(d.Outbox))
		for _, pe := range d.Outbox {
			if !done[pe.ID] {
				rest = append(rest, pe)
			}
		}
		res, err := o.coll.UpdateOne(ctx, o.store.guard(d.ID, d.Version),
			bson.D{{Key: "$set", Value: bson.D{{Key: outboxField, Value: rest}, {Key: outboxPendingField, Value: len(rest) > 0}}}})
		if err != nil {
			return fmt.Errorf("mark events of %s sent: %w", d.ID, err)
		}
		if res.MatchedCount == 1 {
			return nil
		}
	}
	return fmt.Errorf("mark events of %s sent: %w", d.ID, errors.New("document keeps changing"))
}

// Wait implements outbox.Store: it returns as soon as this process writes pending events,
// when a scan is due, or after d.
func (o *Outbox) Wait(ctx context.Context, d time.Duration) error {
	if len(o.written) > 0 {
		return nil
	}
	o.mu.Lock()
	untilScan := o.scan - time.Since(o.lastScan)
	o.mu.Unlock()
	t := time.NewTimer(max(min(d, untilScan), 0))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-o.kick:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
