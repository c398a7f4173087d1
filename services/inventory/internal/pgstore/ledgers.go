package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"polyshop/services/inventory/internal/inventory"
	"polyshop/shared/outbox/pgoutbox"
)

// heldOf is what the active reservations hold of the product of stock row s: their items
// are a jsonb array of {productId, quantity}. Active reservations are few (the sweeper's
// partial index lists them), so a scan of them per product is cheap at workshop sizes.
const heldOf = `COALESCE((SELECT sum((i->>'quantity')::bigint) FROM reservations r, jsonb_array_elements(r.items) i
	WHERE r.status = 'active' AND i->>'productId' = s.product_id), 0)`

const ledgerColumns = `s.product_id, s.initial, s.restocked, s.reserved, s.sold, s.released, s.available, s.version,
	s.retired_at IS NOT NULL, s.created_at, s.updated_at, ` + heldOf

func scanLedger(row pgx.Row) (inventory.Stock, error) {
	var st inventory.Stock
	err := row.Scan(&st.ProductID, &st.Initial, &st.Restocked, &st.Reserved, &st.Sold, &st.Released,
		&st.Available, &st.Version, &st.Retired, &st.CreatedAt, &st.UpdatedAt, &st.Held)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, inventory.ErrNotFound
	}
	if err != nil {
		return st, fmt.Errorf("read ledger: %w", err)
	}
	return st, nil
}

// Ledgers implements inventory.Store: one statement, so each row's reserved and held are
// read from one snapshot (a reserve changes both in one transaction).
func (s *Store) Ledgers(ctx context.Context, after string, limit int) ([]inventory.Stock, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ledgerColumns+` FROM stock s WHERE s.product_id > $1 ORDER BY s.product_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("ledgers: %w", err)
	}
	defer rows.Close()
	var out []inventory.Stock
	for rows.Next() {
		st, err := scanLedger(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledgers: %w", err)
	}
	return out, nil
}

// LedgerOf implements inventory.Store.
func (s *Store) LedgerOf(ctx context.Context, productID string) (inventory.Stock, error) {
	return scanLedger(s.pool.QueryRow(ctx, `SELECT `+ledgerColumns+` FROM stock s WHERE s.product_id = $1`, productID))
}

// Reconcile implements inventory.Store: the stock row is locked first, then what the
// active reservations hold is read; a reserve of the product waits for the row lock, so
// neither count can move in between.
func (s *Store) Reconcile(ctx context.Context, productID string, fn inventory.ProductFunc) (inventory.Stock, error) {
	var out inventory.Stock
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM stock WHERE product_id = $1 FOR UPDATE`, productID); err != nil {
			return fmt.Errorf("lock stock %s: %w", productID, err)
		}
		st, err := scanLedger(tx.QueryRow(ctx, `SELECT `+ledgerColumns+` FROM stock s WHERE s.product_id = $1`, productID))
		var cur *inventory.Stock
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
