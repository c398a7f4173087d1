// Package sessions is the domain of the sessions service: bearer-token sessions with a
// sliding expiry, per-user session sets, revocation, and throttling of failed logins.
//
// A token is 32 random bytes (256 bits) in unpadded base64url, shown to the client once.
// Only its SHA-256 is stored, so a copy of the store cannot be replayed as tokens. Each
// session also has a random, non-secret id that events, listings and logs use.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"polyshop/shared/events"
)

// Session is one logged-in session.
type Session struct {
	ID         string // random, non-secret
	TokenHash  string // hex SHA-256 of the token
	UserID     string
	Role       string
	ClientAddr string
	CreatedAt  time.Time
	ExpiresAt  time.Time // moves forward on every successful validation
}

// Sentinel errors.
var (
	// ErrNotFound: no such session (unknown, expired or revoked token).
	ErrNotFound = errors.New("session not found")
	// ErrBadCredentials: the users service refused the email and password.
	ErrBadCredentials = errors.New("invalid email or password")
	// ErrUserDeleted: the account was deleted while its login was being checked. Login
	// reports it as ErrBadCredentials.
	ErrUserDeleted = errors.New("user deleted")
	// ErrUnavailable: the users service could not answer.
	ErrUnavailable = errors.New("users service unavailable")
	// ErrInvalid: the request is malformed (see the wrapping error for the field).
	ErrInvalid = errors.New("invalid input")
)

// ThrottledError says a login was refused because of too many recent failures.
type ThrottledError struct {
	// Scope is "account" or "client".
	Scope      string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins for this %s; retry in %s", e.Scope, e.RetryAfter.Round(time.Second))
}

// FieldError is an ErrInvalid naming the field.
type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string        { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// EventsFunc builds the events recorded with a change to s, inside the store's atomic unit.
type EventsFunc func(s Session) ([]events.Envelope, error)

// Store keeps sessions and throttling counters. Implementations are safe for concurrent use
// and write each change atomically with its events.
type Store interface {
	// Create stores s, alive for ttl, with evs; ErrUserDeleted, storing nothing, when the
	// user was marked deleted (MarkUserDeleted), checked atomically with the write.
	Create(ctx context.Context, s Session, ttl time.Duration, evs ...events.Envelope) error
	// MarkUserDeleted records, for ttl, that userID's account is gone, so that a login that
	// was verified before the deletion cannot create a session after the revocation.
	MarkUserDeleted(ctx context.Context, userID string, ttl time.Duration) error
	// Touch returns the session whose token hashes to tokenHash and extends its life to
	// ttl from now (ExpiresAt reflects it). ErrNotFound when there is none.
	Touch(ctx context.Context, tokenHash string, ttl time.Duration) (Session, error)
	// Delete removes the session with tokenHash and records evs(session) with it.
	// ErrNotFound when there is none; two concurrent deletes record events once.
	Delete(ctx context.Context, tokenHash string, evs EventsFunc) (Session, error)
	// List returns userID's live sessions, oldest first.
	List(ctx context.Context, userID string) ([]Session, error)
	// DeleteAll removes every session of userID, recording evs(session) for each, and
	// returns how many there were. A session created concurrently is either deleted or
	// survives intact (it is never left out of the user's set).
	DeleteAll(ctx context.Context, userID string, evs EventsFunc) (int, error)
	// Attempt counts one login attempt against each counter at keys BEFORE the credentials
	// are checked, atomically, so parallel attempts cannot all pass a check made before
	// any of them is counted. When a counter is already at its limit (limits[i] for
	// keys[i]), nothing is counted and blocked is that key's index, with the counter's
	// remaining window; otherwise every counter is incremented (a counter's window of
	// length window starts at its first attempt) and blocked is -1.
	Attempt(ctx context.Context, window time.Duration, limits []int64, keys ...string) (blocked int, retryAfter time.Duration, err error)
	// Refund takes one attempt back from each counter at keys (never below zero), for an
	// attempt that turned out not to be a failure.
	Refund(ctx context.Context, keys ...string) error
	// ResetFailures deletes the counter at key.
	ResetFailures(ctx context.Context, key string) error
	// Ready reports whether the store is reachable.
	Ready(ctx context.Context) error
}

// Verifier checks an email and password with the users service.
type Verifier interface {
	// Verify returns the user's id and role, ErrBadCredentials, or another error when the
	// users service cannot answer.
	Verify(ctx context.Context, email, password string) (userID, role string, err error)
}

// NewToken returns a fresh token: 32 random bytes in unpadded base64url (43 characters).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the hex SHA-256 of token, the form in which tokens are stored. A fast
// hash is enough here, unlike for passwords: tokens carry 256 bits of entropy.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether token has the shape NewToken produces, so malformed tokens
// are refused without a store round trip.
func wellFormed(token string) bool {
	if len(token) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
