package search

import (
	"context"
	"sync"
	"time"
)

// pageCache keeps answers of the index for a short time: listing pages (Options.ListCacheTTL)
// and search results (Options.QueryCacheTTL). Shoppers ask for the same few pages and the
// same popular queries over and over, and an answer stays true until the index changes. The
// changes this process applies clear the cache at once (Service.Handle: a listing page on a
// catalog change, a search result on any change, stock included, since hits carry it), and
// so does an alias swap. A page read within one refresh interval after a change may not show
// the change yet (the index shows it after its next refresh), so it is kept only until that
// refresh is due: the cache adds nothing to the lag of changes this process applied. The TTL
// bounds how long a change applied by another instance goes unseen. Concurrent misses of
// one key share one query. Safe for concurrent use.
type pageCache[K comparable, V any] struct {
	ttl     time.Duration
	refresh time.Duration
	max     int

	mu      sync.Mutex
	gen     uint64    // bumped by clear: a query started before it does not fill the cache
	settled time.Time // pages read before this may predate the last change: kept until it
	entries map[K]cacheEntry[V]
	calls   map[K]*cacheCall[V]
}

type cacheEntry[V any] struct {
	items V
	until time.Time
}

type cacheCall[V any] struct {
	done  chan struct{}
	items V
	err   error
}

// listCache keeps listing pages.
type listCache = pageCache[ListQuery, []Listed]

func newListCache(ttl, refresh time.Duration, max int) *listCache {
	return newPageCache[ListQuery, []Listed](ttl, refresh, max)
}

func newPageCache[K comparable, V any](ttl, refresh time.Duration, max int) *pageCache[K, V] {
	return &pageCache[K, V]{ttl: ttl, refresh: refresh, max: max, entries: map[K]cacheEntry[V]{}, calls: map[K]*cacheCall[V]{}}
}

// get returns the answer for q from the cache or from load. Answers are shared: callers
// must not modify them.
func (c *pageCache[K, V]) get(ctx context.Context, q K, load func(context.Context, K) (V, error)) (V, error) {
	if c == nil || c.ttl <= 0 {
		return load(ctx, q)
	}
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.entries[q]; ok && now.Before(e.until) {
		c.mu.Unlock()
		return e.items, nil
	}
	if call, ok := c.calls[q]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.items, call.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	call := &cacheCall[V]{done: make(chan struct{})}
	c.calls[q] = call
	gen := c.gen
	c.mu.Unlock()

	// The shared query runs without the first caller's cancellation (others wait on it),
	// under a deadline of its own.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	call.items, call.err = load(lctx, q)
	cancel()

	c.mu.Lock()
	delete(c.calls, q)
	if call.err == nil && gen == c.gen {
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
		until := now.Add(c.ttl)
		if now.Before(c.settled) && c.settled.Before(until) {
			until = c.settled
		}
		c.entries[q] = cacheEntry[V]{items: call.items, until: until}
	}
	c.mu.Unlock()
	close(call.done)
	return call.items, call.err
}

// clear drops every page, and keeps queries already running from storing theirs.
func (c *pageCache[K, V]) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.settled = time.Now().Add(c.refresh)
	c.mu.Unlock()
}
