package search

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
