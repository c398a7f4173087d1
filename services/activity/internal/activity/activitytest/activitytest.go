// Package activitytest builds the events that activity tests and benchmarks feed to the
// projection: valid envelopes with a chosen time and fresh ids.
package activitytest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// ID returns a fresh UUIDv7 string: unique per call, so tests sharing the keyspace never
// touch each other's users.
func ID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid: %v", err)
	}
	return id.String()
}

// Event returns a valid envelope of type typ about subject with payload data, whose time is
// at (UTC) and whose id is fresh.
func Event(t testing.TB, typ, subject string, at time.Time, data any) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), typ, subject, 1, data)
	if err != nil {
		t.Fatalf("new %s event: %v", typ, err)
	}
	e.Time = at.UTC()
	return e
}

// SessionStarted returns a sessions.started event of userID at at.
func SessionStarted(t testing.TB, userID string, at time.Time) events.Envelope {
	t.Helper()
	sid := ID(t)
	return Event(t, events.TypeSessionStarted, sid, at, events.SessionStarted{
		SessionID: sid, UserID: userID, StartedAt: at, ExpiresAt: at.Add(24 * time.Hour),
	})
}

// UserRegistered returns a users.registered event of userID at at.
func UserRegistered(t testing.TB, userID string, at time.Time) events.Envelope {
	t.Helper()
	return Event(t, events.TypeUserRegistered, userID, at, events.UserRegistered{
		UserID: userID, Email: userID + "@example.test", Name: "Test User", Role: "customer", RegisteredAt: at,
	})
}

// UserAddressChanged returns a users.address_changed event of userID at at.
func UserAddressChanged(t testing.TB, userID string, at time.Time) events.Envelope {
	t.Helper()
	return Event(t, events.TypeUserAddressChanged, userID, at, events.UserAddressChanged{
		UserID: userID, ChangedAt: at,
		Address: events.Address{Street: "1 Test Street", City: "Berlin", PostalCode: "10115", Country: "DE"},
	})
}

// UserDeleted returns a users.deleted event of userID at at.
func UserDeleted(t testing.TB, userID string, at time.Time) events.Envelope {
	t.Helper()
	return Event(t, events.TypeUserDeleted, userID, at, events.UserDeleted{UserID: userID, DeletedAt: at})
}

// ProductCreated returns a catalog.product_created event of a new product at at.
func ProductCreated(t testing.TB, name string, at time.Time) events.Envelope {
	t.Helper()
	pid := ID(t)
	return Event(t, events.TypeProductCreated, pid, at, events.ProductCreated{
		ProductID: pid, Name: name, Description: "test", Category: "test",
		Price: events.Money{Amount: 1299, Currency: "EUR"}, Attributes: map[string]any{}, CreatedAt: at,
	})
}
