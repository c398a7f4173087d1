package mongostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// Why not shared/outbox/mongooutbox: it did not exist yet when the catalog was written. This
// adapter follows the same contract (outbox.Store); swapping it for the shared one is a
// change in main.go and in the two writes above.
type Outbox struct {
	coll *mongo.Collection
	poll time.Duration
}

var _ outbox.Store = (*Outbox)(nil)

// NewOutbox returns the relay side of s's outbox. The relay's Wait polls every poll
// interval (FerretDB has no change streams to wake it).
func NewOutbox(s *Store, poll time.Duration) *Outbox {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	return &Outbox{coll: s.coll, poll: poll}
}

type outboxDoc struct {
	ID      string         `bson:"_id"`
	Version int64          `bson:"version"`
	Outbox  []pendingEvent `bson:"outbox"`
}

// Drain implements outbox.Store. It takes up to limit documents with pending events and
// publishes each document's events in order, stopping at a document's first failure so its
// later events wait. Published events are removed with an update guarded by the version
// that was read; a concurrent change (which always bumps the version and appends events)
// makes the guard fail, and the removal is redone on a fresh read. Two relays may publish
// the same event; the broker's de-duplication by event id drops the second copy.
func (o *Outbox) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	cur, err := o.coll.Find(ctx, bson.D{{Key: outboxPendingField, Value: true}},
		options.Find().SetLimit(int64(limit)).SetProjection(bson.D{
			{Key: "_id", Value: 1}, {Key: "version", Value: 1}, {Key: outboxField, Value: 1},
		}))
	if err != nil {
		return 0, fmt.Errorf("find pending events: %w", err)
	}
	var docs []outboxDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("read pending events: %w", err)
	}
	sent := 0
	var firstErr error
	for _, d := range docs {
		done := map[string]bool{}
		for _, pe := range d.Outbox {
			e, err := events.Parse([]byte(pe.Envelope))
			if err == nil {
				err = publish(ctx, e)
			}
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%w: %s: %w", outbox.ErrNotPublished, pe.ID, err)
				}
				break
			}
			done[pe.ID] = true
		}
		if err := o.remove(ctx, d, done); err != nil {
			return sent, err
		}
		sent += len(done)
	}
	return sent, firstErr
}

// remove takes the events in done out of d's outbox, re-reading when d changed meanwhile.
func (o *Outbox) remove(ctx context.Context, d outboxDoc, done map[string]bool) error {
	if len(done) == 0 && len(d.Outbox) > 0 {
		return nil
	}
	for range maxAttempts {
		rest := make([]pendingEvent, 0, len(d.Outbox))
		for _, pe := range d.Outbox {
			if !done[pe.ID] {
				rest = append(rest, pe)
			}
		}
		res, err := o.coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: d.ID}, {Key: "version", Value: d.Version}},
			bson.D{{Key: "$set", Value: bson.D{{Key: outboxField, Value: rest}, {Key: outboxPendingField, Value: len(rest) > 0}}}})
		if err != nil {
			return fmt.Errorf("mark events of %s sent: %w", d.ID, err)
		}
		if res.MatchedCount == 1 {
			return nil
		}
		err = o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "version", Value: 1}, {Key: outboxField, Value: 1}})).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("re-read outbox of %s: %w", d.ID, err)
		}
	}
	return fmt.Errorf("mark events of %s sent: %w", d.ID, errors.New("document keeps changing"))
}

// Wait implements outbox.Store by sleeping for the poll interval (or d, if shorter).
func (o *Outbox) Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(min(d, o.poll))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
