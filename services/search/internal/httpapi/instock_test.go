package httpapi_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex/estest"
	"polyshop/services/search/internal/httpapi"
	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
)

// GET /search?inStock= end to end: events handled into a real index, queried over HTTP.
func TestInStockParameterFiltersEndToEnd(t *testing.T) {
	x := estest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, log)
	ctx := context.Background()
	stocked, soldOut, unknown := uuid.NewString(), uuid.NewString(), uuid.NewString()
	mk := func(typ, id string, seq int64, data any) events.Envelope {
		e, err := events.New(ctx, typ, id, seq, data)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	product := func(id, name string) events.Envelope {
		return mk(events.TypeProductCreated, id, 1, events.ProductCreated{ProductID: id, Name: name, Category: "kettle",
			Price: events.Money{Amount: 1000, Currency: "EUR"}, CreatedAt: time.Now().UTC()})
	}
	stock := func(id string, seq, n int64) events.Envelope {
		return mk(events.TypeStockChanged, id, seq, events.StockChanged{ProductID: id, Available: n, Version: seq})
	}
	for _, e := range []events.Envelope{
		stock(stocked, 1, 2), product(stocked, "Stocked kettle"),
		product(soldOut, "Sold out kettle"), stock(soldOut, 1, 0),
		product(unknown, "Unknown kettle"),
	} {
		if err := svc.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(svc, log, nil, nil).Handler())
	defer srv.Close()

	type hit struct {
		ID        string `json:"id"`
		InStock   bool   `json:"inStock"`
		Available *int64 `json:"available"`
	}
	two, zero := int64(2), int64(0)
	tests := []struct {
		query string
		want  []hit
	}{
		{"inStock=true", []hit{{stocked, true, &two}}},
		{"inStock=false", []hit{{soldOut, false, &zero}, {unknown, false, nil}}},
		{"q=kettle", []hit{{stocked, true, &two}, {soldOut, false, &zero}, {unknown, false, nil}}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/search?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Hits  []hit `json:"hits"`
				Total int   `json:"total"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			slices.SortFunc(body.Hits, func(a, b hit) int { return cmp.Compare(a.ID, b.ID) })
			slices.SortFunc(tc.want, func(a, b hit) int { return cmp.Compare(a.ID, b.ID) })
			if diff := gocmp.Diff(body.Hits, tc.want); diff != "" || body.Total != len(tc.want) {
				t.Errorf("total %d; hits (-got +want):\n%s", body.Total, diff)
			}
		})
	}
}

func TestUnmatchedRoutesAreProblems(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.New(search.NewService(nil, nil, search.Exports{}, nil, search.Options{}, log), log, nil, nil).Handler())
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nowhere", http.StatusNotFound, ""},
		{"POST", "/search", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/admin/rebuild", http.StatusMethodNotAllowed, "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := fmt.Sprintf("%d %s allow=%q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"))
			want := fmt.Sprintf("%d application/problem+json allow=%q", tc.status, tc.allow)
			if got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}
