// Package pginbox makes PostgreSQL event handlers idempotent: an inbox of handled event
// ids and the last applied sequence per aggregate, both written in the handler's own
// transaction so they commit or roll back with its side effects.
package pginbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/shared/events"
)

// Schema creates the inbox and aggregate_seq tables; it is idempotent. Services may apply
// it with Migrate or copy it into their own migrations.
const Schema = `
CREATE TABLE IF NOT EXISTS inbox (
	consumer     text NOT NULL,
	event_id     uuid NOT NULL,
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS aggregate_seq (
	consumer  text NOT NULL,
	aggregate text NOT NULL,
	seq       bigint NOT NULL,
	PRIMARY KEY (consumer, aggregate)
);
`

// Migrate applies Schema in the current search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("migrate inbox: %w", err)
	}
	return nil
}

// Claim records that consumer handles e, inside the handler's transaction tx, and reports
// whether this is the first time. When first is false the event was already handled (and
// committed) and the handler should commit without doing anything. Two concurrent
// deliveries of one event serialize on the primary key: the second waits for the first
// transaction and then sees first == false (or true if the first rolled back).
func Claim(ctx context.Context, tx pgx.Tx, consumer string, e events.Envelope) (first bool, err error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO inbox (consumer, event_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING`,
		consumer, e.ID)
	if err != nil {
		return false, fmt.Errorf("inbox claim %s: %w", e.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Advance stores e's sequence as the last one consumer applied to e's aggregate, inside
// tx, and reports whether e is newer than what was stored (apply == true). A duplicate or
// stale event (sequence not greater) leaves the stored value and returns false, so a
// projection that only applies when Advance says so converges to the newest state whatever
// the delivery order. The aggregate key is "<owner>/<subject>", so ids of different owners
// never collide.
func Advance(ctx context.Context, tx pgx.Tx, consumer string, e events.Envelope) (apply bool, err error) {
	tag, err := tx.Exec(ctx, `
INSERT INTO aggregate_seq (consumer, aggregate, seq) VALUES ($1, $2, $3)
ON CONFLICT (consumer, aggregate) DO UPDATE SET seq = EXCLUDED.seq
WHERE aggregate_seq.seq < EXCLUDED.seq`,
		consumer, AggregateKey(e), e.Sequence)
	if err != nil {
		return false, fmt.Errorf("inbox advance %s: %w", e.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// AggregateKey is the key Advance stores sequences under: "<owner>/<subject>".
func AggregateKey(e events.Envelope) string { return e.Owner() + "/" + e.Subject }
