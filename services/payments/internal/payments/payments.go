// Package payments is the payments domain: one payment per order, charged at most once,
// refunded at most once, with the order id as the idempotency key; the saga's charge and
// refund commands; and the lab's fault switches (decline rate, error rate, latency, down).
//
// The Service decides, the Store persists: every command runs inside Store.Update, which
// locks the order's payment row (or serializes the first insert on the unique order id)
// and writes the new row, the reply and the domain event to the outbox in one transaction.
package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"polyshop/shared/events"
)

// Status is a payment's state.
type Status string

// Payment states. A row exists only for an order that was charged, declined, refunded, or
// whose refund came before any charge (a tombstone).
const (
	// StatusCharged: the order's total was charged; the stored reply is charged.
	StatusCharged Status = "charged"
	// StatusDeclined: no money moved and none will for this order; the stored reply is
	// declined. Final.
	StatusDeclined Status = "declined"
	// StatusRefunded: charged, then given back in full.
	StatusRefunded Status = "refunded"
	// StatusTombstone: a refund came before any charge; a late charge is declined with
	// ReasonRefunded. Tombstones are never removed (delays are unbounded).
	StatusTombstone Status = "tombstone"
)

// Reasons of a declined charge (PaymentReply.Reason, PaymentDeclined.Reason).
const (
	// ReasonCardDeclined: the (simulated) issuer declined; drawn from the decline rate.
	ReasonCardDeclined = "card_declined"
	// ReasonRefunded: the order's refund came before this charge (hanging compensation).
	ReasonRefunded = "refunded"
)

// Payment is the one row kept per order.
type Payment struct {
	ID      string
	OrderID string
	UserID  string
	// Amount is what was charged (or asked for, when declined); zero with an empty currency
	// for a tombstone.
	Amount events.Money
	Status Status
	// Refunded is the amount given back: set on refunded payments, nil otherwise.
	Refunded *events.Money
	// Reason is the decline reason (declined) or the order's cancel reason (refunded,
	// tombstone).
	Reason string
	// Replies counts the replies written for the order; the next reply's sequence is
	// Replies+1.
	Replies int64
	// Version is the payment's sequence for its domain events (1 charged or declined,
	// 2 refunded).
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UpdateFunc decides what a command does to the order's payment. cur is the locked row, or
// nil when the order has none. It returns the row to store (nil: store nothing, cur is
// left as it was) and the envelopes (reply, domain event) to add to the outbox in the
// same transaction. It may be called again when a concurrent first insert of the same
// order wins the race; it must then decide afresh from the new cur.
type UpdateFunc func(cur *Payment) (next *Payment, out []events.Envelope, err error)

// Store persists payments and fault switches. Implementations are safe for concurrent use.
type Store interface {
	// Update runs fn with the order's payment row locked (SELECT … FOR UPDATE), and stores
	// its result and outbox envelopes in one transaction. Two first charges of one order
	// race on the unique order id: the loser's transaction rolls back and fn runs again
	// with the winner's row, so an order never has two rows.
	Update(ctx context.Context, orderID string, fn UpdateFunc) error
	// ByOrder returns the payments of an order (zero or one), as stored.
	ByOrder(ctx context.Context, orderID string) ([]Payment, error)
	// List returns up to limit payments with ids after after ("" for the first), in id
	// order; one consistent read per call.
	List(ctx context.Context, after string, limit int) ([]Payment, error)
	// Faults returns the stored fault switches (all zero when never set).
	Faults(ctx context.Context) (Faults, error)
	// SetFaults stores f.
	SetFaults(ctx context.Context, f Faults) error
	// UpdateFaults applies fn to the stored switches under a row lock and stores the result.
	UpdateFaults(ctx context.Context, fn func(*Faults) error) (Faults, error)
}

// ErrInvalid is matched by errors for invalid commands or queries; it wraps
// events.ErrInvalid, so a consumer dead-letters such a command at once instead of
// retrying it.
var ErrInvalid = fmt.Errorf("payments: %w", events.ErrInvalid)

// ErrDown is returned by the business API while the down switch is on.
var ErrDown = errors.New("payments is down (fault switch)")

// FieldError names the field of a command, query or fault update that is invalid.
type FieldError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is reports true for ErrInvalid.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid || target == events.ErrInvalid
}
