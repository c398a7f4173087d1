package outbox

import (
	"context"
	"errors"
	"time"
)

// Policy says how a Store treats an event whose publish failed. The failure is recorded on
// the event: its aggregate is held back (the event and every later event of the aggregate
// wait, so order is kept) until the event's retry time, which doubles with each attempt
// from RetryMin up to RetryMax. Other aggregates keep flowing. After ParkAfter failed
// attempts the event is parked: its aggregate stays blocked until an operator re-arms the
// event (Operator.Rearm), and the event is counted and listed as parked.
//
// A failure is not counted when it looks like a broker outage rather than a poison event:
// a drain in which nothing was published and events of two or more aggregates failed
// (InOrder.Failures). Then nothing is recorded and the relay backs off as a whole.
type Policy struct {
	// ParkAfter is how many failed attempts park an event; zero or less never parks.
	ParkAfter int
	// RetryMin is the delay after an event's first failure; zero retries at the next drain.
	RetryMin time.Duration
	// RetryMax caps the delay.
	RetryMax time.Duration
}

// DefaultPolicy parks after 10 failed attempts, retrying after 1s, 2s, 4s, … up to 1 minute
// (about 4 minutes from the first failure to parking).
func DefaultPolicy() Policy {
	return Policy{ParkAfter: 10, RetryMin: time.Second, RetryMax: time.Minute}
}

// Delay is how long an event that has failed attempts times waits before the next try.
func (p Policy) Delay(attempts int) time.Duration {
	d := p.RetryMin
	for i := 1; i < attempts && d < p.RetryMax; i++ {
		d *= 2
	}
	return min(d, max(p.RetryMax, p.RetryMin))
}

// Parks reports whether an event that has failed attempts times is parked.
func (p Policy) Parks(attempts int) bool { return p.ParkAfter > 0 && attempts >= p.ParkAfter }

// Stats is a snapshot of an outbox for metrics.
type Stats struct {
	// Pending counts events not yet published, parked ones included.
	Pending int64
	// Oldest is when the oldest pending event was stored; zero when none is pending.
	Oldest time.Time
	// Parked counts parked events.
	Parked int64
}

// Parked is an event parked after failing Policy.ParkAfter times.
type Parked struct {
	ID        string    `json:"id"`
	Aggregate string    `json:"aggregate"`
	Type      string    `json:"type"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	ParkedAt  time.Time `json:"parkedAt"`
}

// ErrNotParked is returned by Rearm for an id that is not a parked event.
var ErrNotParked = errors.New("outbox: no parked event with this id")

// Operator is what every adapter offers next to Store: its failure policy, figures for
// metrics, the parked events and retention. All methods are safe for concurrent use with
// running relays.
type Operator interface {
	Store
	// SetPolicy sets the failure policy of later drains; call it before the relay starts.
	SetPolicy(Policy)
	// Stats returns the outbox's current figures.
	Stats(ctx context.Context) (Stats, error)
	// Parked lists up to limit parked events, oldest first.
	Parked(ctx context.Context, limit int) ([]Parked, error)
	// Rearm clears a parked event's failures so the next drain tries it again (and, if it
	// is published, the rest of its aggregate after it). ErrNotParked if id is not parked.
	Rearm(ctx context.Context, id string) error
	// Prune removes what published events leave behind once they are older than
	// retention, at most batch at a time, and returns how many it removed. What that is
	// depends on the adapter (rows in PostgreSQL; space in the Redis stream).
	Prune(ctx context.Context, retention time.Duration, batch int) (int, error)
}
