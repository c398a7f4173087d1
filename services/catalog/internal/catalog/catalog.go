// Package catalog is the product catalog's domain: products with category-specific
// attributes, the category registry, validation, optimistic concurrency by version, and the
// events each change emits. Storage is behind Store; the adapter writes a change and its
// events in one single-document update (no multi-document transactions are needed, so the
// same code runs on FerretDB and MongoDB).
package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"polyshop/shared/events"
)

// Sentinel errors; the HTTP layer maps them to statuses in one table.
var (
	// ErrNotFound: no product with that id, or it was deleted.
	ErrNotFound = errors.New("product not found")
	// ErrVersionConflict: the caller's expected version is not the current one.
	ErrVersionConflict = errors.New("product version conflict")
	// ErrInvalid is matched by every *Validation error.
	ErrInvalid = errors.New("invalid product")
	// ErrBusy: the product changed concurrently too often to apply an unconditional change.
	ErrBusy = errors.New("product is being changed concurrently; retry")
	// ErrBadCursor: a list cursor this service did not issue (malformed input, not an
	// invalid value).
	ErrBadCursor = errors.New("not a cursor this service issued")
)

// Money is an amount in minor units and an ISO 4217 currency code.
type Money = events.Money

// Product is one sellable item. Version starts at 1 and grows by one with every change
// (delete included); it is the sequence of the product's events.
type Product struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Category     string         `json:"category"`
	Price        Money          `json:"price"`
	Attributes   map[string]any `json:"attributes"`
	InitialStock int64          `json:"initialStock"`
	Version      int64          `json:"version"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
	Deleted      bool           `json:"-"`
	DeletedAt    *time.Time     `json:"-"`
}

// NewProduct is the input of Create.
type NewProduct struct {
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Category     string         `json:"category"`
	Price        *Money         `json:"price"`
	Attributes   map[string]any `json:"attributes"`
	InitialStock *int64         `json:"initialStock"`
}

// Patch is the input of Update: nil fields stay as they are. Attributes, when present,
// replace the product's attributes as a whole (and are validated against the category,
// the new one if Category changes too).
type Patch struct {
	Name        *string        `json:"name"`
	Description *string        `json:"description"`
	Category    *string        `json:"category"`
	Price       *Money         `json:"price"`
	Attributes  map[string]any `json:"attributes"`
	// Version is the version the caller read; an If-Match header does the same.
	Version *int64 `json:"version"`
}

// ListQuery selects a page of live products in id order (ids are UUIDv7, so this is
// creation order).
type ListQuery struct {
	Category string // "" for every category
	After    string // the last id of the previous page, "" for the first page
	Limit    int
}

// Store persists products. Implementations are safe for concurrent use.
type Store interface {
	// Insert stores a new product together with its pending events.
	Insert(ctx context.Context, p Product, evs []events.Envelope) error
	// Get returns the product, deleted or not, or ErrNotFound.
	Get(ctx context.Context, id string) (Product, error)
	// Update reads the product, lets fn change it and return the events of the change, and
	// writes the new state and the events in one single-document update conditioned on the
	// version that was read. When another writer got there first it reads again and calls
	// fn again (a few times, then ErrBusy). An error from fn is returned as is and nothing
	// is written. A missing product is ErrNotFound before fn is called.
	Update(ctx context.Context, id string, fn func(p *Product) ([]events.Envelope, error)) (Product, error)
	// List returns up to q.Limit live products of q.Category with ids after q.After.
	List(ctx context.Context, q ListQuery) ([]Product, error)
	// Count returns how many live products there are.
	Count(ctx context.Context) (int64, error)
	// Export returns up to limit products, deleted ones included, with ids after after, in
	// id order (for read models' rebuilds: GET /export/products).
	Export(ctx context.Context, after string, limit int) ([]Product, error)
}

// Validation is a list of field problems; it is an error matching ErrInvalid.
type Validation struct {
	Fields []FieldProblem
}

// FieldProblem names a field and says what is wrong with it.
type FieldProblem struct {
	Field  string
	Reason string
}

// Add records a problem with field.
func (v *Validation) Add(field, reason string) {
	v.Fields = append(v.Fields, FieldProblem{Field: field, Reason: reason})
}

// Err returns v as an error, or nil when nothing was added.
func (v *Validation) Err() error {
	if len(v.Fields) == 0 {
		return nil
	}
	return v
}

func (v *Validation) Error() string {
	parts := make([]string, len(v.Fields))
	for i, f := range v.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid product: " + strings.Join(parts, "; ")
}

// Is reports true for ErrInvalid.
func (v *Validation) Is(target error) bool { return target == ErrInvalid }

// Limits of product fields.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 5000
	MaxAmount         = 1_000_000_000_00 // one billion in major units
	MaxInitialStock   = 1_000_000_000
)

func validateName(name string, v *Validation) string {
	name = strings.TrimSpace(name)
	switch n := len([]rune(name)); {
	case n == 0:
		v.Add("name", "is required")
	case n > MaxNameLen:
		v.Add("name", fmt.Sprintf("is %d characters long, at most %d are allowed", n, MaxNameLen))
	}
	return name
}

func validateDescription(d string, v *Validation) string {
	d = strings.TrimSpace(d)
	if n := len([]rune(d)); n > MaxDescriptionLen {
		v.Add("description", fmt.Sprintf("is %d characters long, at most %d are allowed", n, MaxDescriptionLen))
	}
	return d
}

func validatePrice(p *Money, v *Validation) Money {
	if p == nil {
		v.Add("price", "is required")
		return Money{}
	}
	switch {
	case p.Amount <= 0:
		v.Add("price.amount", "must be a positive integer number of minor units")
	case p.Amount > MaxAmount:
		v.Add("price.amount", fmt.Sprintf("must be at most %d", int64(MaxAmount)))
	}
	if !isCurrency(p.Currency) {
		v.Add("price.currency", "must be an ISO 4217 code of three upper-case letters, such as EUR")
	}
	return *p
}

func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func validateCategory(name string, v *Validation) (Category, bool) {
	if name == "" {
		v.Add("category", "is required")
		return Category{}, false
	}
	c, ok := LookupCategory(name)
	if !ok {
		v.Add("category", "unknown category; one of "+strings.Join(CategoryNames(), ", "))
	}
	return c, ok
}
