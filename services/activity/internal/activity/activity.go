// Package activity is the activity-feed domain: the read model that turns other services'
// domain events into a per-user feed ("what happened to my account") and a global feed of
// recent catalog activity. It owns the event→feed mapping (rules.go), the paging rules
// (limit, opaque cursor), the time buckets that bound partition size, and the deletion
// rule that keeps a deleted user's feed from coming back. The datastore sits behind Store.
package activity

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Adapters translate driver errors; callers match with errors.Is.
var (
	// ErrInvalidInput is matched by every *InputError: a request the caller must fix.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnhandledType is returned by Apply for an event type without a rule. The consumer
	// only subscribes to ruled subjects, so seeing one means a misconfiguration: the event is
	// dead-lettered rather than silently acknowledged.
	ErrUnhandledType = errors.New("event type not handled by activity")
)

// InputError names the request field that is invalid and why. It matches ErrInvalidInput.
type InputError struct {
	// Field is the query parameter or path segment at fault ("limit", "cursor", "id").
	Field string
	// Reason is a sentence for the problem+json detail.
	Reason string
	// Unacceptable is true when the value reads fine but is out of range (a 422); false
	// when it does not parse at all (a 400).
	Unacceptable bool
}

// Error implements error.
func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is reports true for ErrInvalidInput.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Entry is one item of a feed. Every field is derived from the event alone, so a redelivered
// event produces the identical entry and the store's write is an upsert of the same row.
type Entry struct {
	// EventID is the event's id (a UUID, lower case); it breaks ties between entries of the
	// same millisecond.
	EventID string `json:"eventId"`
	// Type is the event type, such as "polyshop.sessions.started.v1".
	Type string `json:"type"`
	// Subject is the id of the aggregate the event is about (user, session, product, …).
	Subject string `json:"subject"`
	// Summary is a short human-readable line for the UI.
	Summary string `json:"summary"`
	// OccurredAt is the event's time, in UTC, truncated to the millisecond because that is
	// what a CQL timestamp holds.
	OccurredAt time.Time `json:"occurredAt"`
}

// Less reports whether a comes before b in feed order: newest first, then by event id
// descending (plain string order of the lower-case UUID, as the event_id text column sorts).
func Less(a, b Entry) bool {
	if !a.OccurredAt.Equal(b.OccurredAt) {
		return a.OccurredAt.After(b.OccurredAt)
	}
	return a.EventID > b.EventID
}

// BucketOf returns the per-user feed bucket of t: its UTC month as yyyymm (202611). Monthly
// buckets keep a user's partition small (a busy shopper produces tens of events a month, not
// millions) while a page rarely needs more than one or two partitions; see README.md.
func BucketOf(t time.Time) int {
	t = t.UTC()
	return t.Year()*100 + int(t.Month())
}

// DayOf returns the global feed bucket of t: its UTC day as yyyymmdd (20261126). The global
// feed takes every catalog event of the shop, so it is bucketed by day (and sharded).
func DayOf(t time.Time) int {
	t = t.UTC()
	return t.Year()*10000 + int(t.Month())*100 + t.Day()
}

// Store is the datastore behind the feeds. Implementations are safe for concurrent use.
// Every write is idempotent: writing the same entry twice leaves one row.
type Store interface {
	// PutUserEntry records e in userID's feed, in the bucket BucketOf(e.OccurredAt); the
	// bucket is recorded in the user's bucket list no later than the entry itself. (An
	// adapter may skip rewriting a bucket-list row it wrote before: only EraseUserFeed
	// removes them, and only for deleted users, whose entries the projection erases naming
	// the bucket.)
	PutUserEntry(ctx context.Context, userID string, e Entry) error
	// UserFeed returns up to n entries of userID's feed in feed order (see Less), starting
	// strictly after the position after (nil: from the newest), crossing buckets as needed.
	UserFeed(ctx context.Context, userID string, after *Cursor, n int) ([]Entry, error)
	// UserDeleted reports whether userID carries a deletion tombstone.
	UserDeleted(ctx context.Context, userID string) (bool, error)
	// MarkUserDeleted writes userID's deletion tombstone (an upsert: the first deletedAt of a
	// redelivered event is overwritten with the same value).
	MarkUserDeleted(ctx context.Context, userID string, deletedAt time.Time) error
	// EraseUserFeed removes every entry of userID: the partitions of every bucket in the
	// user's bucket list plus the extra buckets given, then the bucket list itself. Erasing
	// an already erased feed deletes nothing new.
	EraseUserFeed(ctx context.Context, userID string, extraBuckets ...int) error
	// PutGlobalEntry records e in the global feed, in the day bucket DayOf(e.OccurredAt).
	PutGlobalEntry(ctx context.Context, e Entry) error
	// RecentGlobal returns up to n global entries in feed order, looking at the days from
	// the day of from back to days-1 days before it.
	RecentGlobal(ctx context.Context, from time.Time, days, n int) ([]Entry, error)
	// Ping reports whether the store answers, for /readyz.
	Ping(ctx context.Context) error
}
