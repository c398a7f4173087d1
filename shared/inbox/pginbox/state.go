package pginbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// StateKey is the aggregate key Advance uses for owner's aggregate id ("<owner>/<id>"), for
// records that are not envelopes (an owner's export, see AdvanceState).
func StateKey(owner, id string) string { return owner + "/" + id }

// AdvanceState is Advance for a snapshot record: the aggregate's full state at version,
// such as one record of an owner's export read by a rebuild (shared/rebuild). It stores
// version as the last one consumer applied to the aggregate key and reports whether the
// record should be applied: when version is newer than what is stored, and also when it is
// equal — a record is the whole state at that version, so re-applying it changes nothing
// a copy should have, and repairs a copy that lost the row. An older version leaves
// everything as it is. Use the same consumer name as the live handler, so records and
// events are judged against one another.
func AdvanceState(ctx context.Context, tx pgx.Tx, consumer, key string, version int64) (apply bool, err error) {
	tag, err := tx.Exec(ctx, `
INSERT INTO aggregate_seq (consumer, aggregate, seq) VALUES ($1, $2, $3)
ON CONFLICT (consumer, aggregate) DO UPDATE SET seq = EXCLUDED.seq
WHERE aggregate_seq.seq <= EXCLUDED.seq`,
		consumer, key, version)
	if err != nil {
		return false, fmt.Errorf("inbox advance %s to %d: %w", key, version, err)
	}
	return tag.RowsAffected() == 1, nil
}
