package inventory

import (
	"context"
	"errors"

	"polyshop/shared/events"
)

// The lab pattern switch inventory.dedup (shared/chaos, lab 03). With deduplication on (the
// default) a repeated reserve of an order gets its stored reply again and changes nothing.
// Off, the reserve's natural-key idempotency per (order, verb) is skipped: a duplicated
// reserve command (duplicates 2..3 in orders' relay) holds the order's items again, so the
// stock counts reserved units that no reservation holds. The ledger equation still
// balances (the units moved from available to reserved); the auditor's ledger-held check
// (reserved = what active reservations hold) shows the excess, and Reconcile gives it back.
//
// Release and commit are left as they are: each is guarded by the reservation's state
// (a second release finds it released, a second commit finds it committed), which is itself
// a natural-key check, and switching those off would corrupt the ledger equation rather
// than show a duplicate.

// ErrHeldExceedsReserved: active reservations hold more than the stock counts as reserved
// (never expected; Reconcile refuses to guess).
var ErrHeldExceedsReserved = errors.New("active reservations hold more than the stock's reserved count")

// dedup reports whether the reserve's natural-key check is on.
func (s *Service) dedup() bool { return s.dedupOn == nil || s.dedupOn() }

// reserveAgain holds the order's items a second time (dedup off): each item still
// available is taken again; one that is not is skipped. The stored reply is sent again, as
// with deduplication on.
func (t *turn) reserveAgain(tx OrderTx, attempt int) error {
	stocks, err := tx.LockStock(t.ctx, productIDs(t.r.Items))
	if err != nil {
		return err
	}
	for _, it := range t.r.Items {
		st, ok := stocks[it.ProductID]
		if !ok || st.Retired || st.Available < it.Quantity {
			continue
		}
		st.Available -= it.Quantity
		st.Reserved += it.Quantity
		if err := t.changeStock(st); err != nil {
			return err
		}
	}
	t.s.log.WarnContext(t.ctx, "inventory.dedup off: a repeated reserve held the order's stock again", "order_id", t.r.OrderID)
	return t.resend(t.r.Reserve, attempt)
}

// Reconcile gives back the units a product counts as reserved beyond what its active
// reservations hold (Stock.Held): they return to available and count as released, with a
// stock_changed event. The operator's repair after inventory.dedup was off (lab 03); a
// product without excess is left unchanged. It returns the row after and the units given
// back.
func (s *Service) Reconcile(ctx context.Context, productID string) (Stock, int64, error) {
	var returned int64
	st, err := s.store.Reconcile(ctx, productID, func(cur *Stock) (*Stock, []events.Envelope, error) {
		if cur == nil {
			return nil, nil, ErrNotFound
		}
		excess := cur.Reserved - cur.Held
		switch {
		case excess < 0:
			return nil, nil, ErrHeldExceedsReserved
		case excess == 0:
			return nil, nil, nil
		}
		next := *cur
		next.Reserved -= excess
		next.Available += excess
		next.Released += excess
		ev, err := s.touch(ctx, &next)
		if err != nil {
			return nil, nil, err
		}
		returned = excess
		return &next, []events.Envelope{ev}, nil
	})
	return st, returned, err
}

// Ledgers returns a page of every product's ledger with Held filled, in product id order
// after the id after (GET /ledgers, the auditor).
func (s *Service) Ledgers(ctx context.Context, after string, limit int) ([]Stock, error) {
	return s.store.Ledgers(ctx, after, limit)
}
