package httpapi

import (
	"errors"
	"net/http"

	"polyshop/services/payments/internal/payments"
	"polyshop/shared/httpx"
	"polyshop/shared/rebuild"
)

// allPayments serves GET /payments without orderId: every payment, tombstones included,
// in id order, paged like the owners' exports (?cursor=&limit=, shared/rebuild). Read-only,
// for operators and the auditor (infra/checks/internal/audit).
func (a *API) allPayments(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := rebuild.ParseExportQuery(r)
	if err != nil {
		return err
	}
	ps, err := a.svc.List(r.Context(), after, limit)
	var ferr *payments.FieldError
	if errors.As(err, &ferr) && ferr.Field == "cursor" {
		// A well-encoded cursor around something that is not a payment id was not issued here.
		return httpx.BadRequest("The list parameters are malformed.", httpx.FieldError{Field: "cursor", Reason: "is not a cursor this service issued"})
	}
	if err != nil {
		return problem(err)
	}
	items := make([]paymentJSON, len(ps))
	for i, p := range ps {
		items[i] = toJSON(p)
	}
	return rebuild.WritePage(w, items, limit, func(p paymentJSON) string { return p.ID })
}

func toJSON(p payments.Payment) paymentJSON {
	return paymentJSON{ID: p.ID, OrderID: p.OrderID, UserID: p.UserID, Amount: p.Amount,
		Status: string(p.Status), Refunded: p.Refunded, Reason: p.Reason, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}
