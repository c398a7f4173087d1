package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// LeaseCollection holds the catalog's writer lease.
const LeaseCollection = "leases"

const writerLease = "catalog-writer"

// ErrLeaseHeld is returned by AcquireLease while another live instance holds the lease.
var ErrLeaseHeld = errors.New("another catalog instance holds the writer lease")

// ErrLeaseLost is returned by Lease.Keep when the lease was taken over (this instance was
// paused past its expiry, or someone removed it): the instance must stop writing.
var ErrLeaseLost = errors.New("the catalog's writer lease was lost")

// Lease makes one catalog instance the only writer of a database. On FerretDB v1 the
// version guard of writes lives in the process (see Store), which is only correct for a
// single writer, and FerretDB v1 applies no conditional update atomically — so the lease is
// taken with the one operation it does apply atomically: inserting a document with a fixed
// _id (a unique key). A lease expires ttl after its last renewal, so a killed instance is
// replaced after at most ttl; Keep renews it and notices when it was taken over.
type Lease struct {
	coll   *mongo.Collection
	holder string
	ttl    time.Duration
	now    func() time.Time
}

type leaseDoc struct {
	ID        string    `bson:"_id"`
	Holder    string    `bson:"holder"`
	ExpiresAt time.Time `bson:"expiresAt"`
}

// AcquireLease takes the writer lease of db for holder (a name unique to this process),
// or returns ErrLeaseHeld (wrapped, with the holder and expiry) while a live lease exists.
// An expired lease is removed and the insert tried again; of several instances doing so at
// once, the unique _id lets exactly one insert win.
func AcquireLease(ctx context.Context, db *mongo.Database, holder string, ttl time.Duration) (*Lease, error) {
	l := &Lease{coll: db.Collection(LeaseCollection), holder: holder, ttl: ttl,
		now: func() time.Time { return time.Now().UTC() }}
	for range 2 {
		_, err := l.coll.InsertOne(ctx, leaseDoc{ID: writerLease, Holder: holder, ExpiresAt: l.now().Add(ttl)})
		if err == nil {
			return l, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("acquire writer lease: %w", err)
		}
		var cur leaseDoc
		switch err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: writerLease}}).Decode(&cur); {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue // released meanwhile
		case err != nil:
			return nil, fmt.Errorf("read writer lease: %w", err)
		case cur.ExpiresAt.After(l.now()):
			return nil, fmt.Errorf("%w: %s, until %s", ErrLeaseHeld, cur.Holder, cur.ExpiresAt.Format(time.RFC3339))
		}
		// Expired: remove that holder's lease (only if it is still the one we read) and retry.
		if _, err := l.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: writerLease}, {Key: "holder", Value: cur.Holder}}); err != nil {
			return nil, fmt.Errorf("remove expired writer lease: %w", err)
		}
	}
	return nil, fmt.Errorf("%w: contended", ErrLeaseHeld)
}

// Renew extends the lease by ttl, or returns ErrLeaseLost when another holder has it. The
// check reads the lease by _id after the write (FerretDB v1 pushes nothing else down and
// applies no condition atomically): an instance that finds another holder stops.
func (l *Lease) Renew(ctx context.Context) error {
	if _, err := l.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: writerLease}, {Key: "holder", Value: l.holder}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiresAt", Value: l.now().Add(l.ttl)}}}}); err != nil {
		return fmt.Errorf("renew writer lease: %w", err)
	}
	var cur leaseDoc
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: writerLease}}).Decode(&cur)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && cur.Holder != l.holder) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("read writer lease: %w", err)
	}
	return nil
}

// Keep renews the lease every ttl/3 until ctx ends (returning nil) or the lease is lost
// (ErrLeaseLost). Transient errors are retried until the lease would have expired.
func (l *Lease) Keep(ctx context.Context) error {
	every := l.ttl / 3
	lastOK := l.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
		err := l.Renew(ctx)
		switch {
		case err == nil:
			lastOK = l.now()
		case errors.Is(err, ErrLeaseLost):
			return err
		case ctx.Err() != nil:
			return nil
		case l.now().Sub(lastOK) >= l.ttl:
			return fmt.Errorf("%w: could not renew it for %s: %v", ErrLeaseLost, l.ttl, err)
		}
	}
}

// Release gives the lease up (if this holder still has it), so the next instance need not
// wait for its expiry.
func (l *Lease) Release(ctx context.Context) error {
	_, err := l.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: writerLease}, {Key: "holder", Value: l.holder}})
	return err
}

// SingleWriter reports whether the store's version guard lives in this process (FerretDB),
// so that only one instance may write: main then takes the writer lease.
func (s *Store) SingleWriter() bool { return !s.serverGuard }
