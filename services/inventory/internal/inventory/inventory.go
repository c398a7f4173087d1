// Package inventory is the inventory domain: stock per product with an auditable ledger,
// reservations of the order saga (reserve, release, commit, expiry), and the lab fault
// switches. It declares the Store it needs; internal/pgstore implements it on PostgreSQL.
//
// Every state change and the events and replies it causes are written by the Store in one
// transaction (outbox included), so a reply is never lost and never sent for a change
// that did not commit.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"polyshop/shared/events"
)

// Sentinel errors of the domain; httpapi maps them to statuses.
var (
	// ErrNotFound: no such product (or it was retired by the catalog).
	ErrNotFound = errors.New("not found")
	// ErrStaleVersion: a restock named a version that is not the current one.
	ErrStaleVersion = errors.New("stale version")
	// ErrUnhandledType: an event or command type this service does not handle; consumers
	// treat it as permanent (dead letter).
	ErrUnhandledType = errors.New("unhandled event type")
)

// ValidationError names the field of an input that is well-formed but invalid.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s %s", e.Field, e.Reason) }

// Stock is one product's stock row. The ledger holds after every change:
//
//	Initial + Restocked = Available + Reserved + Sold
//
// Released counts units that came back from reservations (release or expiry); Reserved is
// what is held right now. Version is bumped on every change and is the Sequence of the
// stock_changed event that announces it.
type Stock struct {
	ProductID string
	Initial   int64
	Restocked int64
	Reserved  int64
	Sold      int64
	Released  int64
	Available int64
	Version   int64
	// Retired: the catalog deleted the product. Its stock cannot be reserved, restocked
	// or read through GET /stock any more; the ledger stays readable.
	Retired bool
	// Held is what the product's active reservations hold; filled only by Store.Ledgers,
	// LedgerOf and Reconcile. Reserved = Held unless a reserve was applied twice
	// (inventory.dedup off, lab 03).
	Held      int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Offered is the availability the shop announces: zero for a retired product.
func (s Stock) Offered() int64 {
	if s.Retired {
		return 0
	}
	return s.Available
}

// Balanced reports whether the ledger equation holds.
func (s Stock) Balanced() bool {
	return s.Initial+s.Restocked == s.Available+s.Reserved+s.Sold
}

// Status is a reservation's state.
type Status string

// Reservation states. None is the row a command inserts before deciding (never shown by
// the API); Rejected is a reserve that held nothing (its stored reply is "rejected").
const (
	StatusNone      Status = "none"
	StatusActive    Status = "active"
	StatusRejected  Status = "rejected"
	StatusReleased  Status = "released"
	StatusCommitted Status = "committed"
	StatusExpired   Status = "expired"
	StatusTombstone Status = "tombstone"
)

// StoredReply is a reply kept with the reservation, per verb, so a repeated command gets
// the same answer again.
type StoredReply struct {
	Type string                `json:"type"`
	Data events.InventoryReply `json:"data"`
}

// Reservation is the saga state of one order in inventory; the row every command of that
// order locks.
type Reservation struct {
	OrderID string
	ID      string
	UserID  string
	Status  Status
	// Items are the reserved lines, one per product, sorted by product id.
	Items []events.StockItem
	// Reserve, Release and Commit are the stored replies, nil until the verb was handled.
	Reserve, Release, Commit *StoredReply
	// Replies counts replies written for the order (their Sequence); Version counts its
	// domain events (their Sequence).
	Replies   int64
	Version   int64
	CreatedAt time.Time
	ExpiresAt *time.Time
	UpdatedAt time.Time
}

// Faults are the lab fault switches.
type Faults struct {
	// LatencyMs is slept before each saga command is handled (0..20000).
	LatencyMs int `json:"latencyMs"`
	// Down stops the command consumers and makes the business API answer 503.
	Down bool `json:"down"`
}

// FaultsPatch changes only the fields that are set.
type FaultsPatch struct {
	LatencyMs *int
	Down      *bool
}

// MaxLatencyMs bounds Faults.LatencyMs.
const MaxLatencyMs = 20000

// InboxClaim asks a Store to claim Event for Consumer in the inbox, in the same
// transaction as the change, and to change nothing when it was claimed before.
type InboxClaim struct {
	Consumer string
	Event    events.Envelope
}

// ProductFunc decides the change of one stock row: cur is the locked row, or nil when the
// product has no row. It returns the row to write (nil: write nothing) and the events to
// add to the outbox.
type ProductFunc func(cur *Stock) (next *Stock, evs []events.Envelope, err error)

// OrderTx is the transaction of one saga command: the order's reservation row is locked
// for its whole life.
type OrderTx interface {
	// Reservation returns the locked reservation as it was read.
	Reservation() Reservation
	// LockStock locks the stock rows of ids in ascending product id order (the one lock
	// order of the service, so concurrent reservations cannot deadlock) and returns those
	// that exist.
	LockStock(ctx context.Context, ids []string) (map[string]Stock, error)
	// Save writes r, the changed stock rows and evs (to the outbox).
	Save(ctx context.Context, r Reservation, stocks []Stock, evs []events.Envelope) error
}

// OrderFunc handles one command inside an OrderTx.
type OrderFunc func(ctx context.Context, tx OrderTx) error

// Store is the inventory's persistence. Implementations are safe for concurrent use;
// every method is one transaction.
type Store interface {
	// Stock returns a product's row, retired ones included; ErrNotFound when none.
	Stock(ctx context.Context, productID string) (Stock, error)
	// Stocks returns the rows of ids that exist, retired ones included.
	Stocks(ctx context.Context, ids []string) ([]Stock, error)
	// Product locks productID's row (when it exists), runs fn and writes what it returns,
	// after claiming claim (when not nil); an already claimed event changes nothing. It
	// returns the row after the change.
	Product(ctx context.Context, productID string, claim *InboxClaim, fn ProductFunc) (Stock, error)
	// Order locks the reservation row of orderID, inserting it (status none, id newID)
	// when missing, and runs fn. With claim, it first claims claim.Event in the inbox in
	// the same transaction; an event claimed before runs nothing.
	Order(ctx context.Context, orderID, newID string, claim *InboxClaim, fn OrderFunc) error
	// ExpireOne claims one active reservation with expires_at <= now (FOR UPDATE SKIP
	// LOCKED), runs fn on it, and reports whether there was one.
	ExpireOne(ctx context.Context, now time.Time, fn OrderFunc) (bool, error)
	// ExportStock returns up to limit stock rows, retired ones included, with product ids
	// after after, in product id order.
	ExportStock(ctx context.Context, after string, limit int) ([]Stock, error)
	// Reservations returns the reservations of orderID (status none left out).
	Reservations(ctx context.Context, orderID string) ([]Reservation, error)
	// Faults returns the stored switches.
	Faults(ctx context.Context) (Faults, error)
	// SetFaults applies p and returns the new switches.
	SetFaults(ctx context.Context, p FaultsPatch) (Faults, error)
	// Ledgers returns up to limit stock rows after after, in product id order, each with
	// Held, in one statement (so each row's Reserved and Held are consistent).
	Ledgers(ctx context.Context, after string, limit int) ([]Stock, error)
	// LedgerOf returns one product's row with Held; ErrNotFound when none.
	LedgerOf(ctx context.Context, productID string) (Stock, error)
	// Reconcile locks productID's row, fills its Held and runs fn like Product.
	Reconcile(ctx context.Context, productID string, fn ProductFunc) (Stock, error)
}
