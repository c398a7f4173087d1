package users

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// Service applies the users domain rules on top of a Store. It is safe for concurrent use.
type Service struct {
	store  Store
	hasher *Hasher
	limits Limits
	slots  chan struct{} // one token per argon2id computation allowed at once
	now    func() time.Time
	// freeMemory gives the heap back to the OS once a burst of hashing is over, so the
	// process does not idle at its peak (debug.FreeOSMemory; replaced in tests).
	freeMemory func()
	freeing    atomic.Bool
}

// Limits bound what a burst of requests can cost. Zero fields take DefaultLimits' values.
type Limits struct {
	// HashConcurrency is how many argon2id computations (sign-ups, credential checks) run
	// at once; each holds the hash's memory (19 MiB by default), so this bounds the
	// service's memory under any burst.
	HashConcurrency int
	// HashWait is how long a request waits for a hashing slot before it is refused with
	// ErrBusy (503 + Retry-After).
	HashWait time.Duration
	// SignUpsPerEmail and SignUpsPerClient are the sign-up attempts allowed per email and
	// per client address within SignUpWindow, counted before the password is hashed.
	SignUpsPerEmail, SignUpsPerClient int64
	SignUpWindow                      time.Duration
}

// DefaultLimits: two hashes at once (38 MiB with the default parameters), a second's
// wait; 5 sign-ups per email and 20 per client address per hour.
var DefaultLimits = Limits{HashConcurrency: 2, HashWait: time.Second,
	SignUpsPerEmail: 5, SignUpsPerClient: 20, SignUpWindow: time.Hour}

// NewService returns a Service storing in store and hashing with hasher within limits
// (DefaultLimits when none is given).
func NewService(store Store, hasher *Hasher, limits ...Limits) *Service {
	l := DefaultLimits
	if len(limits) > 0 {
		given := limits[0]
		if given.HashConcurrency > 0 {
			l.HashConcurrency = given.HashConcurrency
		}
		if given.HashWait > 0 {
			l.HashWait = given.HashWait
		}
		if given.SignUpsPerEmail > 0 {
			l.SignUpsPerEmail = given.SignUpsPerEmail
		}
		if given.SignUpsPerClient > 0 {
			l.SignUpsPerClient = given.SignUpsPerClient
		}
		if given.SignUpWindow > 0 {
			l.SignUpWindow = given.SignUpWindow
		}
	}
	return &Service{store: store, hasher: hasher, limits: l, slots: make(chan struct{}, l.HashConcurrency),
		now:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		freeMemory: debug.FreeOSMemory}
}

// idleAfterHashing is how long no hash must run before the heap is given back to the OS.
const idleAfterHashing = time.Second

// afterHashing schedules giving the heap back to the OS when the last running hash ends:
// argon2id allocates its whole memory per hash, and Go returns freed memory to the OS only
// slowly, so without this an idle users service stays at its burst's peak.
func (s *Service) afterHashing() {
	if len(s.slots) > 0 || !s.freeing.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(idleAfterHashing, func() {
		s.freeing.Store(false)
		if len(s.slots) == 0 {
			s.freeMemory()
		}
	})
}

// hashing runs fn (an argon2id computation) in one of the limited slots, or returns
// ErrBusy when none frees up within the wait, or ctx's error.
func (s *Service) hashing(ctx context.Context, fn func()) error {
	t := time.NewTimer(s.limits.HashWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() {
		<-s.slots
		s.afterHashing()
	}()
	fn()
	return nil
}

// SignUpInput is what a new customer provides. ClientAddr is the address the request came
// from (for throttling), not part of the account.
type SignUpInput struct {
	Email      string
	Password   string
	Name       string
	ClientAddr string
}

// SignUp validates in, counts the attempt against the email and the client address
// (*ThrottledError past a limit), hashes the password and creates a customer account
// together with its users.registered event. Every invalid field is reported at once
// (Invalid); ErrEmailTaken when a live account has the email; ErrBusy when no hashing
// slot frees up in time.
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (User, error) {
	if err := s.validate(in); err != nil {
		return User{}, err
	}
	email, _ := NormalizeEmail(in.Email)
	for _, c := range []struct {
		scope, key string
		limit      int64
	}{{"email", "e:" + email, s.limits.SignUpsPerEmail}, {"client", "c:" + in.ClientAddr, s.limits.SignUpsPerClient}} {
		if c.scope == "client" && in.ClientAddr == "" {
			continue
		}
		n, left, err := s.store.CountAttempt(ctx, c.key, s.limits.SignUpWindow)
		if err != nil {
			return User{}, err
		}
		if n > c.limit {
			return User{}, &ThrottledError{Scope: c.scope, RetryAfter: left}
		}
	}
	return s.create(ctx, in, RoleCustomer)
}

func (s *Service) validate(in SignUpInput) error {
	var errs Invalid
	email, err := NormalizeEmail(in.Email)
	addErr(&errs, err)
	_, err = NormalizeName(in.Name)
	addErr(&errs, err)
	addErr(&errs, CheckPassword(in.Password, email))
	return errs.err()
}

func (s *Service) create(ctx context.Context, in SignUpInput, role Role) (User, error) {
	var errs Invalid
	email, err := NormalizeEmail(in.Email)
	addErr(&errs, err)
	name, err := NormalizeName(in.Name)
	addErr(&errs, err)
	addErr(&errs, CheckPassword(in.Password, email))
	if err := errs.err(); err != nil {
		return User{}, err
	}
	var hash string
	if err := s.hashing(ctx, func() { hash, err = s.hasher.Hash(in.Password) }); err != nil {
		return User{}, err
	}
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, fmt.Errorf("new user id: %w", err)
	}
	now := s.now()
	u := User{ID: id.String(), Email: email, Name: name, Role: role, PasswordHash: hash,
		CreatedAt: now, UpdatedAt: now, Version: 1}
	ev, err := events.New(ctx, events.TypeUserRegistered, u.ID, u.Version, events.UserRegistered{
		UserID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), RegisteredAt: now,
	})
	if err != nil {
		return User{}, err
	}
	if err := s.store.Create(ctx, u, ev); err != nil {
		return User{}, err
	}
	return u, nil
}

func addErr(errs *Invalid, err error) {
	var v *ValidationError
	if errors.As(err, &v) {
		*errs = append(*errs, v)
	}
}

// Get returns the live user with id; ErrNotFound for an unknown or deleted id, and for an
// id that is not a UUID.
func (s *Service) Get(ctx context.Context, id string) (User, error) {
	if !validID(id) {
		return User{}, ErrNotFound
	}
	return s.store.Get(ctx, id)
}

func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// ChangeAddress validates a and replaces the user's address, emitting
// users.address_changed with the full new address. Setting the same address again
// changes nothing and emits nothing.
func (s *Service) ChangeAddress(ctx context.Context, id string, a Address) (User, error) {
	addr, err := NormalizeAddress(a)
	if err != nil {
		return User{}, err
	}
	if !validID(id) {
		return User{}, ErrNotFound
	}
	return s.store.Update(ctx, id, func(u *User) ([]events.Envelope, error) {
		if u.Deleted() {
			return nil, ErrNotFound
		}
		if u.Address != nil && *u.Address == addr {
			return nil, nil
		}
		now := s.now()
		u.Address, u.UpdatedAt = &addr, now
		u.Version++
		ev, err := events.New(ctx, events.TypeUserAddressChanged, u.ID, u.Version,
			events.UserAddressChanged{UserID: u.ID, Address: addr, ChangedAt: now})
		if err != nil {
			return nil, err
		}
		return []events.Envelope{ev}, nil
	})
}

// Delete soft-deletes the user: the row stays (id, role, timestamps, version) but email,
// name, password hash and address are erased, which frees the email for a new sign-up,
// and users.deleted is emitted. Deleting an already deleted user succeeds and emits
// nothing, so a retried request is harmless; ErrNotFound for an unknown id.
func (s *Service) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	_, err := s.store.Update(ctx, id, func(u *User) ([]events.Envelope, error) {
		if u.Deleted() {
			return nil, nil
		}
		now := s.now()
		u.Email, u.Name, u.PasswordHash, u.Address = "", "", "", nil
		u.DeletedAt, u.UpdatedAt = &now, now
		u.Version++
		ev, err := events.New(ctx, events.TypeUserDeleted, u.ID, u.Version,
			events.UserDeleted{UserID: u.ID, DeletedAt: now})
		if err != nil {
			return nil, err
		}
		return []events.Envelope{ev}, nil
	})
	return err
}

// VerifyCredentials returns the live user whose email and password match, or
// ErrBadCredentials. It costs one argon2id computation whether or not the email exists,
// so timing does not reveal which accounts exist.
func (s *Service) VerifyCredentials(ctx context.Context, email, password string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil || password == "" || len(password) > 4*MaxPasswordLen {
		if herr := s.hashing(ctx, func() { s.hasher.VerifyDummy(password) }); herr != nil {
			return User{}, herr
		}
		return User{}, ErrBadCredentials
	}
	u, err := s.store.GetByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		if herr := s.hashing(ctx, func() { s.hasher.VerifyDummy(password) }); herr != nil {
			return User{}, herr
		}
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	var ok bool
	if herr := s.hashing(ctx, func() { ok, err = s.hasher.Verify(password, u.PasswordHash) }); herr != nil {
		return User{}, herr
	}
	if err != nil {
		return User{}, fmt.Errorf("verify password of %s: %w", u.ID, err)
	}
	if !ok {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// EnsureAdmin makes sure a live admin account with email and password exists, and is
// idempotent: it creates the account (emitting users.registered with role admin) when
// the email is free; otherwise it promotes the account to admin and resets its password
// when it does not match. Promotion and password resets emit no event, since no event type
// describes them and no other service keeps roles or passwords. created reports whether a
// new account was made.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (u User, created bool, err error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, false, err
	}
	if err := CheckPassword(password, e); err != nil {
		return User{}, false, err
	}
	existing, err := s.store.GetByEmail(ctx, e)
	switch {
	case errors.Is(err, ErrNotFound):
		u, err := s.create(ctx, SignUpInput{Email: e, Password: password, Name: "Administrator"}, RoleAdmin)
		if errors.Is(err, ErrEmailTaken) { // a concurrent EnsureAdmin won the race
			return s.EnsureAdmin(ctx, email, password)
		}
		return u, err == nil, err
	case err != nil:
		return User{}, false, err
	}
	var ok bool
	if herr := s.hashing(ctx, func() { ok, err = s.hasher.Verify(password, existing.PasswordHash) }); herr != nil {
		return User{}, false, herr
	}
	if err != nil {
		ok = false
	}
	// A hash with other parameters than today's (an older default) is made anew.
	current := ok && !s.hasher.Outdated(existing.PasswordHash)
	if current && existing.Role == RoleAdmin {
		return existing, false, nil
	}
	hash := existing.PasswordHash
	if !current {
		if herr := s.hashing(ctx, func() { hash, err = s.hasher.Hash(password) }); herr != nil {
			return User{}, false, herr
		}
		if err != nil {
			return User{}, false, fmt.Errorf("hash password: %w", err)
		}
	}
	u, err = s.store.Update(ctx, existing.ID, func(u *User) ([]events.Envelope, error) {
		if u.Deleted() {
			return nil, ErrNotFound
		}
		u.Role, u.PasswordHash, u.UpdatedAt = RoleAdmin, hash, s.now()
		return nil, nil
	})
	return u, false, err
}
