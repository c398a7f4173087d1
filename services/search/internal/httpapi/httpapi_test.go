package httpapi_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/search/internal/httpapi"
	"polyshop/services/search/internal/search"
	"polyshop/shared/httpx"
)

func TestParseQueryRejectsMalformedParameters(t *testing.T) {
	good := httpapi.EncodeCursor(search.Cursor{Score: 1.5, ID: "0192f1a4-7d3c-7cde-9a1b-2f4c6d8e0a12"})
	tests := []struct {
		query  string
		fields []string
	}{
		{"minPrice=abc", []string{"minPrice"}},
		{"maxPrice=-1", []string{"maxPrice"}},
		{"minPrice=500&maxPrice=100", []string{"minPrice"}},
		{"limit=0", []string{"limit"}},
		{"limit=101", []string{"limit"}},
		{"limit=x", []string{"limit"}},
		{"cursor=abc", []string{"cursor"}},
		{"cursor=eyJzIjoxLCJpZCI6Im5vIn0", []string{"cursor"}}, // {"s":1,"id":"no"}
		{"inStock=maybe", []string{"inStock"}},
		{"q=a&q=b", []string{"q"}},
		{"sort=price", []string{"sort"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			_, err := httpapi.ParseQuery(httptest.NewRequest("GET", "/search?"+tc.query, nil))
			var he *httpx.Error
			if !errors.As(err, &he) || he.Status != 400 {
				t.Fatalf("err = %v, want a 400", err)
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
