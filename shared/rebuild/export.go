package rebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"polyshop/shared/events"
	"polyshop/shared/httpx"
)

// Export pages through an owner's aggregates with their versions. Pages need not form a
// consistent snapshot: each record is judged on its own version.
type Export[T any] interface {
	// Page returns up to limit records after cursor ("" for the first page) and the cursor
	// of the next page ("" after the last page).
	Page(ctx context.Context, cursor string, limit int) (items []T, next string, err error)
}

// Snapshot returns a Source.Snapshot that reads every page of exp (limit records each)
// and applies each page with apply.
func Snapshot[T any](exp Export[T], limit int, apply func(ctx context.Context, page []T) error) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n, cursor := 0, ""
		for {
			items, next, err := exp.Page(ctx, cursor, limit)
			if err != nil {
				return n, err
			}
			if len(items) > 0 {
				if err := apply(ctx, items); err != nil {
					return n, err
				}
				n += len(items)
			}
			if next == "" {
				return n, nil
			}
			cursor = next
		}
	}
}

// Page is the body of an owner's export endpoint: GET <path>?cursor=&limit= →
// {"items":[...],"nextCursor":"..."} (nextCursor left out on the last page).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// HTTPExport is an Export over an owner's internal export endpoint.
type HTTPExport[T any] struct {
	// URL is the endpoint, such as http://127.0.0.1:8083/export/products.
	URL    string
	Client *http.Client
}

// Page implements Export. A problem answer becomes an error carrying the *httpx.Error.
func (h HTTPExport[T]) Page(ctx context.Context, cursor string, limit int) ([]T, string, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := h.URL
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("export %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	if perr := httpx.ReadProblem(resp); perr != nil {
		return nil, "", fmt.Errorf("export %s: %w", h.URL, perr)
	}
	var p Page[T]
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, "", fmt.Errorf("export %s: decode: %w", h.URL, err)
	}
	return p.Items, p.NextCursor, nil
}

// The owners' export records (the JSON of their GET /export/... endpoints). Each carries
// the aggregate's version: the sequence of its latest event, so a record and an event of
// the same aggregate compare directly.

// ProductRecord is one catalog product (GET /export/products), live or deleted. A deleted
// product is a tombstone: Deleted true at the delete's version, so a rebuild does not
// bring it back.
type ProductRecord struct {
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
	Deleted      bool           `json:"deleted"`
	DeletedAt    *time.Time     `json:"deletedAt,omitempty"`
}

// StockRecord is one inventory stock row (GET /export/stock). Available is what
// stock_changed announces: 0 for a retired product.
type StockRecord struct {
	ProductID string `json:"productId"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
	Retired   bool   `json:"retired"`
}

// AddressRecord is one user's shipping address (GET /export/addresses): Address nil when
// the user has none; a deleted user is a tombstone (Deleted, Address nil) at its version.
type AddressRecord struct {
	UserID  string          `json:"userId"`
	Address *events.Address `json:"address"`
	Version int64           `json:"version"`
	Deleted bool            `json:"deleted"`
}
