package admin

import (
	"context"
	"net/http"

	"polyshop/shared/httpx"
)

// Stats counts a service's records by kind for GET /admin/stats (the console's data map);
// pgstats.Count builds one over PostgreSQL.
type Stats func(ctx context.Context) (map[string]int64, error)

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
