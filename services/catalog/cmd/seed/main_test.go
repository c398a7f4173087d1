package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/services/catalog/internal/httpapi"
	"polyshop/services/catalog/internal/mongostore"
	"polyshop/services/catalog/internal/seed"
	"polyshop/shared/testenv/mongotest"
)

// catalogServer is the catalog's API over a FerretDB database of the test's own.
func catalogServer(t *testing.T) (*httptest.Server, *catalog.Service) {
	t.Helper()
	ctx := context.Background()
	s, err := mongostore.New(ctx, mongotest.Database(t, "CATALOG_MONGODB_URI"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := catalog.NewService(s)
	srv := httptest.NewServer(httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil).Handler())
	t.Cleanup(srv.Close)
	return srv, svc
}

// liveNames lists the names of the catalog's live products, sorted.
func liveNames(t *testing.T, srv *httptest.Server) []string {
	t.Helper()
	c := &client{base: srv.URL, http: http.DefaultClient}
	var names []string
	cursor := ""
	for {
		var page struct {
			Items []struct {
				Name    string `json:"name"`
				Deleted bool   `json:"deleted"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		path := "/export/products?limit=7"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if err := c.do(context.Background(), http.MethodGet, path, nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if !it.Deleted {
				names = append(names, it.Name)
			}
		}
		if page.NextCursor == "" {
			slices.Sort(names)
			return names
		}
		cursor = page.NextCursor
	}
}

func seedNames(seedVal uint64, n int) []string {
	var names []string
	for i := range n {
		names = append(names, seed.Product(seedVal, i).Name)
	}
	slices.Sort(names)
	return names
}

func runSeed(t *testing.T, srv *httptest.Server, args ...string) string {
	t.Helper()
	var out strings.Builder
	if err := run(context.Background(), append([]string{"-url", srv.URL, "-c", "3"}, args...), &out); err != nil {
		t.Fatalf("seed %v: %v", args, err)
	}
	return out.String()
}

// -n is what the catalog should hold: a seed that stopped halfway is completed by the
// next run with the products it had not created yet (the same products as one whole run),
// a full catalog is left alone, deleted products are not counted, and -force adds n more.
func TestSeedTopsUpToN(t *testing.T) {
	srv, _ := catalogServer(t)

	runSeed(t, srv, "-n", "9") // a first seed that stopped after 9 products
	out := runSeed(t, srv, "-n", "25")
	if diff := cmp.Diff(liveNames(t, srv), seedNames(1, 25)); diff != "" {
		t.Fatalf("after topping 9 up to 25, products (-got +want):\n%s", diff)
	}
	if !strings.Contains(out, "holds 9 products") {
		t.Errorf("the top-up says %q; want it to say what the catalog held", out)
	}

	if out := runSeed(t, srv, "-n", "25"); !strings.Contains(out, "nothing to do") {
		t.Errorf("seeding a full catalog says %q; want nothing to do", out)
	}
	if got := len(liveNames(t, srv)); got != 25 {
		t.Errorf("after seeding a full catalog: %d products, want 25", got)
	}

	// A deleted product leaves a tombstone, which is not a product.
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	c := &client{base: srv.URL, http: http.DefaultClient}
	if err := c.do(context.Background(), http.MethodGet, "/export/products?limit=1", nil, &page); err != nil || len(page.Items) != 1 {
		t.Fatalf("export: %v %v", err, page.Items)
	}
	if err := c.do(context.Background(), http.MethodDelete, "/products/"+page.Items[0].ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	runSeed(t, srv, "-n", "25")
	if got := len(liveNames(t, srv)); got != 25 {
		t.Errorf("after a delete and a seed: %d products, want 25", got)
	}

	runSeed(t, srv, "-n", "5", "-force", "-seed", "2")
	if got := len(liveNames(t, srv)); got != 30 {
		t.Errorf("after -force -n 5: %d products, want 30", got)
	}
}
