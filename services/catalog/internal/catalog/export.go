package catalog

import (
	"context"
	"fmt"
)

// Export returns a page of every product, deleted ones included (as tombstones), in id
// order after the id after, for read models rebuilding from the catalog
// (shared/rebuild). Pages are read one at a time, not as one consistent snapshot: each
// product carries its version, which is what a rebuild compares.
func (s *Service) Export(ctx context.Context, after string, limit int) ([]Product, error) {
	if after != "" && !validID(after) {
		return nil, ErrBadCursor
	}
	ps, err := s.store.Export(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("export products: %w", err)
	}
	return ps, nil
}
