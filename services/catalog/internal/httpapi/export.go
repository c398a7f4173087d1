package httpapi

import (
	"net/http"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/shared/rebuild"
)

// exportProducts serves GET /export/products?cursor=&limit=: every product with its
// version, deleted ones as tombstones (deleted: true), for read models' rebuilds
// (shared/rebuild). Read-only, operator and internal use.
func (a *API) exportProducts(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := rebuild.ParseExportQuery(r)
	if err != nil {
		return err
	}
	ps, err := a.svc.Export(r.Context(), after, limit)
	if err != nil {
		return problem(err)
	}
	items := make([]rebuild.ProductRecord, len(ps))
	for i, p := range ps {
		items[i] = productRecord(p)
	}
	return rebuild.WritePage(w, items, limit, func(p rebuild.ProductRecord) string { return p.ID })
}

func productRecord(p catalog.Product) rebuild.ProductRecord {
	attrs := p.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	return rebuild.ProductRecord{
		ID: p.ID, Name: p.Name, Description: p.Description, Category: p.Category, Price: p.Price,
		Attributes: attrs, InitialStock: p.InitialStock, Version: p.Version,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Deleted: p.Deleted, DeletedAt: p.DeletedAt,
	}
}
