// Package catalogclient reads the catalog service's internal API: the product listing, paged
// with its opaque cursors, for the drift check.
package catalogclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"polyshop/services/search/internal/search"
	"polyshop/shared/httpx"
)

// Client lists products of the catalog at a base URL.
type Client struct {
	base string
	http *http.Client
}

var _ search.Catalog = (*Client)(nil)

// New returns a client of the catalog at base (such as http://127.0.0.1:8083).
func New(base string, hc *http.Client) *Client {
	return &Client{base: base, http: hc}
}

type page struct {
	Items []struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

// Each implements search.Catalog.
func (c *Client) Each(ctx context.Context, fn func(id string, version int64) error) error {
	cursor := ""
	for {
		u := c.base + "/products?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%w: list products: %w", search.ErrCatalogUnavailable, err)
		}
		var p page
		if perr := httpx.ReadProblem(resp); perr != nil {
			resp.Body.Close()
			if perr.Status >= 500 {
				return fmt.Errorf("%w: list products: %w", search.ErrCatalogUnavailable, perr)
			}
			return fmt.Errorf("list catalog products: %w", perr)
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("decode catalog products: %w", err)
		}
		for _, it := range p.Items {
			if err := fn(it.ID, it.Version); err != nil {
				return err
			}
		}
		if p.NextCursor == "" {
			return nil
		}
		cursor = p.NextCursor
	}
}
