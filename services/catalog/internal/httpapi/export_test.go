package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/rebuild"
)

// GET /export/products pages through every product in id order with its version; a deleted
// product is a tombstone at the delete's version, so a rebuild does not bring it back.
func TestExportListsEveryProductWithItsVersionAndTombstones(t *testing.T) {
	srv := server(t)
	var ids []string
	for range 3 {
		st, p := call(t, srv, "POST", "/products", good)
		if st != http.StatusCreated {
			t.Fatalf("create = %d %v", st, p)
		}
		ids = append(ids, p["id"].(string))
	}
	if st, p := call(t, srv, "PATCH", "/products/"+ids[1], `{"name":"Kettle two"}`); st != http.StatusOK {
		t.Fatalf("update = %d %v", st, p)
	}
	if st, p := call(t, srv, "DELETE", "/products/"+ids[2], ""); st != http.StatusNoContent {
		t.Fatalf("delete = %d %v", st, p)
	}

	type rec struct {
		ID      string
		Name    string
		Version int64
		Deleted bool
	}
	var got []rec
	pages, cursor := 0, ""
	for {
		path := "/export/products?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var page rebuild.Page[rebuild.ProductRecord]
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d, %v", path, resp.StatusCode, err)
		}
		pages++
		for _, p := range page.Items {
			if p.Deleted != (p.DeletedAt != nil) || p.Price.Currency != "EUR" || p.Attributes == nil {
				t.Errorf("record %+v: deletedAt, price or attributes missing", p)
			}
			got = append(got, rec{p.ID, p.Name, p.Version, p.Deleted})
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	want := []rec{{ids[0], "Kettle", 1, false}, {ids[1], "Kettle two", 2, false}, {ids[2], "Kettle", 2, true}}
	if diff := cmp.Diff(got, want); diff != "" || pages != 2 {
		t.Errorf("export in %d pages (-got +want):\n%s", pages, diff)
	}

	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/export/products", http.StatusOK},
		{"GET", "/export/products?limit=abc", http.StatusBadRequest},
		{"GET", "/export/products?cursor=nonsense", http.StatusBadRequest},
		{"GET", "/export/products?cursor=" + rebuild.EncodeCursor("not-a-uuid"), http.StatusBadRequest},
		{"GET", "/export/products?sort=id", http.StatusBadRequest},
		{"GET", "/export/products?limit=0", http.StatusUnprocessableEntity},
		{"GET", "/export/products?limit=1001", http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		if st, p := call(t, srv, tc.method, tc.path, ""); st != tc.want {
			t.Errorf("%s %s = %d %v, want %d", tc.method, tc.path, st, p, tc.want)
		}
	}
}
