package search

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
)

func TestListCacheKeepsPagesSharesMissesAndClears(t *testing.T) {
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, q ListQuery) ([]Listed, error) {
		loads.Add(1)
		<-release
		return []Listed{{ID: q.Category + "-1"}}, nil
	}
	c := newListCache(time.Hour, 0, 10)
	ctx := context.Background()
	q := ListQuery{Category: "kettle", Limit: 20}

	// Ten concurrent misses of one page: one query.
	var wg sync.WaitGroup
	got := make([][]Listed, 10)
	for i := range got {
		wg.Go(func() {
			items, err := c.get(ctx, q, load)
			if err != nil {
				t.Error(err)
			}
			got[i] = items
		})
	}
	for loads.Load() == 0 {
		time.Sleep(time.Millisecond) // wait for the first miss to start its query
	}
	close(release)
	wg.Wait()
	for _, items := range got {
		if diff := cmp.Diff(items, []Listed{{ID: "kettle-1"}}); diff != "" {
			t.Errorf("page (-got +want):\n%s", diff)
		}
	}
	steps := []struct {
		name      string
		do        func()
		q         ListQuery
		wantLoads int64
	}{
		{"kept", func() {}, q, 1},
		{"another page is its own entry", func() {}, ListQuery{Category: "book", Limit: 20}, 2},
		{"cleared by a catalog change", c.clear, q, 3},
		{"kept again", func() {}, q, 3},
	}
	for _, s := range steps {
		s.do()
		if _, err := c.get(ctx, s.q, load); err != nil {
			t.Fatal(err)
		}
		if got := loads.Load(); got != s.wantLoads {
			t.Errorf("%s: %d queries, want %d", s.name, got, s.wantLoads)
		}
	}
}

// A page whose query started before a clear is not kept: it may predate the change.
func TestListCacheDoesNotKeepAPageLoadedAcrossAClear(t *testing.T) {
	c := newListCache(time.Hour, 0, 10)
	var loads int
	load := func(ctx context.Context, q ListQuery) ([]Listed, error) {
		loads++
		if loads == 1 {
			c.clear() // a catalog change applied while the first query runs
		}
		return nil, nil
	}
	for range 2 {
		if _, err := c.get(context.Background(), ListQuery{Limit: 1}, load); err != nil {
			t.Fatal(err)
		}
	}
	if loads != 2 {
		t.Errorf("%d queries, want 2 (the first page must not have been kept)", loads)
	}
}

// After a change, a page read before the index's next refresh may not show the change:
// it is kept until that refresh is due, then read again; a page read later is kept for the
// whole TTL.
func TestListCacheKeepsAPageReadBeforeTheRefreshOnlyUntilIt(t *testing.T) {
	var loads atomic.Int64
	load := func(ctx context.Context, q ListQuery) ([]Listed, error) {
		loads.Add(1)
		return []Listed{{ID: "p"}}, nil
	}
	const refresh = 50 * time.Millisecond
	c := newListCache(time.Hour, refresh, 10)
	ctx := context.Background()
	q := ListQuery{Limit: 20}
	get := func() {
		t.Helper()
		if _, err := c.get(ctx, q, load); err != nil {
			t.Fatal(err)
		}
	}
	c.clear() // a change: the index shows it after its next refresh
	get()
	get()
	if got := loads.Load(); got != 1 {
		t.Fatalf("within the refresh: %d queries, want 1 (the page is kept until the refresh)", got)
	}
	time.Sleep(2 * refresh)
	get()
	if got := loads.Load(); got != 2 {
		t.Fatalf("after the refresh: %d queries, want 2 (the page read before it may miss the change)", got)
	}
	time.Sleep(2 * refresh)
	get()
	if got := loads.Load(); got != 2 {
		t.Errorf("a page read after the refresh: %d queries, want 2 (kept for the TTL)", got)
	}
}

// searchOnly is an Index whose Search counts its queries and whose Apply does nothing; the
// rest is not used here.
type searchOnly struct {
	Index
	searches atomic.Int64
}

func (f *searchOnly) Search(_ context.Context, q Query) (Result, error) {
	f.searches.Add(1)
	return Result{Total: int64(len(q.Text))}, nil
}

func (f *searchOnly) Apply(context.Context, string, []Op) error { return nil }

// A search result is kept while the index has not changed: the same query asked again, even
// built anew, is answered from the cache; a different one is not; any change this process
// applies (a stock change included: hits carry stock) clears it.
func TestSearchResultsAreKeptUntilAChange(t *testing.T) {
	ctx := context.Background()
	idx := &searchOnly{}
	svc := NewService(idx, nil, Exports{}, nil, Options{QueryCacheTTL: time.Hour}, slog.New(slog.DiscardHandler))
	price := func(v int64) *int64 { return &v }
	yes := true
	query := func() Query {
		return Query{Text: "kettle", Category: "kettle", MinPrice: price(1000), InStock: &yes, After: &Cursor{Score: 1.5, ID: "p1"}, Limit: 20}
	}
	stock, err := events.New(ctx, events.TypeStockChanged, "p1", 1, events.StockChanged{ProductID: "p1", Available: 3, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func()
		q    Query
		want int64
	}{
		{"first", func() {}, query(), 1},
		{"the same query, built anew", func() {}, query(), 1},
		{"another price", func() {}, func() Query { q := query(); q.MinPrice = price(1001); return q }(), 2},
		{"no cursor", func() {}, func() Query { q := query(); q.After = nil; return q }(), 3},
		{"after a stock change", func() {
			if err := svc.Handle(ctx, stock); err != nil {
				t.Fatal(err)
			}
		}, query(), 4},
		{"kept again", func() {}, query(), 4},
	}
	for _, s := range steps {
		s.do()
		if _, err := svc.Search(ctx, s.q); err != nil {
			t.Fatal(err)
		}
		if got := idx.searches.Load(); got != s.want {
			t.Errorf("%s: %d index queries, want %d", s.name, got, s.want)
		}
	}
}

// blockingSearch is an Index whose searches wait until released.
type blockingSearch struct {
	Index
	started chan string
	release chan struct{}
}

func (f *blockingSearch) Search(_ context.Context, q Query) (Result, error) {
	f.started <- q.Text
	<-f.release
	return Result{Total: 1}, nil
}

// The bound on searches running in Elasticsearch is behind the cache: with the one slot
// taken, another query is refused at once (ErrBusy), the same query joins the running one,
// and a cached answer is served.
func TestSearchBoundIsBehindTheCache(t *testing.T) {
	ctx := context.Background()
	idx := &blockingSearch{started: make(chan string, 4), release: make(chan struct{})}
	svc := NewService(idx, nil, Exports{}, nil, Options{QueryCacheTTL: time.Hour, QueryInflight: 1}, slog.New(slog.DiscardHandler))

	// Cache an answer for "cached" first.
	done := make(chan error, 1)
	go func() { _, err := svc.Search(ctx, Query{Text: "cached", Limit: 20}); done <- err }()
	<-idx.started
	idx.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Take the one slot.
	slow := make(chan error, 2)
	go func() { _, err := svc.Search(ctx, Query{Text: "slow", Limit: 20}); slow <- err }()
	<-idx.started
	// The same query joins it (no second slot, no refusal).
	go func() { _, err := svc.Search(ctx, Query{Text: "slow", Limit: 20}); slow <- err }()

	if _, err := svc.Search(ctx, Query{Text: "other", Limit: 20}); !errors.Is(err, ErrBusy) {
		t.Errorf("another query with the slot taken: %v, want ErrBusy", err)
	}
	if res, err := svc.Search(ctx, Query{Text: "cached", Limit: 20}); err != nil || res.Total != 1 {
		t.Errorf("cached query with the slot taken: %+v, %v; want the cached answer", res, err)
	}
	close(idx.release)
	for range 2 {
		if err := <-slow; err != nil {
			t.Errorf("the running query and the one that joined it: %v", err)
		}
	}
	select {
	case q := <-idx.started:
		t.Errorf("a second Elasticsearch search for %q; the joined query should share the first", q)
	default:
	}
}
