// Package pgstore is the PostgreSQL adapter of the inventory domain: stock rows with their
// ledger, one reservation row per order, the fault switches, and the transactional outbox
// (shared/outbox/pgoutbox) and inbox (shared/inbox/pginbox) written in the same
// transactions.
//
// Lock order, the same everywhere so nothing deadlocks: the order's reservation row first
// (a saga command or the sweeper), then stock rows in ascending product id.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/migrations"
	"polyshop/shared/events"
	"polyshop/shared/inbox/pginbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgmigrate"
)

// Store implements inventory.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ inventory.Store = (*Store)(nil)

// New returns a Store using pool; the schema must be migrated (Migrate).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate applies the embedded migrations in pool's search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pgmigrate.Apply(ctx, pool, migrations.FS); err != nil {
		return fmt.Errorf("migrate inventory: %w", err)
	}
	return nil
}

const stockColumns = `product_id, initial, restocked, reserved, sold, released, available, version,
	retired_at IS NOT NULL, created_at, updated_at`

func scanStock(row pgx.Row) (inventory.Stock, error) {
	var s inventory.Stock
	err := row.Scan(&s.ProductID, &s.Initial, &s.Restocked, &s.Reserved, &s.Sold, &s.Released,
		&s.Available, &s.Version, &s.Retired, &s.CreatedAt, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, inventory.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("read stock: %w", err)
	}
	return s, nil
}

// Stock implements inventory.Store.
func (s *Store) Stock(ctx context.Context, productID string) (inventory.Stock, error) {
	return scanStock(s.pool.QueryRow(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id = $1`, productID))
}

// Stocks implements inventory.Store.
func (s *Store) Stocks(ctx context.Context, ids []string) ([]inventory.Stock, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("list stock: %w", err)
	}
	return collectStock(rows)
}

func collectStock(rows pgx.Rows) ([]inventory.Stock, error) {
	defer rows.Close()
	var out []inventory.Stock
	for rows.Next() {
		st, err := scanStock(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list stock: %w", err)
	}
	return out, nil
}

// writeStock upserts a stock row with every column as given.
func writeStock(ctx context.Context, tx pgx.Tx, st inventory.Stock) error {
	var retired *time.Time
	if st.Retired {
		t := st.UpdatedAt
		retired = &t
	}
	_, err := tx.Exec(ctx, `
INSERT INTO stock (product_id, initial, restocked, reserved, sold, released, available, version, retired_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (product_id) DO UPDATE SET initial = $2, restocked = $3, reserved = $4, sold = $5, released = $6,
	available = $7, version = $8, retired_at = COALESCE(stock.retired_at, $9), updated_at = $11`,
		st.ProductID, st.Initial, st.Restocked, st.Reserved, st.Sold, st.Released, st.Available, st.Version,
		retired, st.CreatedAt, st.UpdatedAt)
	if err != nil {
		return fmt.Errorf("write stock %s: %w", st.ProductID, err)
	}
	return nil
}

// Product implements inventory.Store.
func (s *Store) Product(ctx context.Context, productID string, claim *inventory.InboxClaim, fn inventory.ProductFunc) (inventory.Stock, error) {
	var out inventory.Stock
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if seen, err := claimed(ctx, tx, claim); err != nil || seen {
			return err
		}
		var cur *inventory.Stock
		st, err := scanStock(tx.QueryRow(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id = $1 FOR UPDATE`, productID))
		switch {
		case err == nil:
			cur, out = &st, st
		case !errors.Is(err, inventory.ErrNotFound):
			return err
		}
		next, evs, err := fn(cur)
		if err != nil || next == nil {
			return err
		}
		if err := writeStock(ctx, tx, *next); err != nil {
			return err
		}
		out = *next
		return pgoutbox.Add(ctx, tx, evs...)
	})
	return out, err
}

const reservationColumns = `order_id::text, id::text, user_id, status, items, reserve_reply, release_reply, commit_reply,
	replies, version, created_at, expires_at, updated_at`

func scanReservation(row pgx.Row) (inventory.Reservation, error) {
	var (
		r                         inventory.Reservation
		status                    string
		items                     []byte
		reserve, release, commitR []byte
	)
	err := row.Scan(&r.OrderID, &r.ID, &r.UserID, &status, &items, &reserve, &release, &commitR,
		&r.Replies, &r.Version, &r.CreatedAt, &r.ExpiresAt, &r.UpdatedAt)
	if err != nil {
		return r, err
	}
	r.Status = inventory.Status(status)
	if err := json.Unmarshal(items, &r.Items); err != nil {
		return r, fmt.Errorf("reservation %s items: %w", r.OrderID, err)
	}
	for _, p := range []struct {
		raw []byte
		dst **inventory.StoredReply
	}{{reserve, &r.Reserve}, {release, &r.Release}, {commitR, &r.Commit}} {
		if p.raw == nil {
			continue
		}
		var sr inventory.StoredReply
		if err := json.Unmarshal(p.raw, &sr); err != nil {
			return r, fmt.Errorf("reservation %s reply: %w", r.OrderID, err)
		}
		*p.dst = &sr
	}
	return r, nil
}

// orderTx implements inventory.OrderTx.
type orderTx struct {
	tx pgx.Tx
	r  inventory.Reservation
}

func (o *orderTx) Reservation() inventory.Reservation { return o.r }

func (o *orderTx) LockStock(ctx context.Context, ids []string) (map[string]inventory.Stock, error) {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	// LockRows sits above the Sort in the plan, so rows are locked in product id order.
	rows, err := o.tx.Query(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id = ANY($1)
		ORDER BY product_id FOR UPDATE`, sorted)
	if err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	list, err := collectStock(rows)
	if err != nil {
		return nil, err
	}
	out := make(map[string]inventory.Stock, len(list))
	for _, st := range list {
		out[st.ProductID] = st
	}
	return out, nil
}

func replyJSON(r *inventory.StoredReply) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	return json.Marshal(r)
}

func (o *orderTx) Save(ctx context.Context, r inventory.Reservation, stocks []inventory.Stock, evs []events.Envelope) error {
	items, err := json.Marshal(r.Items)
	if err != nil {
		return err
	}
	if r.Items == nil {
		items = []byte("[]")
	}
	var replies [3][]byte
	for i, sr := range []*inventory.StoredReply{r.Reserve, r.Release, r.Commit} {
		if replies[i], err = replyJSON(sr); err != nil {
			return err
		}
	}
	_, err = o.tx.Exec(ctx, `UPDATE reservations SET user_id = $2, status = $3, items = $4, reserve_reply = $5,
		release_reply = $6, commit_reply = $7, replies = $8, version = $9, expires_at = $10, updated_at = $11
		WHERE order_id = $1`,
		r.OrderID, r.UserID, string(r.Status), items, replies[0], replies[1], replies[2], r.Replies, r.Version,
		r.ExpiresAt, r.UpdatedAt)
	if err != nil {
		return fmt.Errorf("save reservation %s: %w", r.OrderID, err)
	}
	for _, st := range stocks {
		if err := writeStock(ctx, o.tx, st); err != nil {
			return err
		}
	}
	return pgoutbox.Add(ctx, o.tx, evs...)
}

// Order implements inventory.Store.
func (s *Store) Order(ctx context.Context, orderID, newID string, claim *inventory.InboxClaim, fn inventory.OrderFunc) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if seen, err := claimed(ctx, tx, claim); err != nil || seen {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reservations (order_id, id) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING`,
			orderID, newID); err != nil {
			return fmt.Errorf("insert reservation %s: %w", orderID, err)
		}
		r, err := scanReservation(tx.QueryRow(ctx, `SELECT `+reservationColumns+` FROM reservations
			WHERE order_id = $1 FOR UPDATE`, orderID))
		if err != nil {
			return fmt.Errorf("lock reservation %s: %w", orderID, err)
		}
		return fn(ctx, &orderTx{tx: tx, r: r})
	})
}

// claimed claims claim's event in the inbox within tx and reports whether it had been
// claimed before (nothing to do). A nil claim claims nothing.
func claimed(ctx context.Context, tx pgx.Tx, claim *inventory.InboxClaim) (bool, error) {
	if claim == nil {
		return false, nil
	}
	first, err := pginbox.Claim(ctx, tx, claim.Consumer, claim.Event)
	return !first, err
}

// ExpireOne implements inventory.Store.
func (s *Store) ExpireOne(ctx context.Context, now time.Time, fn inventory.OrderFunc) (bool, error) {
	found := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanReservation(tx.QueryRow(ctx, `SELECT `+reservationColumns+` FROM reservations
			WHERE status = 'active' AND expires_at <= $1
			ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED`, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim due reservation: %w", err)
		}
		found = true
		return fn(ctx, &orderTx{tx: tx, r: r})
	})
	return found, err
}

// Reservations implements inventory.Store.
func (s *Store) Reservations(ctx context.Context, orderID string) ([]inventory.Reservation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reservationColumns+` FROM reservations
		WHERE order_id = $1 AND status <> 'none'`, orderID)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	defer rows.Close()
	out := []inventory.Reservation{}
	for rows.Next() {
		r, err := scanReservation(rows)
		if err != nil {
			return nil, fmt.Errorf("read reservation: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Faults implements inventory.Store.
func (s *Store) Faults(ctx context.Context) (inventory.Faults, error) {
	var f inventory.Faults
	if err := s.pool.QueryRow(ctx, `SELECT latency_ms, down FROM faults`).Scan(&f.LatencyMs, &f.Down); err != nil {
		return f, fmt.Errorf("read faults: %w", err)
	}
	return f, nil
}

// SetFaults implements inventory.Store.
func (s *Store) SetFaults(ctx context.Context, p inventory.FaultsPatch) (inventory.Faults, error) {
	var f inventory.Faults
	err := s.pool.QueryRow(ctx, `UPDATE faults SET latency_ms = COALESCE($1, latency_ms), down = COALESCE($2, down),
		updated_at = now() RETURNING latency_ms, down`, p.LatencyMs, p.Down).Scan(&f.LatencyMs, &f.Down)
	if err != nil {
		return f, fmt.Errorf("set faults: %w", err)
	}
	return f, nil
}
