// Package pgstore is the PostgreSQL adapter of the payments domain: the payments and
// faults tables and the transactional outbox (shared/outbox/pgoutbox), written in the same
// transaction as each payment change.
package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/payments/internal/payments"
	"polyshop/services/payments/migrations"
	"polyshop/shared/events"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgmigrate"
)

// Store implements payments.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ payments.Store = (*Store)(nil)

// New returns a Store using pool; the schema must be migrated (see Migrate).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate applies the service's embedded migrations in pool's search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pgmigrate.Apply(ctx, pool, migrations.FS); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// uniqueViolation is PostgreSQL's SQLSTATE for a unique index violation.
const uniqueViolation = "23505"

// errRace: a concurrent transaction inserted the order's first row; run again.
var errRace = errors.New("payment inserted concurrently")

const columns = `id, order_id, user_id, status, amount, currency, refunded_amount, reason,
	replies, version, created_at, updated_at`

// maxRaces bounds the re-runs after losing a first-insert race. One is enough in practice:
// after the winner commits, the row exists and the next run locks it.
const maxRaces = 3

// Update implements payments.Store. An existing row is locked with SELECT … FOR UPDATE, so
// commands of one order apply one after the other. A new row is inserted without ON
// CONFLICT: when a concurrent first command of the same order wins, the INSERT waits for
// its commit, fails on the unique order id, and the whole transaction (outbox rows
// included) rolls back and runs again, now finding and locking the winner's row.
func (s *Store) Update(ctx context.Context, orderID string, fn payments.UpdateFunc) error {
	for range maxRaces {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.update(ctx, tx, orderID, fn) })
		if !errors.Is(err, errRace) {
			return err
		}
	}
	return fmt.Errorf("update payment of order %s: %w", orderID, errRace)
}

func (s *Store) update(ctx context.Context, tx pgx.Tx, orderID string, fn payments.UpdateFunc) error {
	cur, err := scanPayment(tx.QueryRow(ctx, `SELECT `+columns+` FROM payments WHERE order_id = $1 FOR UPDATE`, orderID))
	var curp *payments.Payment
	switch {
	case err == nil:
		curp = &cur
	case errors.Is(err, pgx.ErrNoRows):
	default:
		return err
	}
	next, out, err := fn(curp)
	if err != nil {
		return err
	}
	if next != nil {
		var refunded *int64
		if next.Refunded != nil {
			refunded = &next.Refunded.Amount
		}
		if curp == nil {
			_, err = tx.Exec(ctx, `INSERT INTO payments (`+columns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				next.ID, next.OrderID, next.UserID, string(next.Status), next.Amount.Amount, next.Amount.Currency,
				refunded, next.Reason, next.Replies, next.Version, next.CreatedAt, next.UpdatedAt)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
				return errRace
			}
		} else {
			_, err = tx.Exec(ctx, `UPDATE payments SET status = $2, refunded_amount = $3, reason = $4,
				replies = $5, version = $6, updated_at = $7 WHERE id = $1`,
				next.ID, string(next.Status), refunded, next.Reason, next.Replies, next.Version, next.UpdatedAt)
		}
		if err != nil {
			return fmt.Errorf("write payment: %w", err)
		}
	}
	return addEvents(ctx, tx, out)
}

func addEvents(ctx context.Context, tx pgx.Tx, evs []events.Envelope) error {
	if len(evs) == 0 {
		return nil
	}
	if err := pgoutbox.Add(ctx, tx, evs...); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// ByOrder implements payments.Store.
func (s *Store) ByOrder(ctx context.Context, orderID string) ([]payments.Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM payments WHERE order_id = $1`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	defer rows.Close()
	out := []payments.Payment{}
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	return out, nil
}

func scanPayment(row pgx.Row) (payments.Payment, error) {
	var (
		p        payments.Payment
		status   string
		refunded *int64
	)
	err := row.Scan(&p.ID, &p.OrderID, &p.UserID, &status, &p.Amount.Amount, &p.Amount.Currency,
		&refunded, &p.Reason, &p.Replies, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return payments.Payment{}, err
	}
	if err != nil {
		return payments.Payment{}, fmt.Errorf("read payment: %w", err)
	}
	p.Status = payments.Status(status)
	if refunded != nil {
		p.Refunded = &events.Money{Amount: *refunded, Currency: p.Amount.Currency}
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, nil
}

// Faults implements payments.Store.
func (s *Store) Faults(ctx context.Context) (payments.Faults, error) {
	return scanFaults(s.pool.QueryRow(ctx, `SELECT decline_rate, error_rate, latency_ms, down FROM faults WHERE id = 1`))
}

// SetFaults implements payments.Store.
func (s *Store) SetFaults(ctx context.Context, f payments.Faults) error {
	_, err := s.pool.Exec(ctx, `UPDATE faults SET decline_rate = $1, error_rate = $2, latency_ms = $3,
		down = $4, updated_at = now() WHERE id = 1`, f.DeclineRate, f.ErrorRate, f.LatencyMs, f.Down)
	if err != nil {
		return fmt.Errorf("write faults: %w", err)
	}
	return nil
}

// UpdateFaults implements payments.Store.
func (s *Store) UpdateFaults(ctx context.Context, fn func(*payments.Faults) error) (payments.Faults, error) {
	var out payments.Faults
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		f, err := scanFaults(tx.QueryRow(ctx, `SELECT decline_rate, error_rate, latency_ms, down FROM faults WHERE id = 1 FOR UPDATE`))
		if err != nil {
			return err
		}
		before := f
		if err := fn(&f); err != nil {
			return err
		}
		if f != before {
			if _, err := tx.Exec(ctx, `UPDATE faults SET decline_rate = $1, error_rate = $2, latency_ms = $3,
				down = $4, updated_at = now() WHERE id = 1`, f.DeclineRate, f.ErrorRate, f.LatencyMs, f.Down); err != nil {
				return fmt.Errorf("write faults: %w", err)
			}
		}
		out = f
		return nil
	})
	return out, err
}

func scanFaults(row pgx.Row) (payments.Faults, error) {
	var f payments.Faults
	if err := row.Scan(&f.DeclineRate, &f.ErrorRate, &f.LatencyMs, &f.Down); err != nil {
		return payments.Faults{}, fmt.Errorf("read faults: %w", err)
	}
	return f, nil
}
