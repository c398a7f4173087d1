package admin

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/jackc/pgx/v5"

	"polyshop/shared/httpx"
)

// Stats counts a service's records by kind for GET /admin/stats (the console's data map).
type Stats func(ctx context.Context) (map[string]int64, error)

// RowQuerier is what CountRows needs (a *pgxpool.Pool or a pgx.Conn).
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CountRows is Stats over PostgreSQL: each kind's count is its query's single bigint
// (such as SELECT count(*) FROM payments). Every call runs every query: a count(*) is a
// scan of the table (or an index), cheap at workshop sizes; do not poll it in a loop.
func CountRows(db RowQuerier, queries map[string]string) Stats {
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

// stats answers GET /admin/stats: 200 {"records":{"<kind>":n,...}}; 404 when the service
// counts nothing.
func (d Deps) stats(w http.ResponseWriter, r *http.Request) error {
	if d.Stats == nil {
		return httpx.NotFound("this service exposes no record counts")
	}
	rec, err := d.Stats(r.Context())
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"records": rec})
}
