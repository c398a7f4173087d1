package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// Service applies the users domain rules on top of a Store. It is safe for concurrent use.
type Service struct {
	store  Store
	hasher *Hasher
	now    func() time.Time
}

// NewService returns a Service storing in store and hashing with hasher.
func NewService(store Store, hasher *Hasher) *Service {
	return &Service{store: store, hasher: hasher, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// SignUpInput is what a new customer provides.
type SignUpInput struct {
	Email    string
	Password string
	Name     string
}

// SignUp validates in, hashes the password and creates a customer account together with
// its users.registered event. Every invalid field is reported at once (Invalid);
// ErrEmailTaken when a live account has the email.
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (User, error) {
	return s.create(ctx, in, RoleCustomer)
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
	hash, err := s.hasher.Hash(in.Password)
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
		s.hasher.VerifyDummy(password)
		return User{}, ErrBadCredentials
	}
	u, err := s.store.GetByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		s.hasher.VerifyDummy(password)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	ok, err := s.hasher.Verify(password, u.PasswordHash)
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
	ok, err := s.hasher.Verify(password, existing.PasswordHash)
	if err != nil {
		ok = false
	}
	if ok && existing.Role == RoleAdmin {
		return existing, false, nil
	}
	hash := existing.PasswordHash
	if !ok {
		if hash, err = s.hasher.Hash(password); err != nil {
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
