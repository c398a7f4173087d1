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

type ledgerRecord struct {
	ProductID string `json:"productId"`
	Initial   int64  `json:"initial"`
	Restocked int64  `json:"restocked"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
	Released  int64  `json:"released"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
	Retired   bool   `json:"retired"`
}

// GET /ledgers pages through every product's ledger in product id order, a retired one
// included, with every term of the equation and the version; the auditor checks
// initial + restocked = available + reserved + sold on each. Malformed parameters are 400,
// an out-of-range limit 422, and the down fault 503.
func TestLedgersListEveryProductsLedger(t *testing.T) {
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
	if err := e.svc.Reserve(ctx, events.ReserveStock{OrderID: uuid.Must(uuid.NewV7()).String(), UserID: uuid.NewString(),
		Attempt: 1, Items: []events.StockItem{{ProductID: ids[1], Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	del, err := events.New(ctx, events.TypeProductDeleted, ids[2], 2, events.ProductDeleted{ProductID: ids[2]})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyCatalog(ctx, del); err != nil {
		t.Fatal(err)
	}

	var got []ledgerRecord
	pages, cursor := 0, ""
	for {
		path := "/ledgers?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "")
		var page rebuild.Page[ledgerRecord]
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		pages++
		got = append(got, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	// Versions and the retired row's available come from the service; the test pins the
	// equation's terms and the order.
	for i := range got {
		if got[i].Version < 1 {
			t.Errorf("%s: version %d, want >= 1", got[i].ProductID, got[i].Version)
		}
		got[i].Version = 0
	}
	want := []ledgerRecord{
		{ProductID: ids[0], Initial: 5, Restocked: 4, Available: 9},
		{ProductID: ids[1], Initial: 5, Reserved: 2, Available: 3},
		{ProductID: ids[2], Initial: 5, Available: 5, Retired: true},
	}
	if diff := cmp.Diff(got, want); diff != "" || pages != 2 {
		t.Errorf("ledgers in %d pages (-got +want):\n%s", pages, diff)
	}
	for _, l := range got {
		if l.Initial+l.Restocked != l.Available+l.Reserved+l.Sold {
			t.Errorf("%s: ledger does not balance: %+v", l.ProductID, l)
		}
	}

	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/ledgers?limit=abc", http.StatusBadRequest},
		{"GET", "/ledgers?cursor=nonsense", http.StatusBadRequest},
		{"GET", "/ledgers?productId=a", http.StatusBadRequest},
		{"GET", "/ledgers?limit=0", http.StatusUnprocessableEntity},
		{"GET", "/ledgers?limit=1001", http.StatusUnprocessableEntity},
		{"POST", "/ledgers", http.StatusMethodNotAllowed},
		// The repair of lab 03: nothing held twice here, so nothing to give back.
		{"POST", "/stock/" + ids[1] + "/reconcile", http.StatusOK},
		{"POST", "/stock/" + uuid.NewString() + "/reconcile", http.StatusNotFound},
		{"GET", "/stock/" + ids[1] + "/reconcile", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		if r := e.do(t, tc.method, tc.path, ""); r.status != tc.want {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.want)
		}
	}
	if r := e.do(t, "PUT", "/faults", `{"down":true}`); r.status != http.StatusOK {
		t.Fatalf("PUT /faults = %d", r.status)
	}
	if r := e.do(t, "GET", "/ledgers", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /ledgers while down = %d, want 503", r.status)
	}
	if r := e.do(t, "POST", "/stock/"+ids[1]+"/reconcile", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("POST reconcile while down = %d, want 503", r.status)
	}
}
