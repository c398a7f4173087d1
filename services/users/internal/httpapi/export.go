package httpapi

import (
	"net/http"

	"github.com/google/uuid"

	"polyshop/shared/httpx"
	"polyshop/shared/rebuild"
)

// exportAddresses serves GET /export/addresses?cursor=&limit=: every user's shipping address
// with the user's version, deleted users as tombstones, for read models' rebuilds (orders'
// address copy; shared/rebuild). Only what the copy needs leaves: no email, name or role.
// Read-only, operator and internal use.
func (a *API) exportAddresses(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := rebuild.ParseExportQuery(r)
	if err != nil {
		return err
	}
	if after != "" {
		if _, err := uuid.Parse(after); err != nil {
			return httpx.BadRequest("The export parameters are malformed.",
				httpx.FieldError{Field: "cursor", Reason: "is not a cursor this service issued"})
		}
	}
	us, err := a.svc.Export(r.Context(), after, limit)
	if err != nil {
		return problem(err)
	}
	items := make([]rebuild.AddressRecord, len(us))
	for i, u := range us {
		items[i] = rebuild.AddressRecord{UserID: u.ID, Address: u.Address, Version: u.Version, Deleted: u.Deleted()}
	}
	return rebuild.WritePage(w, items, limit, func(a rebuild.AddressRecord) string { return a.UserID })
}
