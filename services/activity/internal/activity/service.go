package activity

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"polyshop/shared/events"
)

// Paging limits of both feeds.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// DefaultRecentDays is how many days back the global feed looks by default.
const DefaultRecentDays = 30

// Options tune a Service; zero values take the defaults.
type Options struct {
	// Now returns the current time (default time.Now); tests pin it.
	Now func() time.Time
	// RecentDays is how many day buckets the global feed reads at most (default
	// DefaultRecentDays). The global feed's rows also expire after that long (table TTL).
	RecentDays int
}

// Service applies events to the feeds and reads them. It is safe for concurrent use.
type Service struct {
	store      Store
	log        *slog.Logger
	now        func() time.Time
	recentDays int
	deleted    *knownDeleted
}

// NewService returns a Service over store.
func NewService(store Store, log *slog.Logger, opts Options) *Service {
	if log == nil {
		log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RecentDays <= 0 {
		opts.RecentDays = DefaultRecentDays
	}
	return &Service{store: store, log: log, now: opts.Now, recentDays: opts.RecentDays, deleted: newKnownDeleted()}
}

// Apply projects one event into the feeds; it is the handler of every activity consumer.
//
// It is idempotent and insensitive to order: an entry is keyed by (user, bucket of the
// event time, event time, event id), all taken from the event, so a redelivery rewrites the
// same row. Malformed payloads return an error matching events.ErrInvalid (permanent: the
// consumer dead-letters them); store errors are returned as they are (retried).
//
// Deletion must win over events of the user that are handled after it (redeliveries,
// late or concurrent events): see applyUser and applyErase.
func (s *Service) Apply(ctx context.Context, e events.Envelope) error {
	r, ok := RuleFor(e.Type)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnhandledType, e.Type)
	}
	userID, summary, err := r.project(e)
	if err != nil {
		return err
	}
	entry := Entry{
		EventID:    e.ID,
		Type:       e.Type,
		Subject:    e.Subject,
		Summary:    summary,
		OccurredAt: e.Time.UTC().Truncate(time.Millisecond),
	}
	if r.Target == GlobalFeed {
		if err := s.store.PutGlobalEntry(ctx, entry); err != nil {
			return fmt.Errorf("global feed: %w", err)
		}
		return nil
	}
	uid, ok := canonicalUUID(userID)
	if !ok {
		return &events.FieldError{Field: "data.userId", Reason: fmt.Sprintf("%q is not a UUID (%s)", userID, e.Type)}
	}
	if r.Target == EraseUser {
		return s.applyErase(ctx, uid, entry.OccurredAt)
	}
	return s.applyUser(ctx, uid, entry)
}

// applyUser writes entry into uid's feed unless uid is deleted.
//
// What makes deletion win is the check *after* the write, a fresh read of the tombstone:
// the deletion writes its tombstone before it erases, so either our write completed before
// the tombstone was written (then the erase, which comes later, removes it), or our read,
// which starts after our write completed, sees the tombstone and we erase again, naming our
// entry's bucket explicitly (the deletion may already have removed the bucket list). This
// holds whatever happened before the write, so the check before the write is only there to
// spare work, and is answered from memory: users this process knows to be deleted
// (knownDeleted) are dropped without a write. A late event of a user deleted elsewhere (by
// another instance, or before a restart) is written, found by the post-write check and
// erased again before the event is acknowledged, and from then on the user is known.
//
// That costs one read per event instead of two (see README, "Measurements"). The price: such
// an entry exists for the duration of one read (and until the redelivery, if the process
// dies in between) instead of never being written.
func (s *Service) applyUser(ctx context.Context, uid string, entry Entry) error {
	if s.deleted.has(uid) {
		s.log.DebugContext(ctx, "event of deleted user dropped", "user_id", uid, "event_id", entry.EventID, "type", entry.Type)
		return nil
	}
	if err := s.store.PutUserEntry(ctx, uid, entry); err != nil {
		return fmt.Errorf("user feed %s: %w", uid, err)
	}
	deleted, err := s.store.UserDeleted(ctx, uid)
	if err != nil {
		return fmt.Errorf("check deletion of user %s: %w", uid, err)
	}
	if deleted {
		s.log.InfoContext(ctx, "event of a deleted user written; erasing again", "user_id", uid, "event_id", entry.EventID)
		if err := s.store.EraseUserFeed(ctx, uid, BucketOf(entry.OccurredAt)); err != nil {
			return fmt.Errorf("erase feed of user %s: %w", uid, err)
		}
		s.deleted.add(uid)
	}
	return nil
}

// applyErase tombstones uid, then removes its feed. The order matters (see applyUser), and
// both steps are idempotent, so a redelivered deletion deletes nothing new.
func (s *Service) applyErase(ctx context.Context, uid string, deletedAt time.Time) error {
	if err := s.store.MarkUserDeleted(ctx, uid, deletedAt); err != nil {
		return fmt.Errorf("tombstone user %s: %w", uid, err)
	}
	s.deleted.add(uid)
	if err := s.store.EraseUserFeed(ctx, uid); err != nil {
		return fmt.Errorf("erase feed of user %s: %w", uid, err)
	}
	s.log.InfoContext(ctx, "user feed erased", "user_id", uid)
	return nil
}

// Page is one page of a feed. Next is empty on the last page.
type Page struct {
	Items []Entry `json:"items"`
	Next  string  `json:"nextCursor,omitempty"`
}

// ParseLimit validates the limit query parameter: empty means DefaultLimit; otherwise an
// integer from 1 to MaxLimit, or an *InputError for the field "limit" (Unacceptable when
// it is an integer out of that range).
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, &InputError{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d", MaxLimit)}
	}
	if n < 1 || n > MaxLimit {
		return 0, &InputError{Field: "limit", Reason: fmt.Sprintf("must be from 1 to %d", MaxLimit), Unacceptable: true}
	}
	return n, nil
}

// UserFeed returns a page of userID's feed, newest first. limit and cursor are the raw
// query parameters ("" for absent); bad values are *InputError.
func (s *Service) UserFeed(ctx context.Context, userID, limit, cursor string) (Page, error) {
	uid, ok := canonicalUUID(userID)
	if !ok {
		return Page{}, &InputError{Field: "id", Reason: "must be a UUID"}
	}
	n, err := ParseLimit(limit)
	if err != nil {
		return Page{}, err
	}
	var after *Cursor
	if cursor != "" {
		c, err := ParseCursor(cursor)
		if err != nil {
			return Page{}, err
		}
		after = &c
	}
	// One more than asked tells whether another page exists, so the last page carries no
	// cursor (instead of a cursor that leads to an empty page).
	items, err := s.store.UserFeed(ctx, uid, after, n+1)
	if err != nil {
		return Page{}, fmt.Errorf("read feed of user %s: %w", uid, err)
	}
	p := Page{Items: items}
	if len(items) > n {
		p.Items = items[:n]
		p.Next = CursorAfter(items[n-1]).Encode()
	}
	if p.Items == nil {
		p.Items = []Entry{}
	}
	return p, nil
}

// Recent returns the newest entries of the global feed from the last RecentDays days.
func (s *Service) Recent(ctx context.Context, limit string) (Page, error) {
	n, err := ParseLimit(limit)
	if err != nil {
		return Page{}, err
	}
	items, err := s.store.RecentGlobal(ctx, s.now(), s.recentDays, n)
	if err != nil {
		return Page{}, fmt.Errorf("read global feed: %w", err)
	}
	if items == nil {
		items = []Entry{}
	}
	return Page{Items: items}, nil
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }
