package pgstore

import (
	"context"
	"fmt"

	"polyshop/services/inventory/internal/inventory"
)

// ExportStock implements inventory.Store: one statement, so a page is consistent in
// itself (pages are not one snapshot; a rebuild compares versions).
func (s *Store) ExportStock(ctx context.Context, after string, limit int) ([]inventory.Stock, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+stockColumns+` FROM stock WHERE product_id > $1 ORDER BY product_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("export stock: %w", err)
	}
	return collectStock(rows)
}
