package outbox

import (
	"context"
	"fmt"

	"polyshop/shared/events"
)

// InOrder is what every adapter's Drain does with the events it read: publish them in the
// order given, hold back the rest of an aggregate once one of its events fails (so later
// events never overtake it), and remember the failures. Use one per Drain; the zero value
// is ready. It is not safe for concurrent use.
type InOrder struct {
	failed    map[string]bool
	err       error
	published int
	failures  []Failure
	malformed int
}

// Failure is one failed publish of a drain.
type Failure struct {
	Aggregate, ID string
	Err           error
}

// Publish parses envelope (the stored JSON of event id) and hands it to publish, unless an
// earlier event of aggregate failed in this drain. It reports whether the event was
// published. A failure is kept for Err and Failures; the error returned is ctx's, once ctx
// has ended, so that the drain can stop at once.
func (o *InOrder) Publish(ctx context.Context, publish func(context.Context, events.Envelope) error, aggregate, id, envelope string) (bool, error) {
	if o.failed[aggregate] {
		return false, nil
	}
	e, err := events.Parse([]byte(envelope))
	malformed := err != nil
	if !malformed {
		err = publish(ctx, e)
	}
	return o.record(aggregate, id, err, malformed), ctx.Err()
}

// record counts the outcome of one event's publish (malformed: its stored envelope did not
// parse) and reports whether it was published.
func (o *InOrder) record(aggregate, id string, err error, malformed bool) bool {
	if err == nil {
		o.published++
		return true
	}
	if malformed {
		o.malformed++
	}
	if o.failed == nil {
		o.failed = map[string]bool{}
	}
	o.failed[aggregate] = true
	o.failures = append(o.failures, Failure{Aggregate: aggregate, ID: id, Err: err})
	if o.err == nil {
		o.err = fmt.Errorf("%w: %s: %w", ErrNotPublished, id, err)
	}
	return false
}

// Err returns the drain's first failure, wrapping ErrNotPublished, or nil.
func (o *InOrder) Err() error { return o.err }

// Failures returns the failures the adapter records against their events (see Policy):
// none when the drain looks like a broker outage (nothing published, two or more
// aggregates failed, and none of them because its stored envelope is malformed), every
// failure otherwise.
func (o *InOrder) Failures() []Failure {
	if o.published == 0 && len(o.failures) >= 2 && o.malformed == 0 {
		return nil
	}
	return o.failures
}
