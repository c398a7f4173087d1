package httpapi

import (
	"net/http"

	"polyshop/shared/rebuild"
)

// exportStock serves GET /export/stock?cursor=&limit=: every stock row with its version,
// retired ones included (available 0, retired true: what their last stock_changed said),
// for read models' rebuilds (shared/rebuild). Read-only, operator and internal use.
func (a *API) exportStock(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := rebuild.ParseExportQuery(r)
	if err != nil {
		return err
	}
	rows, err := a.svc.ExportStock(r.Context(), after, limit)
	if err != nil {
		return problem(err)
	}
	items := make([]rebuild.StockRecord, len(rows))
	for i, st := range rows {
		items[i] = rebuild.StockRecord{ProductID: st.ProductID, Available: st.Offered(), Version: st.Version, Retired: st.Retired}
	}
	return rebuild.WritePage(w, items, limit, func(s rebuild.StockRecord) string { return s.ProductID })
}
