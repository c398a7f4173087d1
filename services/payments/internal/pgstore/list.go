package pgstore

import (
	"context"
	"fmt"

	"polyshop/services/payments/internal/payments"
)

// List implements payments.Store: one statement per page, in id order (the primary key),
// so a page is consistent in itself; pages are not one snapshot.
func (s *Store) List(ctx context.Context, after string, limit int) ([]payments.Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM payments
		WHERE $1 = '' OR id > $1::uuid ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
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
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return out, nil
}
