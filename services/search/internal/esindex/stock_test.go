package esindex_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex"
	"polyshop/services/search/internal/esindex/estest"
	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
)

func stockEvent(t *testing.T, id string, seq, available int64) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), events.TypeStockChanged, id, seq,
		events.StockChanged{ProductID: id, Available: available, Version: seq})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func handleAll(t *testing.T, svc *search.Service, evs ...events.Envelope) {
	t.Helper()
	for _, e := range evs {
		if err := svc.Handle(context.Background(), e); err != nil {
			t.Fatalf("handle %s %s v%d: %v", e.Type, e.Subject, e.Sequence, err)
		}
	}
}

// stockOf is the stock part of a stored document, for comparisons.
type stockOf struct {
	Visible      bool
	Deleted      bool
	Version      int64
	StockVersion int64
	Available    *int64
	InStock      bool
}

func getStock(t *testing.T, x *esindex.Index, id string) stockOf {
	t.Helper()
	d, found, err := x.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("no document %s", id)
	}
	return stockOf{Visible: d.Visible(), Deleted: d.Deleted, Version: d.Version, StockVersion: d.StockVersion, Available: d.Available, InStock: d.InStock}
}

func i64(v int64) *int64 { return &v }

func searchIDs(t *testing.T, x *esindex.Index, q search.Query) ([]string, search.Result) {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	res, err := x.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, h := range res.Hits {
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	return ids, res
}

func sorted(ids ...string) []string {
	out := append([]string{}, ids...)
	slices.Sort(out)
	return out
}

func TestStockBeforeProductIsKeptHiddenUntilTheCatalogPartArrives(t *testing.T) {
	x := newIndex(t)
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())
	ctx := context.Background()
	a := uuid.NewString()
	handleAll(t, svc, stockEvent(t, a, 2, 5), stockEvent(t, a, 1, 0), stockEvent(t, a, 2, 5))
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(getStock(t, x, a), stockOf{StockVersion: 2, Available: i64(5), InStock: true}); diff != "" {
		t.Errorf("stock-only document (-got +want):\n%s", diff)
	}
	ids, res := searchIDs(t, x, search.Query{})
	if len(ids) != 0 || res.Total != 0 || len(res.Facets.Category) != 0 || res.Facets.Price[0].Count+res.Facets.Price[1].Count != 0 {
		t.Errorf("a stock-only document shows: ids %v, total %d, facets %+v", ids, res.Total, res.Facets)
	}
	if v, err := x.Versions(ctx, ""); err != nil || len(v) != 0 {
		t.Errorf("Versions = %v, %v; want none", v, err)
	}

	handleAll(t, svc, productEvent(t, events.TypeProductCreated, a, 1, "Early kettle", 900, "kettle"))
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	yes := true
	_, res = searchIDs(t, x, search.Query{Text: "kettle", InStock: &yes})
	if len(res.Hits) != 1 {
		t.Fatalf("hits = %+v, want the kettle", res.Hits)
	}
	h := res.Hits[0]
	if h.ID != a || h.Name != "Early kettle" || h.Version != 1 || !h.InStock || h.Available == nil || *h.Available != 5 {
		t.Errorf("hit = %+v, want Early kettle v1, in stock, 5 available", h)
	}
}

func TestStockAfterDeleteDoesNotBringTheProductBack(t *testing.T) {
	x := newIndex(t)
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())
	ctx := context.Background()
	a, b := uuid.NewString(), uuid.NewString()
	handleAll(t, svc,
		productEvent(t, events.TypeProductCreated, a, 1, "Doomed kettle", 100, "kettle"),
		stockEvent(t, a, 1, 3),
		productEvent(t, events.TypeProductDeleted, a, 2, "", 0, ""),
		stockEvent(t, a, 2, 0),  // inventory retires the stock after the delete
		stockEvent(t, a, 1, 3),  // redelivered
		stockEvent(t, a, 3, 12), // a late restock
		productEvent(t, events.TypeProductCreated, a, 1, "Doomed kettle", 100, "kettle"), // redelivered
		// b: the delete is the first thing search hears of it; stock comes after.
		productEvent(t, events.TypeProductDeleted, b, 3, "", 0, ""),
		stockEvent(t, b, 1, 4),
		productEvent(t, events.TypeProductUpdated, b, 2, "Ghost kettle", 100, "kettle"),
	)
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(getStock(t, x, a), stockOf{Deleted: true, Version: 2, StockVersion: 3, Available: i64(12), InStock: true}); diff != "" {
		t.Errorf("tombstone of a (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(getStock(t, x, b), stockOf{Deleted: true, Version: 3, StockVersion: 1, Available: i64(4), InStock: true}); diff != "" {
		t.Errorf("tombstone of b (-got +want):\n%s", diff)
	}
	yes := true
	for _, q := range []search.Query{{}, {Text: "kettle"}, {InStock: &yes}} {
		if ids, res := searchIDs(t, x, q); len(ids) != 0 || len(res.Facets.Category) != 0 {
			t.Errorf("query %+v: deleted products show: %v, facets %+v", q, ids, res.Facets.Category)
		}
	}
	if v, err := x.Versions(ctx, ""); err != nil || len(v) != 0 {
		t.Errorf("Versions = %v, %v; want none", v, err)
	}
}

// Both sources' events for a set of products, shuffled, partly duplicated and handled by
// several goroutines at once (so writes to one document race and some are redone), end in
// the state of the newest event of each source.
func TestBothSourcesInterleavedOutOfOrderConverge(t *testing.T) {
	x := newIndex(t)
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())
	ctx := context.Background()
	type want struct {
		stock   stockOf
		name    string
		visible bool
	}
	wants := map[string]want{}
	var evs []events.Envelope
	for i := range 12 {
		id := uuid.NewString()
		evs = append(evs,
			productEvent(t, events.TypeProductCreated, id, 1, fmt.Sprintf("Kettle %d v1", i), 1000, "kettle"),
			productEvent(t, events.TypeProductUpdated, id, 2, fmt.Sprintf("Kettle %d v2", i), 1100, "kettle"),
			productEvent(t, events.TypeProductUpdated, id, 3, fmt.Sprintf("Kettle %d v3", i), 1200, "kettle"),
		)
		last := int64(i % 3) // 0, 1 or 2 available at the end
		for v, n := range []int64{10, 4, 0, last} {
			evs = append(evs, stockEvent(t, id, int64(v+1), n))
		}
		w := want{name: fmt.Sprintf("Kettle %d v3", i), visible: true,
			stock: stockOf{Visible: true, Version: 3, StockVersion: 4, Available: i64(last), InStock: last > 0}}
		if i%4 == 0 {
			evs = append(evs, productEvent(t, events.TypeProductDeleted, id, 4, "", 0, ""))
			w = want{stock: stockOf{Deleted: true, Version: 4, StockVersion: 4, Available: i64(last), InStock: last > 0}}
		}
		wants[id] = w
	}
	evs = append(evs, evs[:len(evs)/3]...) // duplicates
	rnd := rand.New(rand.NewPCG(uint64(len(evs)), 9))
	rnd.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })

	work := make(chan events.Envelope)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for e := range work {
				if err := svc.Handle(ctx, e); err != nil {
					t.Errorf("handle %s v%d: %v", e.Type, e.Sequence, err)
				}
			}
		})
	}
	for _, e := range evs {
		work <- e
	}
	close(work)
	wg.Wait()
	t.Logf("%d events, %d writes redone after a conflict", len(evs), x.Conflicts())

	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	wantVersions := map[string]int64{}
	for id, w := range wants {
		if diff := cmp.Diff(getStock(t, x, id), w.stock); diff != "" {
			t.Errorf("%s (-got +want):\n%s", id, diff)
		}
		if w.visible {
			wantVersions[id] = 3
			d, _, _ := x.Get(ctx, id)
			if d.Name != w.name || d.Price.Amount != 1200 {
				t.Errorf("%s: name %q price %d, want %q 1200", id, d.Name, d.Price.Amount, w.name)
			}
		}
	}
	got, err := x.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, wantVersions); diff != "" {
		t.Errorf("visible versions (-got +want):\n%s", diff)
	}
}

// A write that loses a race is read and folded again: neither change is lost.
func TestAWriteThatLosesARaceIsRedone(t *testing.T) {
	x := newIndex(t)
	cfg := estest.Config(t)
	cfg.Alias = x.Alias()
	other, err := esindex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := uuid.NewString()
	for _, first := range []events.Envelope{
		productEvent(t, events.TypeProductCreated, a, 1, "Raced kettle", 100, "kettle"), // the document does not exist: create
		productEvent(t, events.TypeProductUpdated, a, 2, "Raced kettle", 200, "kettle"), // it exists: if_seq_no
	} {
		op, err := search.OpFor(first)
		if err != nil {
			t.Fatal(err)
		}
		stockSeq := first.Sequence
		raced := false
		esindex.SetBeforeWrite(x, func() {
			if raced {
				return
			}
			raced = true
			sop, err := search.OpFor(stockEvent(t, a, stockSeq, 7*stockSeq))
			if err != nil {
				t.Fatal(err)
			}
			if err := other.Apply(ctx, "", []search.Op{sop}); err != nil {
				t.Fatal(err)
			}
		})
		before := x.Conflicts()
		if err := x.Apply(ctx, "", []search.Op{op}); err != nil {
			t.Fatal(err)
		}
		if n := x.Conflicts() - before; n != 1 {
			t.Errorf("v%d: %d conflicts, want 1", first.Sequence, n)
		}
		if diff := cmp.Diff(getStock(t, x, a), stockOf{Visible: true, Version: first.Sequence, StockVersion: stockSeq, Available: i64(7 * stockSeq), InStock: true}); diff != "" {
			t.Errorf("after v%d (-got +want):\n%s", first.Sequence, diff)
		}
	}
}

func TestInStockFilter(t *testing.T) {
	x := newIndex(t)
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())
	ctx := context.Background()
	inStock, soldOut, unknown, stockOnly, deleted := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	handleAll(t, svc,
		productEvent(t, events.TypeProductCreated, inStock, 1, "Stocked kettle", 1500, "kettle"),
		stockEvent(t, inStock, 1, 0),
		stockEvent(t, inStock, 2, 5),
		productEvent(t, events.TypeProductCreated, soldOut, 1, "Sold out kettle", 1500, "kettle"),
		stockEvent(t, soldOut, 2, 0),
		stockEvent(t, soldOut, 1, 5), // late
		productEvent(t, events.TypeProductCreated, unknown, 1, "Unknown kettle", 1500, "kettle"),
		stockEvent(t, stockOnly, 1, 9),
		productEvent(t, events.TypeProductCreated, deleted, 1, "Deleted kettle", 1500, "kettle"),
		stockEvent(t, deleted, 1, 9),
		productEvent(t, events.TypeProductDeleted, deleted, 2, "", 0, ""),
	)
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	tests := []struct {
		name    string
		inStock *bool
		want    []string
	}{
		{"no filter", nil, sorted(inStock, soldOut, unknown)},
		{"in stock", &yes, []string{inStock}},
		{"not in stock, including not reported yet", &no, sorted(soldOut, unknown)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, res := searchIDs(t, x, search.Query{Text: "kettle", InStock: tc.inStock})
			if diff := cmp.Diff(ids, tc.want); diff != "" {
				t.Errorf("ids (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(res.Facets.Category, []search.ValueCount{{Value: "kettle", Count: int64(len(tc.want))}}); res.Total != int64(len(tc.want)) || diff != "" {
				t.Errorf("total %d, category facet (-got +want):\n%s", res.Total, diff)
			}
		})
	}
}

// The live index of the previous version (catalog fields only, strict mapping, documents
// written with external versions) gets the new fields from Ensure: no rebuild is needed for
// stock events to apply, and its documents stay visible.
func TestEnsureUpgradesAnIndexOfThePreviousVersion(t *testing.T) {
	cfg := estest.Config(t)
	x, err := esindex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { _ = x.DeleteAll(context.Background()) })
	old := `{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.gc_deletes":"1h"},
	  "mappings":{"dynamic":"strict","properties":{"id":{"type":"keyword"},"name":{"type":"text","analyzer":"standard"},
	  "description":{"type":"text","analyzer":"standard"},"category":{"type":"keyword"},
	  "price":{"properties":{"amount":{"type":"long"},"currency":{"type":"keyword"}}},
	  "attributes":{"type":"flattened","depth_limit":5},"attrFacets":{"type":"keyword"},
	  "version":{"type":"long"},"updatedAt":{"type":"date"}}}}`
	name := cfg.Alias + "-old"
	a := uuid.NewString()
	for _, step := range []struct{ method, path, body string }{
		{"PUT", "/" + name, old},
		{"POST", "/_aliases", `{"actions":[{"add":{"index":"` + name + `","alias":"` + cfg.Alias + `","is_write_index":true}}]}`},
		{"PUT", "/" + name + "/_doc/" + a + "?version=3&version_type=external",
			`{"id":"` + a + `","name":"Old kettle","description":"","category":"kettle","price":{"amount":100,"currency":"EUR"},"attributes":{},"attrFacets":[],"version":3,"updatedAt":"2026-11-26T10:00:00Z"}`},
	} {
		if err := esindex.Do(ctx, x, step.method, step.path, []byte(step.body)); err != nil {
			t.Fatalf("%s %s: %v", step.method, step.path, err)
		}
	}
	if err := x.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())
	handleAll(t, svc, stockEvent(t, a, 1, 6), productEvent(t, events.TypeProductUpdated, a, 2, "Stale kettle", 100, "kettle"))
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	yes := true
	_, res := searchIDs(t, x, search.Query{InStock: &yes})
	if len(res.Hits) != 1 || res.Hits[0].Name != "Old kettle" || res.Hits[0].Version != 3 || *res.Hits[0].Available != 6 {
		t.Errorf("hits = %+v, want Old kettle v3 with 6 available", res.Hits)
	}
}
