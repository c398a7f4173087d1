package outbox

import (
	"context"
	"fmt"

	"polyshop/shared/events"
)

// InOrder is what every adapter's Drain does with the events it read: publish them in the
// order given, hold back the rest of an aggregate once one of its events fails (so later
// events never overtake it), and remember the first failure. Use one per Drain; the zero
// value is ready. It is not safe for concurrent use.
type InOrder struct {
	failed map[string]bool
	err    error
}

// Publish parses envelope (the stored JSON of event id) and hands it to publish, unless an
// earlier event of aggregate failed in this drain. It reports whether the event was
// published. A failure is kept for Err; the error returned is ctx's, once ctx has ended, so
// that the drain can stop at once.
func (o *InOrder) Publish(ctx context.Context, publish func(context.Context, events.Envelope) error, aggregate, id, envelope string) (bool, error) {
	if o.failed[aggregate] {
		return false, nil
	}
	e, err := events.Parse([]byte(envelope))
	if err == nil {
		err = publish(ctx, e)
	}
	if err == nil {
		return true, nil
	}
	if o.failed == nil {
		o.failed = map[string]bool{}
	}
	o.failed[aggregate] = true
	if o.err == nil {
		o.err = fmt.Errorf("%w: %s: %w", ErrNotPublished, id, err)
	}
	return false, ctx.Err()
}

// Err returns the drain's first failure, wrapping ErrNotPublished, or nil.
func (o *InOrder) Err() error { return o.err }
