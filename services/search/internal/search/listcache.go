package search

import (
	"context"
	"sync"
	"time"
)

// listCache keeps listing pages for a short time (Options.ListCacheTTL). Browsing asks for
// the same few pages over and over (the first pages of six categories, and the pages their
// cursors lead to), and the index itself shows a write only after its next refresh (1 s),
// so a page kept for about that long is as fresh as the read model it comes from. A catalog
// change applied by this process (put or delete) and an alias swap clear it at once; stock
// changes do not, the listing does not carry stock. A page read within one refresh interval
// after a change may not show the change yet (the index shows it after its next refresh), so
// it is kept only until that refresh is due: the cache adds nothing to the listing's lag.
// Concurrent misses of one page share one query. Safe for concurrent use.
type listCache struct {
	ttl     time.Duration
	refresh time.Duration
	max     int

	mu      sync.Mutex
	gen     uint64    // bumped by clear: a query started before it does not fill the cache
	settled time.Time // pages read before this may predate the last change: kept until it
	entries map[ListQuery]listEntry
	calls   map[ListQuery]*listCall
}

type listEntry struct {
	items []Listed
	until time.Time
}

type listCall struct {
	done  chan struct{}
	items []Listed
	err   error
}

func newListCache(ttl, refresh time.Duration, max int) *listCache {
	return &listCache{ttl: ttl, refresh: refresh, max: max, entries: map[ListQuery]listEntry{}, calls: map[ListQuery]*listCall{}}
}

// get returns the page for q from the cache or from load. Items are shared: callers must
// not modify them.
func (c *listCache) get(ctx context.Context, q ListQuery, load func(context.Context, ListQuery) ([]Listed, error)) ([]Listed, error) {
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
			return nil, ctx.Err()
		}
	}
	call := &listCall{done: make(chan struct{})}
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
		c.entries[q] = listEntry{items: call.items, until: until}
	}
	c.mu.Unlock()
	close(call.done)
	return call.items, call.err
}

// clear drops every page, and keeps queries already running from storing theirs.
func (c *listCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.settled = time.Now().Add(c.refresh)
	c.mu.Unlock()
}
