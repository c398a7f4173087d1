package esindex_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex"
	"polyshop/services/search/internal/esindex/estest"
	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
	"polyshop/shared/rebuild"
	"polyshop/shared/rebuild/rebuildtest"
	"polyshop/shared/testenv"
)

// newIndex returns an index behind an alias of its own (estest.New) and checks that a
// second Ensure is harmless.
func newIndex(t *testing.T) *esindex.Index {
	t.Helper()
	x := estest.New(t)
	if err := x.Ensure(context.Background()); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	return x
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func productEvent(t *testing.T, typ, id string, seq int64, name string, price int64, cat string) events.Envelope {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	var data any
	attrs := map[string]any{"material": "steel", "capacityMl": 1500.0}
	switch typ {
	case events.TypeProductCreated:
		data = events.ProductCreated{ProductID: id, Name: name, Description: "A fine " + name, Category: cat,
			Price: events.Money{Amount: price, Currency: "EUR"}, Attributes: attrs, CreatedAt: now}
	case events.TypeProductUpdated:
		data = events.ProductUpdated{ProductID: id, Name: name, Description: "A fine " + name, Category: cat,
			Price: events.Money{Amount: price, Currency: "EUR"}, Attributes: attrs, UpdatedAt: now}
	case events.TypeProductDeleted:
		data = events.ProductDeleted{ProductID: id, DeletedAt: now}
	}
	e, err := events.New(ctx, typ, id, seq, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDuplicatesAndOutOfOrderEventsLeaveTheNewestState(t *testing.T) {
	x := newIndex(t)
	svc := search.NewService(x, nil, search.Exports{}, nil, search.Options{}, quiet())
	ctx := context.Background()
	a, b := uuid.NewString(), uuid.NewString()
	deliveries := []events.Envelope{
		productEvent(t, events.TypeProductUpdated, a, 3, "Kettle three", 300, "kettle"),
		productEvent(t, events.TypeProductCreated, a, 1, "Kettle one", 100, "kettle"),
		productEvent(t, events.TypeProductUpdated, a, 2, "Kettle two", 200, "kettle"),
		productEvent(t, events.TypeProductUpdated, a, 3, "Kettle three", 300, "kettle"), // duplicate
		productEvent(t, events.TypeProductCreated, b, 1, "Doomed kettle", 100, "kettle"),
		productEvent(t, events.TypeProductDeleted, b, 3, "", 0, ""),
		productEvent(t, events.TypeProductUpdated, b, 2, "Doomed kettle again", 150, "kettle"), // late, after the delete
		productEvent(t, events.TypeProductCreated, b, 1, "Doomed kettle", 100, "kettle"),       // redelivered
	}
	for _, e := range deliveries {
		if err := svc.Handle(ctx, e); err != nil {
			t.Fatalf("handle %s v%d: %v", e.Type, e.Sequence, err)
		}
	}
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	got, err := x.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, map[string]int64{a: 3}); diff != "" {
		t.Errorf("indexed versions (-got +want):\n%s", diff)
	}
	res, err := x.Search(ctx, search.Query{Text: "kettle", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].Name != "Kettle three" || res.Hits[0].Price.Amount != 300 {
		t.Errorf("hits = %+v, want only Kettle three at 300", res.Hits)
	}
}

func TestSearchFiltersFacetsHighlightsAndCursor(t *testing.T) {
	x := newIndex(t)
	ctx := context.Background()
	var ops []search.Op
	wantKettles := []string{}
	for i := range 25 {
		id := uuid.NewString()
		cat, name := "kettle", fmt.Sprintf("Steel kettle %d", i)
		if i%5 == 0 {
			cat, name = "book", fmt.Sprintf("A book about kettles %d", i)
		}
		price := int64(500 + 400*i)
		op, err := search.OpFor(productEvent(t, events.TypeProductCreated, id, 1, name, price, cat))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
		if cat == "kettle" && price >= 1000 && price <= 8000 {
			wantKettles = append(wantKettles, id)
		}
	}
	if err := x.Apply(ctx, "", ops); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	minP, maxP := int64(1000), int64(8000)
	q := search.Query{Text: "steel kettle", Category: "kettle", MinPrice: &minP, MaxPrice: &maxP, Limit: 4}
	var got []string
	var first search.Result
	for page := 0; page < 20; page++ {
		res, err := x.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if page == 0 {
			first = res
		}
		for _, h := range res.Hits {
			got = append(got, h.ID)
			if len(h.Highlights["name"]) == 0 {
				t.Errorf("hit %s has no name highlight", h.Name)
			}
		}
		if res.Next == nil {
			break
		}
		q.After = res.Next
	}
	slices.Sort(got)
	slices.Sort(wantKettles)
	if diff := cmp.Diff(got, wantKettles); diff != "" {
		t.Errorf("ids over all pages (-got +want):\n%s", diff)
	}
	if first.Total != int64(len(wantKettles)) {
		t.Errorf("total = %d, want %d", first.Total, len(wantKettles))
	}
	if diff := cmp.Diff(first.Facets.Category, []search.ValueCount{{Value: "kettle", Count: int64(len(wantKettles))}}); diff != "" {
		t.Errorf("category facet (-got +want):\n%s", diff)
	}
	if got := first.Facets.Attributes["material"]; len(got) != 1 || got[0].Value != "steel" {
		t.Errorf("material facet = %+v, want steel", got)
	}
	var sum int64
	for _, b := range first.Facets.Price {
		sum += b.Count
	}
	if sum != int64(len(wantKettles)) {
		t.Errorf("price buckets add up to %d, want %d", sum, len(wantKettles))
	}
}

func TestRebuildWhileQueriesRunNeverShowsAnEmptyIndex(t *testing.T) {
	x := newIndex(t)
	ctx := context.Background()
	var evs []events.Envelope
	want := map[string]int64{}
	for i := range 200 {
		id := uuid.NewString()
		evs = append(evs, productEvent(t, events.TypeProductCreated, id, 1, fmt.Sprintf("Kettle %d", i), 1000, "kettle"))
		want[id] = 1
		if i%10 == 0 {
			evs = append(evs, productEvent(t, events.TypeProductUpdated, id, 2, fmt.Sprintf("Kettle %d v2", i), 1200, "kettle"))
			want[id] = 2
		}
		if i%25 == 0 {
			evs = append(evs, productEvent(t, events.TypeProductDeleted, id, 3, "", 0, ""))
			delete(want, id)
		}
	}
	// The owner's export holds the same state, in pages slow enough that queries run while
	// the rebuild is in progress; the stream holds the events (nothing to tail).
	js := rebuildtest.JetStream(t)
	rebuildtest.Stream(t, js, "CATALOG", "catalog")
	rebuildtest.Publish(t, js, evs...)
	exp := rebuildtest.Products(recordsOf(t, evs)...)
	exp.PageSize, exp.BeforePage = 20, func(int) { time.Sleep(20 * time.Millisecond) }
	svc := search.NewService(x, rebuild.New(js, 0, quiet()), search.Exports{Products: exp, Stock: rebuildtest.Stock()},
		testCatalog{Export: exp}, search.Options{DriftRounds: 1}, quiet())
	// The live index holds the same products already (as after normal consumption).
	for _, e := range evs {
		if err := svc.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}

	var queries, empty, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := x.Search(ctx, search.Query{Text: "kettle", Limit: 5})
				queries.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
					t.Logf("query during rebuild: %v", err)
				case res.Total == 0:
					empty.Add(1)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	for range 2 { // twice: the second rebuild replaces the first rebuild's index
		rep, err := svc.Rebuild(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Removed) != 1 {
			t.Errorf("rebuild removed %v, want exactly the previous index", rep.Removed)
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if queries.Load() < 10 {
		t.Fatalf("only %d queries ran during the rebuilds; the test proves nothing", queries.Load())
	}
	if empty.Load() > 0 || failed.Load() > 0 {
		t.Errorf("%d of %d queries during rebuild returned no hits, %d failed", empty.Load(), queries.Load(), failed.Load())
	}
	got, err := x.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("rebuilt index (-got +want):\n%s", diff)
	}
}

type fakeCatalog map[string]int64

func (f fakeCatalog) Each(ctx context.Context, fn func(string, int64) error) error {
	for id, v := range f {
		if err := fn(id, v); err != nil {
			return err
		}
	}
	return nil
}

func TestDriftReportsMissingExtraAndVersionMismatch(t *testing.T) {
	x := newIndex(t)
	ctx := context.Background()
	same, stale, extra, missing := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	svc := search.NewService(x, nil, search.Exports{}, fakeCatalog{same: 1, stale: 4, missing: 1}, search.Options{}, quiet())
	for _, e := range []events.Envelope{
		productEvent(t, events.TypeProductCreated, same, 1, "Same", 100, "kettle"),
		productEvent(t, events.TypeProductUpdated, stale, 3, "Stale", 100, "kettle"),
		productEvent(t, events.TypeProductCreated, extra, 1, "Extra", 100, "kettle"),
	} {
		if err := svc.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := svc.Drift(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := search.DriftReport{CheckedAt: rep.CheckedAt, CatalogProducts: 3, IndexedProducts: 3,
		Missing: []string{missing}, Extra: []string{extra},
		VersionMismatch: []search.VersionMismatch{{ID: stale, Catalog: 4, Index: 3}}}
	if diff := cmp.Diff(rep, want); diff != "" {
		t.Errorf("drift (-got +want):\n%s", diff)
	}
}

// The configured refresh interval is set on a new index and, at the next Ensure, on the
// index already behind the alias (SEARCH_REFRESH_INTERVAL changed between two starts).
func TestRefreshIntervalOnNewAndExistingIndices(t *testing.T) {
	ctx := context.Background()
	intervals := func(x *esindex.Index) []string {
		t.Helper()
		var got map[string]struct {
			Settings struct {
				Index struct {
					RefreshInterval string `json:"refresh_interval"`
				} `json:"index"`
			} `json:"settings"`
		}
		if err := esindex.GetJSON(ctx, x, "/"+x.Alias()+"/_settings", &got); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range got {
			out = append(out, s.Settings.Index.RefreshInterval)
		}
		return out
	}
	cfg := estest.Config(t)
	cfg.RefreshInterval = 250 * time.Millisecond
	first, err := esindex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Require(t, "elasticsearch", first.Ping(ctx))
	t.Cleanup(func() { _ = first.DeleteAll(context.Background()) })
	if err := first.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"250ms"}, intervals(first)); diff != "" {
		t.Errorf("new index refresh_interval (-want +got):\n%s", diff)
	}
	cfg.RefreshInterval = 100 * time.Millisecond
	second, err := esindex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"100ms"}, intervals(second)); diff != "" {
		t.Errorf("existing index after Ensure (-want +got):\n%s", diff)
	}
	name, err := second.CreateIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.SwapAlias(ctx, name); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"100ms"}, intervals(second)); diff != "" {
		t.Errorf("index made by CreateIndex (a rebuild) (-want +got):\n%s", diff)
	}
	cfg.RefreshInterval = -time.Second
	if _, err := esindex.New(cfg); err == nil {
		t.Error("New with a negative refresh interval: no error")
	}
}
