package httpapi_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/rebuild"
)

// GET /export/addresses pages through every user in id order with its version: the address
// (null when none), a deleted user as a tombstone without address; no email or name leaves.
func TestExportListsEveryAddressWithItsVersion(t *testing.T) {
	e := setup(t)
	var ids []string
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		r := e.do(t, "POST", "/users", `{"email":"`+email+`","password":"correct horse 9","name":"N"}`)
		if r.status != http.StatusCreated {
			t.Fatalf("sign up = %d %s", r.status, r.body)
		}
		ids = append(ids, decode[struct{ ID string }](t, r.body).ID)
	}
	addr := `{"street":"1 Main St","city":"Lyon","postalCode":"69001","country":"FR"}`
	for _, id := range ids[1:] {
		if r := e.do(t, "PUT", "/users/"+id+"/address", addr); r.status != http.StatusOK {
			t.Fatalf("address = %d %s", r.status, r.body)
		}
	}
	if r := e.do(t, "DELETE", "/users/"+ids[2], ""); r.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}

	var got []rebuild.AddressRecord
	pages, cursor := 0, ""
	for {
		path := "/export/addresses?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "")
		if r.status != http.StatusOK || strings.Contains(string(r.body), "example.com") {
			t.Fatalf("GET %s = %d %s (no email may leave)", path, r.status, r.body)
		}
		var page rebuild.Page[rebuild.AddressRecord]
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	lyon := &events.Address{Street: "1 Main St", City: "Lyon", PostalCode: "69001", Country: "FR"}
	want := []rebuild.AddressRecord{
		{UserID: ids[0], Version: 1},
		{UserID: ids[1], Address: lyon, Version: 2},
		{UserID: ids[2], Version: 3, Deleted: true},
	}
	sort.Slice(want, func(i, j int) bool { return want[i].UserID < want[j].UserID })
	if diff := cmp.Diff(got, want); diff != "" || pages != 2 {
		t.Errorf("export in %d pages (-got +want):\n%s", pages, diff)
	}

	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/export/addresses?limit=abc", http.StatusBadRequest},
		{"GET", "/export/addresses?cursor=nonsense", http.StatusBadRequest},
		{"GET", "/export/addresses?cursor=" + rebuild.EncodeCursor("not-a-uuid"), http.StatusBadRequest},
		{"GET", "/export/addresses?email=x", http.StatusBadRequest},
		{"GET", "/export/addresses?limit=0", http.StatusUnprocessableEntity},
		{"GET", "/export/addresses?limit=1001", http.StatusUnprocessableEntity},
		{"DELETE", "/export/addresses", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		if r := e.do(t, tc.method, tc.path, ""); r.status != tc.want {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.want)
		}
	}
}
