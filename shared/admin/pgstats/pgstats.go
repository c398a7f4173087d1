// Package pgstats counts a PostgreSQL owner's records for the operator API's
// GET /admin/stats (package admin), kept apart so that services without PostgreSQL do not
// compile pgx.
package pgstats

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"polyshop/shared/admin"
)

// RowQuerier is what Count needs (a *pgxpool.Pool or a pgx.Conn).
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Count is admin.Stats over PostgreSQL: each kind's count is its query's single bigint
// (such as SELECT count(*) FROM payments). Every call runs every query: a count(*) is a
// scan of the table (or an index), cheap at workshop sizes; do not poll it in a loop.
func Count(db RowQuerier, queries map[string]string) admin.Stats {
	return func(ctx context.Context) (map[string]int64, error) {
		out := make(map[string]int64, len(queries))
		for _, kind := range slices.Sorted(maps.Keys(queries)) {
			var n int64
			if err := db.QueryRow(ctx, queries[kind]).Scan(&n); err != nil {
				return nil, fmt.Errorf("count %s: %w", kind, err)
			}
			out[kind] = n
		}
		return out, nil
	}
}
