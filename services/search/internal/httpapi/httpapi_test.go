package httpapi_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/search/internal/httpapi"
	"polyshop/services/search/internal/search"
	"polyshop/shared/httpx"
)

func TestParseQueryRejectsMalformedOrInvalidParameters(t *testing.T) {
	good := httpapi.EncodeCursor(search.Cursor{Score: 1.5, ID: "0192f1a4-7d3c-7cde-9a1b-2f4c6d8e0a12"})
	long := strings.Repeat("a", search.MaxQueryLen+1)
	tests := []struct {
		query  string
		status int
		fields []string
	}{
		{"minPrice=abc", 400, []string{"minPrice"}},
		{"maxPrice=1.5", 400, []string{"maxPrice"}},
		{"maxPrice=-1", 422, []string{"maxPrice"}},
		{"minPrice=500&maxPrice=100", 422, []string{"minPrice"}},
		{"limit=0", 422, []string{"limit"}},
		{"limit=101", 422, []string{"limit"}},
		{"limit=x", 400, []string{"limit"}},
		{"cursor=abc", 400, []string{"cursor"}},
		{"cursor=eyJzIjoxLCJpZCI6Im5vIn0", 400, []string{"cursor"}}, // {"s":1,"id":"no"}
		{"inStock=maybe", 400, []string{"inStock"}},
		{"q=a&q=b", 400, []string{"q"}},
		{"q=%FF", 400, []string{"q"}},
		{"q=" + long, 422, []string{"q"}},
		{"category=" + strings.Repeat("c", 65), 422, []string{"category"}},
		{"sort=price", 400, []string{"sort"}},
		// Malformed wins: a 400 names only what does not parse.
		{"limit=x&maxPrice=-1", 400, []string{"limit"}},
	}
	for _, tc := range tests {
		t.Run(tc.query[:min(len(tc.query), 40)], func(t *testing.T) {
			_, err := httpapi.ParseQuery(httptest.NewRequest("GET", "/search?"+tc.query, nil))
			var he *httpx.Error
			if !errors.As(err, &he) || he.Status != tc.status {
				t.Fatalf("err = %v, want a %d", err, tc.status)
			}
			var got []string
			for _, f := range he.Fields {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(got, tc.fields); diff != "" {
				t.Errorf("fields (-got +want):\n%s", diff)
			}
		})
	}
	q, err := httpapi.ParseQuery(httptest.NewRequest("GET", "/search?q=red+kettle&category=kettle&minPrice=100&maxPrice=100&inStock=false&limit=5&cursor="+good, nil))
	if err != nil {
		t.Fatal(err)
	}
	minP, no := int64(100), false
	want := search.Query{Text: "red kettle", Category: "kettle", MinPrice: &minP, MaxPrice: &minP, InStock: &no, Limit: 5,
		After: &search.Cursor{Score: 1.5, ID: "0192f1a4-7d3c-7cde-9a1b-2f4c6d8e0a12"}}
	if diff := cmp.Diff(q, want); diff != "" {
		t.Errorf("parsed query (-got +want):\n%s", diff)
	}
}
