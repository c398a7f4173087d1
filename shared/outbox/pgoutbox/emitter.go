package pgoutbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// Publish modes of an Emitter (the pattern switch <service>.publish of shared/chaos).
const (
	// ModeOutbox adds a transaction's events to the outbox in that transaction; a relay
	// publishes them. The default, and the only safe mode.
	ModeOutbox = "outbox"
	// ModeDirect commits the change without outbox rows and then publishes the events
	// itself: the dual write. A crash, a broker outage or a failed publish between the
	// two loses the events for good. For labs only.
	ModeDirect = "direct"
)

// Emitter writes the events of a service's state changes according to its publish mode,
// read once per transaction. The service's write path runs each change in Emitter.InTx
// and hands the change's events to the add function it gets, instead of calling Add.
type Emitter struct {
	// Mode returns the current publish mode (nil or an unknown value: ModeOutbox).
	Mode func() string
	// Pub publishes in ModeDirect (the broker connection, not the relay's publisher: a
	// direct publish is not retried).
	Pub outbox.Publisher
	// BeforePublish, when set, runs in ModeDirect after the commit and before the first
	// publish: the service's crash point there (shared/chaos), or a test's hook.
	BeforePublish func()
	// Log receives the events a direct publish lost.
	Log *slog.Logger
	// Timeout bounds the direct publishes of one transaction (default 5 s).
	Timeout time.Duration
}

// Beginner starts transactions: a *pgxpool.Pool or a pgx.Tx.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction on db. The events fn passes to add go into the outbox in
// that transaction (ModeOutbox), or, in ModeDirect, are published one by one after the
// transaction committed. A failed direct publish does not undo the committed change: InTx
// logs the events lost and returns nil, as a dual write would (that is the point of the
// mode). fn's error, or a failed commit, is returned and nothing is published.
func (e *Emitter) InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx, add func(...events.Envelope) error) error) error {
	direct := e != nil && e.Mode != nil && e.Mode() == ModeDirect
	var pending []events.Envelope
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		return fn(tx, func(evs ...events.Envelope) error {
			if direct {
				pending = append(pending, evs...)
				return nil
			}
			return Add(ctx, tx, evs...)
		})
	})
	if err != nil || len(pending) == 0 {
		return err
	}
	if e.BeforePublish != nil {
		e.BeforePublish()
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for i, ev := range pending {
		if perr := e.Pub.Publish(pctx, ev); perr != nil {
			log := e.Log
			if log == nil {
				log = slog.Default()
			}
			for _, lost := range pending[i:] {
				log.ErrorContext(ctx, "publish mode direct: event lost (committed without an outbox row, publish failed)",
					"event_id", lost.ID, "type", lost.Type, "subject", lost.Subject, "err", perr)
			}
			return nil
		}
	}
	return nil
}

// ModeOf returns a Mode function for a fixed mode (tests, configuration).
func ModeOf(mode string) func() string { return func() string { return mode } }
