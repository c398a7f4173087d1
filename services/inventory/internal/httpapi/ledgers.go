package httpapi

import (
	"net/http"

	"polyshop/shared/rebuild"
)

// ledgers serves GET /ledgers?cursor=&limit=: every product's ledger (retired ones
// included) with its version, in product id order, paged like the exports. Read-only, for
// operators and the auditor (infra/checks/internal/audit), which checks the ledger
// equation of every product, not only of those that appear in orders, and that reserved
// equals held (what active reservations hold). Each row is read by one statement, so its
// equation holds in itself; pages are not one snapshot.
func (a *API) ledgers(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := rebuild.ParseExportQuery(r)
	if err != nil {
		return err
	}
	rows, err := a.svc.Ledgers(r.Context(), after, limit)
	if err != nil {
		return problem(err)
	}
	items := make([]ledgerJSON, len(rows))
	for i, st := range rows {
		items[i] = toLedger(st)
	}
	return rebuild.WritePage(w, items, limit, func(l ledgerJSON) string { return l.ProductID })
}
