package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/outbox/mongooutbox"
)

// The pending events of a product live in its own document, written by the same update as
// the change they describe (the atomic unit MongoDB and FerretDB guarantee without
// transactions), through the shared adapter shared/outbox/mongooutbox: its fields
// _outbox/_outboxN, in-process locks (the catalog is a single writer on FerretDB, by its
// lease), and a relay that follows this process's writes by _id and scans the collection
// only every scan interval (FerretDB v1 reads the whole collection for any other filter).

func newOutbox(s *Store, scan time.Duration) *mongooutbox.Store {
	if scan <= 0 {
		scan = time.Second
	}
	return mongooutbox.New(s.coll, mongooutbox.WithFollowWrites(scan), mongooutbox.WithLocalLock(s.locks, s.serverGuard))
}

// NewOutbox returns the relay side of s's outbox, scanning the whole collection for
// pending events every scan interval, and makes s's writes wake it. Call it once, before
// the service takes writes.
func NewOutbox(s *Store, scan time.Duration) *mongooutbox.Store {
	s.obox = newOutbox(s, scan)
	return s.obox
}

// Fields of the catalog's own adapter before it was folded into mongooutbox.
const (
	legacyOutboxField  = "outbox"
	legacyPendingField = "outboxPending"
)

// migrateLegacyOutbox moves pending events left in the earlier fields (outbox,
// outboxPending) into the shared adapter's, so none is lost across the upgrade.
func (s *Store) migrateLegacyOutbox(ctx context.Context) error {
	cur, err := s.coll.Find(ctx, bson.D{{Key: legacyPendingField, Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: legacyOutboxField, Value: 1}}))
	if err != nil {
		return fmt.Errorf("find legacy outbox: %w", err)
	}
	var docs []struct {
		ID     string `bson:"_id"`
		Outbox []struct {
			Envelope string `bson:"envelope"`
		} `bson:"outbox"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("read legacy outbox: %w", err)
	}
	for _, d := range docs {
		err := s.obox.Write(ctx, d.ID, func(ctx context.Context) error {
			update := bson.M{"$unset": bson.M{legacyOutboxField: "", legacyPendingField: ""}}
			if len(d.Outbox) > 0 {
				envs := make([]string, len(d.Outbox))
				for i, p := range d.Outbox {
					envs[i] = p.Envelope
				}
				if err := mongooutbox.AppendRawUpdate(update, envs...); err != nil {
					return err
				}
			}
			_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, update)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate legacy outbox of %s: %w", d.ID, err)
		}
	}
	return nil
}
