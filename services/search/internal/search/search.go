// Package search is the product search read model (CQRS): it turns catalog events into
// index operations, describes queries with filters, facets and cursors, and defines the
// Index it needs. The index is disposable: Rebuild replays the catalog stream into a fresh
// index and swaps it in; Drift compares it with the catalog.
//
// Idempotency and order: every write carries the product's version (the event's sequence)
// as an external version, so the index keeps whichever write has the highest version, and
// duplicates or late, older events are ignored.
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

// Document is what the index holds for one live product.
type Document struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Category    string         `json:"category"`
	Price       events.Money   `json:"price"`
	Attributes  map[string]any `json:"attributes"`
	// AttrFacets holds "key=value" for every scalar attribute value (nested keys joined
	// with dots), one keyword field that aggregates into attribute facets without a
	// field per attribute.
	AttrFacets []string  `json:"attrFacets"`
	Version    int64     `json:"version"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// OpKind says what an Op does.
type OpKind int

// Kinds of index operations.
const (
	OpNone   OpKind = iota // the event does not change the index
	OpPut                  // index Doc with external version Version
	OpDelete               // delete ID with external version Version
)

// Op is one index operation derived from an event.
type Op struct {
	Kind    OpKind
	ID      string
	Version int64
	Doc     Document
}

// Subjects are the catalog subjects the projection consumes. product_price_changed is left
// out on purpose: the product_updated of the same version carries the full state.
var Subjects = []string{
	events.SubjectFor(events.TypeProductCreated),
	events.SubjectFor(events.TypeProductUpdated),
	events.SubjectFor(events.TypeProductDeleted),
}

// OpFor maps a catalog event to the index operation it implies. Unknown types map to
// OpNone; a malformed payload is an error wrapping events.ErrInvalid.
func OpFor(e events.Envelope) (Op, error) {
	switch e.Type {
	case events.TypeProductCreated:
		var p events.ProductCreated
		if err := e.Decode(&p); err != nil {
			return Op{}, err
		}
		return put(e, p.ProductID, p.Name, p.Description, p.Category, p.Price, p.Attributes, p.CreatedAt)
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
	InStock  *bool
	After    *Cursor
	Limit    int
}

// Cursor is the sort key of the last hit of a page: score descending, then id ascending.
type Cursor struct {
	Score float64 `json:"s"`
	ID    string  `json:"id"`
}

// Hit is one matching product.
type Hit struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Category    string              `json:"category"`
	Price       events.Money        `json:"price"`
	Attributes  map[string]any      `json:"attributes"`
	Version     int64               `json:"version"`
	Highlights  map[string][]string `json:"highlights"`
	Score       float64             `json:"-"`
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
	// Apply performs ops in order on target ("" = the alias). A version conflict (the index
	// already has the same or a newer version) is success: the write is stale or a duplicate.
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
	// Versions returns the id and version of every document behind the alias.
	Versions(ctx context.Context) (map[string]int64, error)
}

// ErrUnavailable wraps failures to reach the engine.
var ErrUnavailable = errors.New("search engine unavailable")

// ErrCatalogUnavailable wraps failures to reach the catalog service (drift check).
var ErrCatalogUnavailable = errors.New("catalog unavailable")
