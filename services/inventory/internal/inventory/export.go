package inventory

import (
	"context"
	"fmt"
)

// ExportStock returns a page of every stock row, retired ones included, in product id order
// after the id after, for read models rebuilding from inventory (shared/rebuild). Each row
// carries its version, the sequence of its latest stock_changed.
func (s *Service) ExportStock(ctx context.Context, after string, limit int) ([]Stock, error) {
	rows, err := s.store.ExportStock(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("export stock: %w", err)
	}
	return rows, nil
}
