package esindex_test

import (
	"context"

	"polyshop/shared/rebuild"
	"polyshop/shared/rebuild/rebuildtest"
)

// testCatalog is the catalog's listing of live products (search.Catalog) taken from a
// product export: the drift check's source of truth in tests.
type testCatalog struct {
	Export *rebuildtest.Export[rebuild.ProductRecord]
	// Extra lists live products the export does not have (a broken export, for the drift
	// refusal test).
	Extra map[string]int64
}

// Each implements search.Catalog.
func (c testCatalog) Each(ctx context.Context, fn func(id string, version int64) error) error {
	for _, p := range c.Export.Snapshot() {
		if p.Deleted {
			continue
		}
		if err := fn(p.ID, p.Version); err != nil {
			return err
		}
	}
	for id, v := range c.Extra {
		if err := fn(id, v); err != nil {
			return err
		}
	}
	return nil
}
