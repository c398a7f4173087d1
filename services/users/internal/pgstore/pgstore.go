// Package pgstore is the PostgreSQL adapter of the users domain: the users table and the
// transactional outbox (shared/outbox/pgoutbox) written in the same transaction.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/users/internal/users"
	"polyshop/services/users/migrations"
	"polyshop/shared/events"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgmigrate"
)

// Store implements users.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
	emit *pgoutbox.Emitter
}

var _ users.Store = (*Store)(nil)

// New returns a Store using pool; the schema must be migrated (see package migrations).
// Its events go to the outbox in each change's transaction unless an Emitter set with
// WithEmitter says otherwise.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// WithEmitter returns the store writing its events through e: the lab pattern switch
// users.publish (mode outbox, or direct: the dual write; shared/chaos).
func (s *Store) WithEmitter(e *pgoutbox.Emitter) *Store {
	c := *s
	c.emit = e
	return &c
}

// uniqueViolation is PostgreSQL's SQLSTATE for a unique index violation.
const uniqueViolation = "23505"

const columns = `id, email, name, role, password_hash, street, city, postal_code, country,
	created_at, updated_at, deleted_at, version`

// Create implements users.Store.
func (s *Store) Create(ctx context.Context, u users.User, evs ...events.Envelope) error {
	return s.emit.InTx(ctx, s.pool, func(tx pgx.Tx, add func(...events.Envelope) error) error {
		street, city, postal, country := addressCols(u.Address)
		_, err := tx.Exec(ctx, `INSERT INTO users (`+columns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			u.ID, nullable(u.Email), u.Name, string(u.Role), u.PasswordHash, street, city, postal, country,
			u.CreatedAt, u.UpdatedAt, u.DeletedAt, u.Version)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
				return users.ErrEmailTaken
			}
			return fmt.Errorf("insert user: %w", err)
		}
		return addEvents(add, evs)
	})
}

func addEvents(add func(...events.Envelope) error, evs []events.Envelope) error {
	if err := add(evs...); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Get implements users.Store.
func (s *Store) Get(ctx context.Context, id string) (users.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM users WHERE id = $1 AND deleted_at IS NULL`, id))
}

// GetByEmail implements users.Store.
func (s *Store) GetByEmail(ctx context.Context, email string) (users.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM users
		WHERE lower(email) = lower($1) AND deleted_at IS NULL`, email))
}

// Update implements users.Store. The row is locked with SELECT … FOR UPDATE, so concurrent
// updates of one user apply one after the other and each sees the other's result.
func (s *Store) Update(ctx context.Context, id string, fn users.UpdateFunc) (users.User, error) {
	var out users.User
	err := s.emit.InTx(ctx, s.pool, func(tx pgx.Tx, add func(...events.Envelope) error) error {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+columns+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		before := u
		evs, err := fn(&u)
		if err != nil {
			return err
		}
		if sameRow(before, u) && len(evs) == 0 {
			out = u
			return nil
		}
		street, city, postal, country := addressCols(u.Address)
		_, err = tx.Exec(ctx, `UPDATE users SET email = $2, name = $3, role = $4, password_hash = $5,
			street = $6, city = $7, postal_code = $8, country = $9, updated_at = $10, deleted_at = $11, version = $12
			WHERE id = $1`,
			u.ID, nullable(u.Email), u.Name, string(u.Role), u.PasswordHash, street, city, postal, country,
			u.UpdatedAt, u.DeletedAt, u.Version)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
				return users.ErrEmailTaken
			}
			return fmt.Errorf("update user: %w", err)
		}
		if err := addEvents(add, evs); err != nil {
			return err
		}
		out = u
		return nil
	})
	if err != nil {
		return users.User{}, err
	}
	return out, nil
}

func sameRow(a, b users.User) bool {
	sameAddr := (a.Address == nil) == (b.Address == nil) && (a.Address == nil || *a.Address == *b.Address)
	sameDel := (a.DeletedAt == nil) == (b.DeletedAt == nil) && (a.DeletedAt == nil || a.DeletedAt.Equal(*b.DeletedAt))
	return a.Email == b.Email && a.Name == b.Name && a.Role == b.Role && a.PasswordHash == b.PasswordHash &&
		sameAddr && sameDel && a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version
}

// Ready implements users.Store.
func (s *Store) Ready(ctx context.Context) error { return s.pool.Ping(ctx) }

// CountAttempt implements users.Store with one upsert: concurrent attempts on one key
// serialise on its row, so each sees its own count. Windows are measured with the
// database's clock.
func (s *Store) CountAttempt(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	var n int64
	var leftMs float64
	err := s.pool.QueryRow(ctx, `
INSERT INTO signup_attempts AS a (key, count, window_start) VALUES ($1, 1, now())
ON CONFLICT (key) DO UPDATE SET
	count = CASE WHEN a.window_start <= now() - $2::interval THEN 1 ELSE a.count + 1 END,
	window_start = CASE WHEN a.window_start <= now() - $2::interval THEN now() ELSE a.window_start END
RETURNING count, extract(epoch FROM (window_start + $2::interval - now())) * 1000`,
		key, window).Scan(&n, &leftMs)
	if err != nil {
		return 0, 0, fmt.Errorf("count sign-up attempt: %w", err)
	}
	return n, max(time.Duration(leftMs)*time.Millisecond, 0), nil
}

func scanUser(row pgx.Row) (users.User, error) {
	var (
		u                             users.User
		email                         *string
		role                          string
		street, city, postal, country *string
		deleted                       *time.Time
	)
	err := row.Scan(&u.ID, &email, &u.Name, &role, &u.PasswordHash, &street, &city, &postal, &country,
		&u.CreatedAt, &u.UpdatedAt, &deleted, &u.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return users.User{}, users.ErrNotFound
	}
	if err != nil {
		return users.User{}, fmt.Errorf("read user: %w", err)
	}
	if email != nil {
		u.Email = *email
	}
	u.Role = users.Role(role)
	if street != nil && city != nil && postal != nil && country != nil {
		u.Address = &users.Address{Street: *street, City: *city, PostalCode: *postal, Country: *country}
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	if deleted != nil {
		d := deleted.UTC()
		u.DeletedAt = &d
	}
	return u, nil
}

func addressCols(a *users.Address) (street, city, postal, country *string) {
	if a == nil {
		return nil, nil, nil, nil
	}
	return &a.Street, &a.City, &a.PostalCode, &a.Country
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Migrate applies the service's embedded migrations (users table and outbox) in pool's
// search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pgmigrate.Apply(ctx, pool, migrations.FS); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
