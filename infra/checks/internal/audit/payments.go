package audit

import "fmt"

// CheckPayment checks one payment on its own: its order must exist in orders (orderKnown),
// and a refund must not exceed the charge nor be in another currency. A payment that
// refunds is "refunded" and says how much.
func CheckPayment(p Payment, orderKnown bool) []Violation {
	var out []Violation
	bad := func(kind, detail string) {
		out = append(out, Violation{Kind: kind, IDs: []string{p.ID, p.OrderID}, Detail: detail})
	}
	if !orderKnown {
		bad("payment-orphan", fmt.Sprintf("%s payment of %d %s for an order orders does not know", p.Status, p.Amount.Amount, p.Amount.Currency))
	}
	switch {
	case p.Status == "refunded" && p.Refunded == nil:
		bad("payment-refund", "refunded without a refunded amount")
	case p.Refunded != nil && p.Status != "refunded":
		bad("payment-refund", fmt.Sprintf("%s with a refunded amount of %d %s", p.Status, p.Refunded.Amount, p.Refunded.Currency))
	case p.Refunded != nil && p.Refunded.Currency != p.Amount.Currency:
		bad("payment-refund", fmt.Sprintf("refunded %d %s of a charge in %s", p.Refunded.Amount, p.Refunded.Currency, p.Amount.Currency))
	case p.Refunded != nil && p.Refunded.Amount > p.Amount.Amount:
		bad("payment-refund", fmt.Sprintf("refunded %d, more than the charge of %d %s", p.Refunded.Amount, p.Amount.Amount, p.Amount.Currency))
	}
	return out
}
