package sessions

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// Config holds the service's policy.
type Config struct {
	// TTL is how long a session lives without being used; each validation restarts it.
	TTL time.Duration
	// AccountMaxFailures failed logins for one email within Window block that email.
	AccountMaxFailures int64
	// ClientMaxFailures failed logins from one client address within Window block it.
	ClientMaxFailures int64
	// Window is the throttling window, counted from the first failure.
	Window time.Duration
}

// DefaultConfig: 24h sliding sessions; 5 failures per account and 20 per client address
// within 15 minutes.
var DefaultConfig = Config{TTL: 24 * time.Hour, AccountMaxFailures: 5, ClientMaxFailures: 20, Window: 15 * time.Minute}

// Service implements logins, validation and revocation. It is safe for concurrent use.
type Service struct {
	store    Store
	verifier Verifier
	cfg      Config
	now      func() time.Time
}

// NewService returns a Service.
func NewService(store Store, verifier Verifier, cfg Config) *Service {
	return &Service{store: store, verifier: verifier, cfg: cfg,
		now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}
}

// Counter keys, relative to the store's prefix.
func accountKey(email string) string { return "fail:a:" + strings.ToLower(strings.TrimSpace(email)) }
func clientKey(addr string) string   { return "fail:c:" + addr }

// Login counts the attempt against the account (email, lowercased) and the client
// address first, atomically, then verifies the credentials with the users service and
// starts a session, returning it with its token. While a counter is at its limit, logins
// are refused with *ThrottledError without asking the users service, whatever the
// password: so N parallel wrong passwords get at most the limit verified, the rest refused.
// A success resets the account's counter and takes its attempt back from the client's; an
// error other than bad credentials (users unreachable) takes both back.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (Session, string, error) {
	switch {
	case strings.TrimSpace(email) == "":
		return Session{}, "", &FieldError{"email", "is required"}
	case password == "":
		return Session{}, "", &FieldError{"password", "is required"}
	}
	akey, ckey := accountKey(email), clientKey(clientAddr)
	blocked, retryAfter, err := s.store.Attempt(ctx, s.cfg.Window,
		[]int64{s.cfg.AccountMaxFailures, s.cfg.ClientMaxFailures}, akey, ckey)
	switch {
	case err != nil:
		return Session{}, "", err
	case blocked == 0:
		return Session{}, "", &ThrottledError{Scope: "account", RetryAfter: retryAfter}
	case blocked == 1:
		return Session{}, "", &ThrottledError{Scope: "client", RetryAfter: retryAfter}
	}
	userID, role, err := s.verifier.Verify(ctx, email, password)
	if errors.Is(err, ErrBadCredentials) {
		return Session{}, "", err // counted already
	}
	if err != nil {
		if rerr := s.store.Refund(context.WithoutCancel(ctx), akey, ckey); rerr != nil {
			return Session{}, "", errors.Join(err, rerr)
		}
		return Session{}, "", err
	}
	if err := s.store.ResetFailures(ctx, akey); err != nil {
		return Session{}, "", err
	}
	if err := s.store.Refund(ctx, ckey); err != nil {
		return Session{}, "", err
	}
	token, err := NewToken()
	if err != nil {
		return Session{}, "", err
	}
	now := s.now()
	sess := Session{ID: uuid.NewString(), TokenHash: HashToken(token), UserID: userID, Role: role,
		ClientAddr: clientAddr, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL)}
	ev, err := events.New(ctx, events.TypeSessionStarted, sess.ID, 1, events.SessionStarted{
		SessionID: sess.ID, UserID: userID, StartedAt: now, ExpiresAt: sess.ExpiresAt})
	if err != nil {
		return Session{}, "", err
	}
	if err := s.store.Create(ctx, sess, s.cfg.TTL, ev); err != nil {
		if errors.Is(err, ErrUserDeleted) {
			return Session{}, "", ErrBadCredentials
		}
		return Session{}, "", err
	}
	return sess, token, nil
}

// Validate returns the session of token and slides its expiry; ErrNotFound for an unknown,
// expired, revoked or malformed token.
func (s *Service) Validate(ctx context.Context, token string) (Session, error) {
	if !wellFormed(token) {
		return Session{}, ErrNotFound
	}
	return s.store.Touch(ctx, HashToken(token), s.cfg.TTL)
}

// ended returns an EventsFunc recording sessions.ended with reason. A session's events
// are its own aggregate: started is sequence 1, ended sequence 2.
func (s *Service) ended(ctx context.Context, reason string) EventsFunc {
	return func(sess Session) ([]events.Envelope, error) {
		ev, err := events.New(ctx, events.TypeSessionEnded, sess.ID, 2, events.SessionEnded{
			SessionID: sess.ID, UserID: sess.UserID, Reason: reason, EndedAt: s.now()})
		if err != nil {
			return nil, err
		}
		return []events.Envelope{ev}, nil
	}
}

// Logout ends the session of token; ErrNotFound when it is not a live session.
func (s *Service) Logout(ctx context.Context, token string) error {
	if !wellFormed(token) {
		return ErrNotFound
	}
	_, err := s.store.Delete(ctx, HashToken(token), s.ended(ctx, events.SessionEndLogout))
	return err
}

// List returns the user's live sessions.
func (s *Service) List(ctx context.Context, userID string) ([]Session, error) {
	return s.store.List(ctx, userID)
}

// RevokeAll ends every session of the user with reason (events.SessionEndRevoked or
// events.SessionEndUserDeleted) and returns how many there were. Revoking nothing is fine,
// which makes it idempotent under redelivery.
func (s *Service) RevokeAll(ctx context.Context, userID, reason string) (int, error) {
	return s.store.DeleteAll(ctx, userID, s.ended(ctx, reason))
}

// DeletedUserMemory is how long sessions remembers a deleted user. A login verified just
// before the deletion creates its session within seconds; a day covers that with room.
const DeletedUserMemory = 24 * time.Hour

// HandleUserDeleted is the broker handler for users.deleted: it marks the user deleted
// (so a login racing the deletion cannot create a session afterwards), then revokes every
// session of the user.
func (s *Service) HandleUserDeleted(ctx context.Context, e events.Envelope) error {
	var p events.UserDeleted
	if err := e.Decode(&p); err != nil {
		return err
	}
	if err := s.store.MarkUserDeleted(ctx, p.UserID, DeletedUserMemory); err != nil {
		return err
	}
	_, err := s.RevokeAll(ctx, p.UserID, events.SessionEndUserDeleted)
	return err
}
