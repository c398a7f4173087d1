// Package search is the product search read model (CQRS): it turns catalog and inventory
// events into index operations, describes queries with filters, facets and cursors, and
// defines the Index it needs. The index is disposable: Rebuild fills a fresh index from the
// catalog's and inventory's exports plus the tails of CATALOG and INVENTORY (snapshot +
// tail, shared/rebuild), checks it against the catalog and swaps it in; Drift compares the
// live index with the catalog.
//
// Idempotency and order: a document holds the catalog's and inventory's versions side by
// side (see Document); each event replaces its source's part only when its version is
// newer, so duplicates and late, older events change nothing, whatever the order.
package search

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"polyshop/shared/events"
)

// Document is what the index holds for one product id. It has two parts written by two
// sources, each with its own version:
//
//   - the catalog part (name … updatedAt, Version, Deleted), from product_created,
//     product_updated and product_deleted, versioned by the catalog's product version;
//   - the stock part (StockVersion, Available, InStock), from inventory's stock_changed,
//     versioned by the stock row's version.
//
// Each part is replaced only by an event with a higher version of its own source, so the
// final document does not depend on the order events arrive in. A delete turns the catalog
// part into a tombstone (Deleted, with the delete's version) that stays in the index, so a
// late older catalog event cannot bring the product back and a late stock event only
// updates the hidden tombstone. A document with no catalog part yet (stock arrived first)
// or a tombstone is not Visible: queries, facets and Versions never show it.
type Document struct {
	ID          string         `json:"id"`
	Name        string         `json:"name,omitempty"`
	Description string         `json:"description,omitempty"`
	Category    string         `json:"category,omitempty"`
	Price       events.Money   `json:"price,omitzero"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	// AttrFacets holds "key=value" for every scalar attribute value (nested keys joined
	// with dots), one keyword field that aggregates into attribute facets without a
	// field per attribute.
	AttrFacets []string `json:"attrFacets,omitempty"`
	// Version is the catalog version of the last catalog event applied (created, updated
	// or deleted); 0 means no catalog event yet (a stock-only document).
	Version   int64     `json:"version,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// CreatedAt and InitialStock come from product_created (or a rebuild's export); a
	// product_updated does not carry them, so an update keeps the values already held.
	// They are what the product listing (List) returns besides the searchable fields.
	CreatedAt    time.Time `json:"createdAt,omitzero"`
	InitialStock int64     `json:"initialStock,omitempty"`
	// Deleted marks a tombstone: the product was deleted at catalog version Version.
	Deleted bool `json:"deleted,omitempty"`
	// StockVersion is inventory's version of the last stock_changed applied; 0 means
	// inventory has not reported the product yet.
	StockVersion int64 `json:"stockVersion,omitempty"`
	// Available is the available quantity (nil: unknown).
	Available *int64 `json:"available,omitempty"`
	// InStock is Available > 0; false when unknown.
	InStock bool `json:"inStock"`
}

// Visible reports whether the document is a live product (has its catalog part and is
// not deleted); only visible documents are searched, faceted and listed.
func (d Document) Visible() bool { return d.Version > 0 && !d.Deleted }

// OpKind says what an Op does.
type OpKind int

// Kinds of index operations.
const (
	OpNone   OpKind = iota // the event does not change the index
	OpPut                  // replace the catalog part with Doc at catalog version Version
	OpDelete               // turn the catalog part into a tombstone at catalog version Version
	OpStock                // set the stock part to Available at stock version Version
)

// Op is one index operation derived from an event.
type Op struct {
	Kind    OpKind
	ID      string
	Version int64
	// Doc is the catalog part, for OpPut.
	Doc Document
	// Available is the available quantity, for OpStock.
	Available int64
}

// ApplyTo returns the document after op, starting from cur (nil: no document yet), and
// whether op changed it. An op whose version is not newer than its source's version in
// cur is stale or a duplicate and changes nothing.
func (op Op) ApplyTo(cur *Document) (Document, bool) {
	d := Document{ID: op.ID}
	if cur != nil {
		d = *cur
	}
	switch op.Kind {
	case OpPut:
		// A tombstone's version is the delete's, higher than any update of the product.
		if op.Version <= d.Version {
			return d, false
		}
		n := op.Doc
		n.ID, n.Version, n.Deleted = op.ID, op.Version, false
		if n.CreatedAt.IsZero() { // product_updated: keep what product_created set
			n.CreatedAt, n.InitialStock = d.CreatedAt, d.InitialStock
		}
		n.StockVersion, n.Available, n.InStock = d.StockVersion, d.Available, d.InStock
		return n, true
	case OpDelete:
		if op.Version <= d.Version {
			return d, false
		}
		return Document{ID: op.ID, Version: op.Version, Deleted: true,
			StockVersion: d.StockVersion, Available: d.Available, InStock: d.InStock}, true
	case OpStock:
		if op.Version <= d.StockVersion {
			return d, false
		}
		a := op.Available
		d.StockVersion, d.Available, d.InStock = op.Version, &a, a > 0
		return d, true
	}
	return d, false
}

// Fold applies ops (all for the same id, in order) to cur and reports whether any changed it.
func Fold(cur *Document, ops []Op) (Document, bool) {
	changed := false
	for _, op := range ops {
		d, ok := op.ApplyTo(cur)
		if ok {
			changed = true
		}
		cur = &d
	}
	if cur == nil {
		return Document{}, false
	}
	return *cur, changed
}

// Subjects are the catalog subjects the projection consumes. product_price_changed is left
// out on purpose: the product_updated of the same version carries the full state.
var Subjects = []string{
	events.SubjectFor(events.TypeProductCreated),
	events.SubjectFor(events.TypeProductUpdated),
	events.SubjectFor(events.TypeProductDeleted),
}

// StockSubjects are the inventory subjects the projection consumes.
var StockSubjects = []string{events.SubjectFor(events.TypeStockChanged)}

// OpFor maps a catalog or inventory event to the index operation it implies. Unknown types map to
// OpNone; a malformed payload is an error wrapping events.ErrInvalid.
func OpFor(e events.Envelope) (Op, error) {
	switch e.Type {
	case events.TypeProductCreated:
		var p events.ProductCreated
		if err := e.Decode(&p); err != nil {
			return Op{}, err
		}
		op, err := put(e, p.ProductID, p.Name, p.Description, p.Category, p.Price, p.Attributes, p.CreatedAt)
		op.Doc.CreatedAt, op.Doc.InitialStock = p.CreatedAt, p.InitialStock
		return op, err
	case events.TypeProductUpdated:
		var p events.ProductUpdated
		if err := e.Decode(&p); err != nil {
			return Op{}, err
		}
		return put(e, p.ProductID, p.Name, p.Description, p.Category, p.Price, p.Attributes, p.UpdatedAt)
	case events.TypeProductDeleted:
		var p events.ProductDeleted
		if err := e.Decode(&p); err != nil {
			return Op{}, err
		}
		if p.ProductID != e.Subject {
			return Op{}, &events.FieldError{Field: "data.productId", Reason: "differs from subject"}
		}
		return Op{Kind: OpDelete, ID: e.Subject, Version: e.Sequence}, nil
	case events.TypeStockChanged:
		var p events.StockChanged
		if err := e.Decode(&p); err != nil {
			return Op{}, err
		}
		switch {
		case p.ProductID != e.Subject:
			return Op{}, &events.FieldError{Field: "data.productId", Reason: "differs from subject"}
		case p.Version != e.Sequence:
			return Op{}, &events.FieldError{Field: "data.version", Reason: "differs from the envelope's sequence"}
		case p.Available < 0:
			return Op{}, &events.FieldError{Field: "data.available", Reason: "is negative"}
		}
		return Op{Kind: OpStock, ID: e.Subject, Version: e.Sequence, Available: p.Available}, nil
	}
	return Op{Kind: OpNone}, nil
}

func put(e events.Envelope, id, name, desc, cat string, price events.Money, attrs map[string]any, at time.Time) (Op, error) {
	if id != e.Subject {
		return Op{}, &events.FieldError{Field: "data.productId", Reason: "differs from subject"}
	}
	if attrs == nil {
		attrs = map[string]any{}
	}
	d := Document{
		ID: id, Name: name, Description: desc, Category: cat, Price: price,
		Attributes: attrs, AttrFacets: FacetValues(attrs), Version: e.Sequence, UpdatedAt: at,
	}
	return Op{Kind: OpPut, ID: id, Version: e.Sequence, Doc: d}, nil
}

// FacetValues flattens attributes into sorted "key=value" strings; nested keys are joined
// with dots and every element of an array becomes its own value.
func FacetValues(attrs map[string]any) []string {
	out := []string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, c)
			}
		case []any:
			for _, c := range x {
				walk(prefix, c)
			}
		case string:
			out = append(out, prefix+"="+x)
		case float64:
			out = append(out, prefix+"="+strconv.FormatFloat(x, 'f', -1, 64))
		case bool:
			out = append(out, prefix+"="+strconv.FormatBool(x))
		case nil:
		default:
			out = append(out, fmt.Sprintf("%s=%v", prefix, x))
		}
	}
	walk("", attrs)
	slices.Sort(out)
	return slices.Compact(out)
}

// Query limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	MaxQueryLen  = 200
)

// Query is a search request after validation.
type Query struct {
	Text     string
	Category string
	MinPrice *int64
	MaxPrice *int64
	// InStock: nil = no filter; true = inventory reported available > 0; false = everything
	// else, including products inventory has not reported yet.
	InStock *bool
	After   *Cursor
	Limit   int
}

// Cursor is the sort key of the last hit of a page: score descending, then id ascending.
type Cursor struct {
	Score float64 `json:"s"`
	ID    string  `json:"id"`
}

// Hit is one matching product.
type Hit struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Category    string         `json:"category"`
	Price       events.Money   `json:"price"`
	Attributes  map[string]any `json:"attributes"`
	Version     int64          `json:"version"`
	// InStock is false when inventory has not reported the product yet.
	InStock bool `json:"inStock"`
	// Available is nil (left out) when inventory has not reported the product yet.
	Available  *int64              `json:"available,omitempty"`
	Highlights map[string][]string `json:"highlights"`
	Score      float64             `json:"-"`
}

// ValueCount is one facet bucket.
type ValueCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// PriceBucket is one price range facet bucket, in minor units; From is inclusive, To
// exclusive, nil means unbounded.
type PriceBucket struct {
	Key   string `json:"key"`
	From  *int64 `json:"from,omitempty"`
	To    *int64 `json:"to,omitempty"`
	Count int64  `json:"count"`
}

// Facets summarise the matching products.
type Facets struct {
	Category   []ValueCount            `json:"category"`
	Price      []PriceBucket           `json:"price"`
	Attributes map[string][]ValueCount `json:"attributes"`
}

// Result is one page of hits.
type Result struct {
	Hits   []Hit  `json:"hits"`
	Total  int64  `json:"total"`
	Facets Facets `json:"facets"`
	// Next is the cursor of the next page, nil on the last page.
	Next *Cursor `json:"-"`
}

// PriceRanges are the price facet's buckets, in minor units.
var PriceRanges = []PriceBucket{
	{Key: "under-10", To: ptr(1000)},
	{Key: "10-25", From: ptr(1000), To: ptr(2500)},
	{Key: "25-50", From: ptr(2500), To: ptr(5000)},
	{Key: "50-100", From: ptr(5000), To: ptr(10000)},
	{Key: "100-250", From: ptr(10000), To: ptr(25000)},
	{Key: "250-and-up", From: ptr(25000)},
}

func ptr(v int64) *int64 { return &v }

// SplitAttrFacets turns "key=value" buckets into facets per key, keys sorted, values in
// the order given (count descending from the engine).
func SplitAttrFacets(buckets []ValueCount) map[string][]ValueCount {
	out := map[string][]ValueCount{}
	for _, b := range buckets {
		k, v, ok := strings.Cut(b.Value, "=")
		if !ok {
			continue
		}
		out[k] = append(out[k], ValueCount{Value: v, Count: b.Count})
	}
	for k := range out {
		sort.SliceStable(out[k], func(i, j int) bool { return out[k][i].Count > out[k][j].Count })
	}
	return out
}

// Index is the search engine behind the read model. Writes go through the alias unless a
// concrete index is named (the rebuild writes into its new index). Implementations are safe
// for concurrent use.
type Index interface {
	// Apply performs ops in order on target ("" = the alias): each document is read,
	// changed with Fold (stale or duplicate ops change nothing) and written back only if
	// nobody wrote it in between, else read again. Safe with concurrent writers.
	Apply(ctx context.Context, target string, ops []Op) error
	// Search runs q against the alias.
	Search(ctx context.Context, q Query) (Result, error)
	// CreateIndex creates a new, empty concrete index with the mappings and returns its name.
	CreateIndex(ctx context.Context) (string, error)
	// SwapAlias points the alias at index in one atomic request and returns the indices it
	// pointed at before.
	SwapAlias(ctx context.Context, index string) ([]string, error)
	// Refresh makes every write to index ("" = the alias) visible to searches.
	Refresh(ctx context.Context, index string) error
	// DeleteIndex deletes a concrete index.
	DeleteIndex(ctx context.Context, index string) error
	// Versions returns the id and catalog version of every visible document in target
	// ("" = the alias).
	Versions(ctx context.Context, target string) (map[string]int64, error)
	// List returns up to q.Limit+1 visible products behind the alias, in id order, after
	// q.After; the extra one tells that another page follows.
	List(ctx context.Context, q ListQuery) ([]Listed, error)
}

// ListQuery is one page of the product listing (GET /products): products of Category (all
// when empty), in ascending id order, after the id After (keyset paging, "" = from the
// start). The order is stable: ids never change, so a page boundary stays where it was
// while products are added or removed around it.
type ListQuery struct {
	Category string
	After    string
	Limit    int
}

// Listed is one product of the listing, in the catalog's product shape (the public
// GET /api/products keeps the shape it had when the catalog served it).
type Listed struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Category     string         `json:"category"`
	Price        events.Money   `json:"price"`
	Attributes   map[string]any `json:"attributes"`
	InitialStock int64          `json:"initialStock"`
	Version      int64          `json:"version"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
}

// ErrBusy is a search refused because Options.QueryInflight queries are already running in
// Elasticsearch (a 503 with Retry-After).
var ErrBusy = errors.New("search engine at its bound of queries in flight")

// ErrUnavailable wraps failures to reach the engine.
var ErrUnavailable = errors.New("search engine unavailable")

// ErrCatalogUnavailable wraps failures to reach the catalog service (drift check).
var ErrCatalogUnavailable = errors.New("catalog unavailable")
