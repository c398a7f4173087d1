package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"polyshop/services/catalog/internal/mongostore"
	"polyshop/shared/testenv/mongotest"
)

// TestWriterLeaseHasOneHolder: of many instances starting at once, exactly one takes the
// lease (the unique _id insert is the one atomic operation FerretDB v1 offers); a second
// instance is refused while it is held, gets it once it is released, and takes over a
// lease that expired, after which the old holder's renewal reports it lost.
func TestWriterLeaseHasOneHolder(t *testing.T) {
	db := mongotest.Database(t, "CATALOG_MONGODB_URI")
	ctx := context.Background()

	const n = 12
	won := make([]*mongostore.Lease, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := mongostore.AcquireLease(ctx, db, fmt.Sprintf("instance-%d", i), time.Minute)
			switch {
			case err == nil:
				won[i] = l
			case !errors.Is(err, mongostore.ErrLeaseHeld):
				t.Errorf("instance %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	var holders []*mongostore.Lease
	for _, l := range won {
		if l != nil {
			holders = append(holders, l)
		}
	}
	if len(holders) != 1 {
		t.Fatalf("%d instances hold the lease at once, want 1", len(holders))
	}
	if err := holders[0].Renew(ctx); err != nil {
		t.Errorf("holder's renewal = %v", err)
	}
	if _, err := mongostore.AcquireLease(ctx, db, "late", time.Minute); !errors.Is(err, mongostore.ErrLeaseHeld) {
		t.Errorf("acquire while held = %v, want ErrLeaseHeld", err)
	}
	if err := holders[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	next, err := mongostore.AcquireLease(ctx, db, "next", time.Minute)
	if err != nil {
		t.Fatalf("acquire after release = %v", err)
	}

	// The holder stops renewing (paused, killed): its lease expires and another instance
	// takes over; the old holder, renewing late, learns that it lost the lease.
	if _, err := db.Collection(mongostore.LeaseCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: "catalog-writer"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expiresAt", Value: time.Now().UTC().Add(-time.Second)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := mongostore.AcquireLease(ctx, db, "successor", time.Minute); err != nil {
		t.Fatalf("acquire an expired lease = %v", err)
	}
	if err := next.Renew(ctx); !errors.Is(err, mongostore.ErrLeaseLost) {
		t.Errorf("old holder's renewal = %v, want ErrLeaseLost", err)
	}
}
