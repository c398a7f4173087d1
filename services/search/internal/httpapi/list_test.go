package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex/estest"
	"polyshop/services/search/internal/httpapi"
	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
)

// listing is a test's own index with products handled from events, served over HTTP.
type listing struct {
	t   *testing.T
	svc *search.Service
	x   interface {
		Refresh(context.Context, string) error
	}
	srv *httptest.Server
}

func newListing(t *testing.T, opts ...search.Options) *listing {
	t.Helper()
	x := estest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var o search.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	svc := search.NewService(x, nil, search.Exports{}, nil, o, log)
	srv := httptest.NewServer(httpapi.New(svc, log, nil, nil).Handler())
	t.Cleanup(srv.Close)
	return &listing{t: t, svc: svc, x: x, srv: srv}
}

func (l *listing) handle(typ, id string, seq int64, data any) {
	l.t.Helper()
	e, err := events.New(context.Background(), typ, id, seq, data)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.svc.Handle(context.Background(), e); err != nil {
		l.t.Fatalf("handle %s %s: %v", typ, id, err)
	}
}

// create indexes a product_created and returns the product's id (a UUIDv7, so ids made
// later sort later, as the catalog's do).
func (l *listing) create(name, category string, stock int64) string {
	l.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	l.handle(events.TypeProductCreated, id, 1, events.ProductCreated{ProductID: id, Name: name, Description: "About " + name,
		Category: category, Price: events.Money{Amount: 1250, Currency: "EUR"}, Attributes: map[string]any{"colour": "red"},
		InitialStock: stock, CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)})
	return id
}

func (l *listing) refresh() {
	l.t.Helper()
	if err := l.x.Refresh(context.Background(), ""); err != nil {
		l.t.Fatal(err)
	}
}

// get fetches GET /products?query and decodes the body into out; it returns the status.
func (l *listing) get(query string, out any) int {
	l.t.Helper()
	resp, err := http.Get(l.srv.URL + "/products?" + query)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		l.t.Fatalf("decode %s: %v", query, err)
	}
	return resp.StatusCode
}

// pages walks the listing from the start with limit and returns the ids of every page.
func (l *listing) pages(category string, limit string) [][]string {
	l.t.Helper()
	var out [][]string
	cursor := ""
	for range 100 {
		q := url.Values{"limit": {limit}}
		if category != "" {
			q.Set("category", category)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page httpapi.ListResponse
		if st := l.get(q.Encode(), &page); st != http.StatusOK {
			l.t.Fatalf("GET /products?%s: %d", q.Encode(), st)
		}
		var ids []string
		for _, p := range page.Items {
			ids = append(ids, p.ID)
		}
		out = append(out, ids)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
	l.t.Fatal("the listing never ended")
	return nil
}

func TestListPagesByCategoryInIDOrder(t *testing.T) {
	l := newListing(t)
	var kettles, books []string
	for i := range 5 {
		kettles = append(kettles, l.create("Kettle "+string(rune('A'+i)), "kettle", int64(i)))
		books = append(books, l.create("Book "+string(rune('A'+i)), "book", 3))
	}
	gone := l.create("Deleted kettle", "kettle", 1)
	l.handle(events.TypeProductDeleted, gone, 2, events.ProductDeleted{ProductID: gone, DeletedAt: time.Now().UTC()})
	// Stock known before the catalog part: not a visible product, never listed.
	stockOnly := uuid.NewString()
	l.handle(events.TypeStockChanged, stockOnly, 1, events.StockChanged{ProductID: stockOnly, Available: 4, Version: 1})
	l.refresh()
	all := slices.Concat(kettles, books)
	slices.Sort(all)
	tests := []struct {
		name, category, limit string
		want                  [][]string
	}{
		{"kettles by two", "kettle", "2", [][]string{kettles[0:2], kettles[2:4], kettles[4:5]}},
		{"kettles in one page exactly", "kettle", "5", [][]string{kettles}},
		{"books", "book", "100", [][]string{books}},
		{"every category", "", "4", [][]string{all[0:4], all[4:8], all[8:10]}},
		{"a category with no products", "sofa", "20", [][]string{nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := gocmp.Diff(l.pages(tc.category, tc.limit), tc.want); diff != "" {
				t.Errorf("pages (-got +want):\n%s", diff)
			}
		})
	}
}

// The item shape is the catalog's product; an update keeps createdAt and initialStock,
// which only product_created carries.
func TestListItemHasTheCatalogProductShape(t *testing.T) {
	l := newListing(t)
	id := l.create("Blue kettle", "kettle", 7)
	updated := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	l.handle(events.TypeProductUpdated, id, 2, events.ProductUpdated{ProductID: id, Name: "Blue kettle II", Description: "New",
		Category: "kettle", Price: events.Money{Amount: 1500, Currency: "EUR"}, Attributes: map[string]any{"colour": "blue"}, UpdatedAt: updated})
	l.refresh()
	var page map[string]any
	if st := l.get("category=kettle", &page); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	want := map[string]any{"items": []any{map[string]any{
		"id": id, "name": "Blue kettle II", "description": "New", "category": "kettle",
		"price": map[string]any{"amount": 1500.0, "currency": "EUR"}, "attributes": map[string]any{"colour": "blue"},
		"initialStock": 7.0, "version": 2.0, "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T11:00:00Z",
	}}}
	if diff := gocmp.Diff(page, want); diff != "" {
		t.Errorf("page (-got +want):\n%s", diff)
	}
}

// With the page cache on (an hour, so only a clear can renew it), a catalog change applied
// by the service shows in the next listing once the index is refreshed; a stock change
// leaves the cached page (the listing carries no stock).
func TestListCacheIsClearedByCatalogChanges(t *testing.T) {
	l := newListing(t, search.Options{ListCacheTTL: time.Hour})
	id := l.create("Kettle before", "kettle", 1)
	l.refresh()
	names := func() []string {
		var page httpapi.ListResponse
		if st := l.get("category=kettle", &page); st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		var out []string
		for _, p := range page.Items {
			out = append(out, p.Name)
		}
		return out
	}
	if diff := gocmp.Diff(names(), []string{"Kettle before"}); diff != "" {
		t.Fatalf("first listing (-got +want):\n%s", diff)
	}
	l.handle(events.TypeProductUpdated, id, 2, events.ProductUpdated{ProductID: id, Name: "Kettle after", Category: "kettle",
		Price: events.Money{Amount: 1, Currency: "EUR"}, UpdatedAt: time.Now().UTC()})
	l.create("Kettle two", "kettle", 1)
	l.refresh()
	if diff := gocmp.Diff(names(), []string{"Kettle after", "Kettle two"}); diff != "" {
		t.Errorf("after the changes (-got +want):\n%s", diff)
	}
}

// A cursor is a position in id order, not an offset: products added before it, or the
// product it names being deleted, do not make the next page repeat or skip anything.
func TestListCursorIsStableWhileProductsChange(t *testing.T) {
	l := newListing(t)
	var ids []string
	for i := range 6 {
		ids = append(ids, l.create("Kettle "+string(rune('A'+i)), "kettle", 1))
	}
	l.refresh()
	var first httpapi.ListResponse
	if st := l.get("category=kettle&limit=3", &first); st != http.StatusOK || first.NextCursor == "" {
		t.Fatalf("first page: %d, cursor %q", st, first.NextCursor)
	}
	// Meanwhile: an earlier product is deleted, the page's last one too, a new one appears.
	l.handle(events.TypeProductDeleted, ids[0], 2, events.ProductDeleted{ProductID: ids[0], DeletedAt: time.Now().UTC()})
	l.handle(events.TypeProductDeleted, ids[2], 2, events.ProductDeleted{ProductID: ids[2], DeletedAt: time.Now().UTC()})
	late := l.create("Kettle late", "kettle", 1)
	l.refresh()
	var second httpapi.ListResponse
	if st := l.get("category=kettle&limit=3&cursor="+url.QueryEscape(first.NextCursor), &second); st != http.StatusOK {
		t.Fatalf("second page: %d", st)
	}
	var got []string
	for _, p := range second.Items {
		got = append(got, p.ID)
	}
	if diff := gocmp.Diff(got, []string{ids[3], ids[4], ids[5]}); diff != "" {
		t.Errorf("second page (-got +want):\n%s", diff)
	}
	var third httpapi.ListResponse
	if st := l.get("category=kettle&limit=3&cursor="+url.QueryEscape(second.NextCursor), &third); st != http.StatusOK {
		t.Fatalf("third page: %d", st)
	}
	if len(third.Items) != 1 || third.Items[0].ID != late || third.NextCursor != "" {
		t.Errorf("third page = %+v, want only %s and no cursor", third, late)
	}
}

func TestListRejectsBadParameters(t *testing.T) {
	l := newListing(t)
	catalogCursor := httpapi.EncodeListCursor("0192f1a4-7d3c-7cde-9a1b-2f4c6d8e0a12")
	tests := []struct {
		query  string
		status int
		field  string
	}{
		{"cursor=abc", 400, "cursor"},
		{"cursor=" + httpapi.EncodeCursor(search.Cursor{Score: 1, ID: "0192f1a4-7d3c-7cde-9a1b-2f4c6d8e0a12"}), 400, "cursor"}, // a search cursor
		{"cursor=cDE6bm90LWFuLWlk", 400, "cursor"}, // p1:not-an-id
		{"limit=x", 400, "limit"},
		{"limit=0", 422, "limit"},
		{"limit=101", 422, "limit"},
		{"category=" + strings.Repeat("c", 65), 422, "category"},
		{"limit=x&limit=0", 400, "limit"},
		{"cursor=" + catalogCursor + "&limit=100", 200, ""}, // the catalog's cursors are this listing's
	}
	for _, tc := range tests {
		t.Run(tc.query[:min(len(tc.query), 40)], func(t *testing.T) {
			var body struct {
				Status int `json:"status"`
				Errors []struct {
					Field string `json:"field"`
				} `json:"errors"`
			}
			st := l.get(tc.query, &body)
			if st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if tc.field == "" {
				return
			}
			if len(body.Errors) != 1 || body.Errors[0].Field != tc.field {
				t.Errorf("errors = %+v, want one naming %s", body.Errors, tc.field)
			}
		})
	}
}
