package pginbox_test

import (
	"context"
	"testing"

	"polyshop/shared/inbox/pginbox"
	"polyshop/shared/testenv/pgtest"
)

// A snapshot record applies at a newer or equal version than the stored one, never at an
// older one; events and records of one aggregate share the key.
func TestAdvanceState(t *testing.T) {
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	ctx := context.Background()
	if err := pginbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	a2 := event(t, "a", 2)
	key := pginbox.StateKey("users", "a")
	if key != pginbox.AggregateKey(a2) {
		t.Fatalf("StateKey %q differs from AggregateKey %q", key, pginbox.AggregateKey(a2))
	}
	tests := []struct {
		name    string
		event   bool // an event through Advance rather than a record
		version int64
		want    bool
	}{
		{"record first", false, 2, true},
		{"same record again (repairs, changes nothing)", false, 2, true},
		{"event of that version", true, 2, false},
		{"older record", false, 1, false},
		{"newer record", false, 4, true},
		{"older event", true, 3, false},
	}
	for _, tc := range tests {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got bool
		if tc.event {
			got, err = pginbox.Advance(ctx, tx, "c", event(t, "a", tc.version))
		} else {
			got, err = pginbox.AdvanceState(ctx, tx, "c", key, tc.version)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: apply = %v, want %v", tc.name, got, tc.want)
		}
	}
}
