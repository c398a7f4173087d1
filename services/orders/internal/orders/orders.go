// Package orders is the domain of the orders service: orders placed from local copies of
// customer addresses and product prices, and the saga that drives each order through
// inventory and payments (reserve → charge → commit, compensations in reverse) until it is
// CONFIRMED or CANCELLED.
//
// The saga is a state machine (Machine) over a Saga row: every transition, on a reply or on
// a timer, runs inside a closure that the Store executes with the row locked, and the
// commands and events the transition produces are written to the outbox in that same
// transaction. Timers are columns of the row, not goroutines, so any orders process can
// resume any saga after a restart.
package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"polyshop/shared/events"
)

// Status is an order's public state.
type Status string

// Public order states. PENDING is a semantic lock: it covers every saga state before
// CONFIRMED or CANCELLED.
const (
	StatusPending   Status = "PENDING"
	StatusConfirmed Status = "CONFIRMED"
	StatusCancelled Status = "CANCELLED"
)

// State is the saga's state (SAGA.md, orchestrator table).
type State string

// Saga states.
const (
	Reserving  State = "RESERVING"
	Charging   State = "CHARGING"
	Committing State = "COMMITTING"
	Refunding  State = "REFUNDING"
	Releasing  State = "RELEASING"
	Confirmed  State = "CONFIRMED"
	Cancelled  State = "CANCELLED"
)

// States lists every saga state, in the order the saga normally passes them.
var States = []State{Reserving, Charging, Committing, Refunding, Releasing, Confirmed, Cancelled}

// Terminal reports whether s is an end state.
func (s State) Terminal() bool { return s == Confirmed || s == Cancelled }

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Cancel reasons.
const (
	ReasonOutOfStock      = "out_of_stock"
	ReasonUnknownProduct  = "unknown_product"
	ReasonPaymentDeclined = "payment_declined"
	ReasonPaymentFailed   = "payment_failed"
	ReasonTimeout         = "timeout"
)

// Step names, one per command kind, as shown in an order's "steps".
const (
	StepReserve = "reserve"
	StepCharge  = "charge"
	StepCommit  = "commit"
	StepRefund  = "refund"
	StepRelease = "release"
)

// Step statuses.
const (
	StepPending  = "pending"   // sent, no answer yet
	StepRetrying = "retrying"  // the participant answered failed; resent after a backoff
	StepDone     = "done"      // answered positively
	StepFailed   = "failed"    // answered negatively (rejected, declined, commit_failed)
	StepTimedOut = "timed_out" // no decisive answer before the step's deadline
)

// Money is an amount in minor units and a currency.
type Money = events.Money

// Address is a postal address.
type Address = events.Address

// Item is one line of an order; name and unit price are copies taken at placement.
type Item struct {
	ProductID string
	Name      string
	Quantity  int
	UnitPrice Money
}

// Step is one step of the saga as the order shows it.
type Step struct {
	Name      string
	Status    string
	StartedAt time.Time
	At        time.Time
	Attempts  int
	Error     string
}

// Order is an order with its lines and the saga's steps.
type Order struct {
	ID              string
	UserID          string
	Status          Status
	CancelReason    string
	Items           []Item
	Total           Money
	ShippingAddress *Address
	Steps           []Step
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Product is the local copy of a catalog product.
type Product struct {
	ID      string
	Name    string
	Price   Money
	Deleted bool
}

// Sentinel errors; the HTTP layer maps them in one table.
var (
	// ErrNotFound: no such order.
	ErrNotFound = errors.New("order not found")
	// ErrKeyReused: the idempotency key was used by this user for different items.
	ErrKeyReused = errors.New("idempotency key reused with different items")
	// ErrInvalid is matched by every *ValidationError and Invalid.
	ErrInvalid = errors.New("invalid input")
)

// ValidationError says which input field is wrong and why, in words a client can show.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Invalid is a list of validation errors reported together.
type Invalid []*ValidationError

func (v Invalid) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (v Invalid) Is(target error) bool { return target == ErrInvalid }

// BadRequestError is malformed input that is not about the body's values (a missing or
// oversized Idempotency-Key header, a bad cursor or limit): 400.
type BadRequestError struct {
	Field  string
	Reason string
}

func (e *BadRequestError) Error() string { return fmt.Sprintf("bad %s: %s", e.Field, e.Reason) }

// Line is one requested line of a new order.
type Line struct {
	ProductID string
	Quantity  int
}

// Placed is the answer to Place.
type Placed struct {
	ID     string
	Status Status
	// Created is false when the (user, idempotency key) pair named an existing order.
	Created bool
}

// ListQuery selects orders for List.
type ListQuery struct {
	UserID string // "" for every user (operator use)
	Status Status // "" for every status
	After  *Cursor
	Limit  int
}

// Page is one page of List.
type Page struct {
	Items []Order
	Next  *Cursor
}

// SagaStats is the answer of Sagas.
type SagaStats struct {
	Counts        map[State]int
	OldestPending *OldestPending
}

// OldestPending names the saga that has waited longest in a non-terminal state.
type OldestPending struct {
	OrderID string
	State   State
	Since   time.Time
}

// Faults are the service's stored fault switches; nil StepTimeoutMs means the default.
type Faults struct {
	StepTimeoutMs *int
}

// CopyChange is a change to a local copy, decoded from a users or catalog event.
type CopyChange struct {
	Kind    CopyKind
	UserID  string
	Address *Address
	Product Product
}

// VersionedChange is a CopyChange from an owner's export record: the aggregate's whole
// state at Version, under the aggregate key Key (pginbox.StateKey).
type VersionedChange struct {
	Key     string
	Version int64
	Change  CopyChange
}

// CopyKind says which local copy a CopyChange touches and how.
type CopyKind int

// Kinds of CopyChange.
const (
	CustomerRegistered CopyKind = iota + 1
	CustomerAddressChanged
	CustomerDeleted
	ProductUpserted
	ProductDeleted
	// CustomerReplaced sets the customer's copy to Address (nil: none), from a users
	// export record (a rebuild), unlike CustomerRegistered which keeps an existing row.
	CustomerReplaced
)

// SagaFunc is a transition: it changes s (locked by the Store) given the database's clock
// now and the effective step timeout, and returns what to write with it.
type SagaFunc func(ctx context.Context, s *Saga, now time.Time, stepTimeout time.Duration) (Effects, error)

// PlaceFunc validates and builds a new order inside the Store's transaction, given the
// database's clock, the effective step timeout, the customer's address copy (nil when
// none) and the product copies found for the requested lines (missing ones are absent).
type PlaceFunc func(ctx context.Context, now time.Time, stepTimeout time.Duration, addr *Address, products map[string]Product) (NewOrder, error)

// NewOrder is what Place writes in one transaction.
type NewOrder struct {
	Order     Order
	Key       string
	Hash      string
	Saga      Saga
	Envelopes []events.Envelope
}

// Store is the persistence the domain needs. Every method is safe for concurrent use by
// several goroutines and several processes sharing one database.
type Store interface {
	// Place writes the order built by fn, its saga row and fn's envelopes (outbox) in one
	// transaction, unless the user already has an order under key: then it returns that
	// order's id, status and request hash with existing == true and does not call fn (or
	// discards its result when a concurrent placement won the race).
	Place(ctx context.Context, userID, key string, productIDs []string, fn PlaceFunc) (p Placed, hash string, err error)
	// UpdateSaga locks the saga of orderID (SELECT … FOR UPDATE), runs fn and writes its
	// effects in the same transaction. When inboxConsumer is not "", e is claimed in the
	// inbox first and a duplicate runs nothing. A missing saga is ErrNotFound.
	UpdateSaga(ctx context.Context, orderID, inboxConsumer string, e *events.Envelope, fn SagaFunc) error
	// ClaimDue locks up to limit sagas whose next_attempt_at or step_deadline_at has
	// passed by the database's clock (FOR UPDATE SKIP LOCKED, so concurrent workers take
	// different rows), runs fn on each and writes the effects, in one transaction.
	ClaimDue(ctx context.Context, limit int, fn SagaFunc) (int, error)
	// ApplyCopy applies a change to a local copy, guarded by pginbox.Advance for e in the
	// same transaction (a duplicate or stale event changes nothing).
	ApplyCopy(ctx context.Context, consumer string, e events.Envelope, c CopyChange) error
	// ApplyCopyState applies each change of a page of an owner's export records (a
	// rebuild), each guarded by pginbox.AdvanceState for its aggregate key and version in
	// its own transaction (a record older than what the copy has changes nothing).
	ApplyCopyState(ctx context.Context, consumer string, changes []VersionedChange) error
	// Get returns an order with its items and steps.
	Get(ctx context.Context, id string) (Order, error)
	// List returns orders newest first.
	List(ctx context.Context, q ListQuery) (Page, error)
	// SagaStats counts sagas per state (only state, when not "").
	SagaStats(ctx context.Context, state State) (SagaStats, error)
	// Faults reads the stored fault switches.
	Faults(ctx context.Context) (Faults, error)
	// SetFaults stores f (nil fields are cleared).
	SetFaults(ctx context.Context, f Faults) error
}
