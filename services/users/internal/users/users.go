// Package users is the domain of the users service: accounts with an email, a name, a role,
// a password hash and one shipping address; the rules that validate them; the Store the
// service needs; and the Service that applies changes and records their events.
//
// Every change and the events it produces are one atomic unit: the Service builds the
// events inside the closure it hands to Store.Update (or alongside the row given to
// Store.Create), and the Store writes both in one transaction, the events to its outbox.
package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"polyshop/shared/events"
)

// Role says what an account may do.
type Role string

// Roles.
const (
	RoleCustomer Role = "customer"
	RoleAdmin    Role = "admin"
)

// Address is the one shipping address of an account.
type Address = events.Address

// User is an account. A deleted user keeps its row (id, role, timestamps, version) so the
// event sequence continues and references stay meaningful, but its personal data (email,
// name, password hash, address) is scrubbed.
type User struct {
	ID           string
	Email        string // lowercased; "" once deleted
	Name         string
	Role         Role
	PasswordHash string // PHC string, see Hasher; never leaves the service
	Address      *Address
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DeletedAt    *time.Time
	// Version is the aggregate's sequence: 1 after registration, +1 per change that emits
	// an event. It is the sequence attribute of the events.
	Version int64
}

// Deleted reports whether the account has been deleted.
func (u User) Deleted() bool { return u.DeletedAt != nil }

// Sentinel errors. Adapters translate driver errors into these; the HTTP layer maps them
// to statuses in one table.
var (
	// ErrNotFound: no such user, or the user is deleted.
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken: another live account already uses the email.
	ErrEmailTaken = errors.New("email already registered")
	// ErrBadCredentials: unknown email or wrong password; deliberately indistinguishable.
	ErrBadCredentials = errors.New("invalid email or password")
	// ErrBusy: every password-hashing slot is taken and none freed in time; the caller
	// should retry shortly (503 with Retry-After).
	ErrBusy = errors.New("too many password hashes in progress")
	// ErrInvalid is matched by every *ValidationError.
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
	if len(v) == 0 {
		return "invalid input"
	}
	s := v[0].Error()
	for _, e := range v[1:] {
		s += "; " + e.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrInvalid) true.
func (v Invalid) Is(target error) bool { return target == ErrInvalid }

// err returns v as an error, or nil when it is empty.
func (v Invalid) err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

// UpdateFunc changes the user it is given and returns the events describing the change (or
// none). An error aborts the update: nothing is written.
type UpdateFunc func(u *User) ([]events.Envelope, error)

// Store persists users and their events. Implementations are safe for concurrent use.
// Every write is atomic together with its events: either the row change and all its events
// are stored, or nothing is.
type Store interface {
	// Create inserts u and evs. ErrEmailTaken when a live account has the same email.
	Create(ctx context.Context, u User, evs ...events.Envelope) error
	// Get returns the live user with id; ErrNotFound when absent or deleted.
	Get(ctx context.Context, id string) (User, error)
	// GetByEmail returns the live user with email (compared case-insensitively).
	GetByEmail(ctx context.Context, email string) (User, error)
	// Update locks the user with id (live or deleted), runs fn on a copy and stores the
	// result and fn's events in one transaction. ErrNotFound when no row has that id.
	// fn may run again if the transaction is retried, so it must not have side effects.
	Update(ctx context.Context, id string, fn UpdateFunc) (User, error)
	// CountAttempt counts one attempt against the fixed-window counter at key, atomically,
	// and returns the count in the current window (this attempt included) and the time left
	// in it. A window older than window starts afresh at 1.
	CountAttempt(ctx context.Context, key string, window time.Duration) (count int64, left time.Duration, err error)
	// Ready reports whether the store is reachable.
	Ready(ctx context.Context) error
	// Export returns up to limit users, deleted ones included, with ids after after ("" for
	// the first page), in id order.
	Export(ctx context.Context, after string, limit int) ([]User, error)
}

// ThrottledError says sign-ups are refused for Scope ("email" or "client") until
// RetryAfter has passed.
type ThrottledError struct {
	Scope      string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return "too many sign-ups for this " + e.Scope + "; retry after " + e.RetryAfter.String()
}
