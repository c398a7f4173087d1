package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/shared/events"
	"polyshop/shared/rebuild"
)

// GET /export/stock pages through every stock row in product id order with its version; a
// retired product is exported with available 0 and retired true, as its last stock_changed
// said. Malformed parameters are 400, out-of-range ones 422, and the down fault 503.
func TestExportListsEveryStockRowWithItsVersion(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	sort.Strings(ids)
	for _, id := range ids {
		e.product(t, id, 5)
	}
	if _, err := e.svc.Restock(ctx, ids[0], 9, 1); err != nil {
		t.Fatal(err)
	}
	del, err := events.New(ctx, events.TypeProductDeleted, ids[2], 2, events.ProductDeleted{ProductID: ids[2]})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyCatalog(ctx, del); err != nil {
		t.Fatal(err)
	}

	var got []rebuild.StockRecord
	pages, cursor := 0, ""
	for {
		path := "/export/stock?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "")
		var page rebuild.Page[rebuild.StockRecord]
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		pages++
		got = append(got, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	want := []rebuild.StockRecord{
		{ProductID: ids[0], Available: 9, Version: 2},
		{ProductID: ids[1], Available: 5, Version: 1},
		{ProductID: ids[2], Available: 0, Version: 2, Retired: true},
	}
	if diff := cmp.Diff(got, want); diff != "" || pages != 2 {
		t.Errorf("export in %d pages (-got +want):\n%s", pages, diff)
	}

	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/export/stock?limit=abc", http.StatusBadRequest},
		{"GET", "/export/stock?cursor=nonsense", http.StatusBadRequest},
		{"GET", "/export/stock?ids=a", http.StatusBadRequest},
		{"GET", "/export/stock?limit=0", http.StatusUnprocessableEntity},
		{"GET", "/export/stock?limit=1001", http.StatusUnprocessableEntity},
		{"POST", "/export/stock", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		if r := e.do(t, tc.method, tc.path, ""); r.status != tc.want {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.want)
		}
	}
	if r := e.do(t, "PUT", "/faults", `{"down":true}`); r.status != http.StatusOK {
		t.Fatalf("PUT /faults = %d", r.status)
	}
	if r := e.do(t, "GET", "/export/stock", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /export/stock while down = %d, want 503", r.status)
	}
}
