package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"polyshop/shared/events"
)

// Catalog lists the catalog's live products, the source of truth for Drift.
type Catalog interface {
	// Each calls fn with the id and version of every live product.
	Each(ctx context.Context, fn func(id string, version int64) error) error
}

// Service is the search read model's application service. It is safe for concurrent use.
type Service struct {
	index   Index
	rb      Rebuilder
	exports Exports
	catalog Catalog
	opts    Options
	log     *slog.Logger
	rebuild sync.Mutex
	list    *listCache
	results *pageCache[queryKey, Result]
	queries chan struct{} // slots of the searches running in Elasticsearch
}

// Options tune the service: the rebuild's drift check, the listing and result caches, and
// the bound on searches running in Elasticsearch.
type Options struct {
	// DriftRounds is how many times the new index is compared with the catalog before the
	// swap is refused (default 3); between rounds the streams' tails are caught up, so
	// changes in flight during the rebuild do not count as drift.
	DriftRounds int
	// DriftPause is the pause before each further round (default 1s): time for the
	// catalog's relay to publish what it has committed.
	DriftPause time.Duration
	// ListCacheTTL is how long a listing page is kept (listCache); zero or less: not kept.
	// About the index's refresh interval adds next to nothing to the listing's lag.
	ListCacheTTL time.Duration
	// QueryCacheTTL is how long a search result is kept (pageCache); zero or less: not kept.
	QueryCacheTTL time.Duration
	// QueryInflight bounds the searches running in Elasticsearch at once (default
	// DefaultQueryInflight); beyond it Search answers ErrBusy at once. Cached answers do
	// not count.
	QueryInflight int
	// Refresh is the index's refresh interval: after a change, a page read within it may
	// not show the change yet, so it is kept only until the refresh has shown it.
	Refresh time.Duration
}

// DefaultQueryInflight bounds the searches running in Elasticsearch (SEARCH_QUERY_MAX_INFLIGHT).
// Elasticsearch searches on 1.5 × cores + 1 threads (4 on two cores) and queues the rest;
// a search it has not answered since the last refresh costs 15–20 ms of its CPU, one from its
// request cache a few. Measured on two cores (README "Under load"): 4 refused 10% of 300
// searches/s while Elasticsearch used 80% of a core; 8 refused 0.8%, p99 46 ms; 32 (uncached)
// let searches take the cores from the listing beside them (265 → 52 pages/s).
const DefaultQueryInflight = 8

// listCacheMax and queryCacheMax bound the answers kept; past one, its cache starts empty
// again. A result with facets is a few tens of kilobytes: 2,000 of them, some tens of MB.
const (
	listCacheMax  = 10000
	queryCacheMax = 2000
)

// NewService returns a Service. rb, exports and catalog are what a rebuild and the drift
// check use; they may be zero for a process that only serves queries or only consumes.
func NewService(index Index, rb Rebuilder, exports Exports, catalog Catalog, opts Options, log *slog.Logger) *Service {
	if opts.DriftRounds <= 0 {
		opts.DriftRounds = 3
	}
	if opts.DriftPause <= 0 {
		opts.DriftPause = time.Second
	}
	if opts.QueryInflight <= 0 {
		opts.QueryInflight = DefaultQueryInflight
	}
	return &Service{index: index, rb: rb, exports: exports, catalog: catalog, opts: opts, log: log,
		list:    newListCache(opts.ListCacheTTL, opts.Refresh, listCacheMax),
		results: newPageCache[queryKey, Result](opts.QueryCacheTTL, opts.Refresh, queryCacheMax),
		queries: make(chan struct{}, opts.QueryInflight)}
}

// Handle applies one catalog or inventory event to the index behind the alias; it is the
// live consumers' handler. Malformed events are permanent errors (events.ErrInvalid).
func (s *Service) Handle(ctx context.Context, e events.Envelope) error {
	op, err := OpFor(e)
	if err != nil {
		return err
	}
	if op.Kind == OpNone {
		return nil
	}
	err = s.index.Apply(ctx, "", []Op{op})
	if op.Kind == OpPut || op.Kind == OpDelete {
		s.list.clear() // the listing shows catalog parts only; stock leaves it as it is
	}
	s.results.clear() // hits carry stock too
	return err
}

// Search runs a validated query (from the cache while the index has not changed).
func (s *Service) Search(ctx context.Context, q Query) (Result, error) {
	return s.results.get(ctx, keyOf(q), func(ctx context.Context, _ queryKey) (Result, error) {
		select {
		case s.queries <- struct{}{}:
			defer func() { <-s.queries }()
		default:
			return Result{}, ErrBusy
		}
		return s.index.Search(ctx, q)
	})
}

// queryKey is a Query by value: two queries asking the same thing have equal keys.
type queryKey struct {
	text, category             string
	minPrice, maxPrice         int64
	hasMin, hasMax, hasInStock bool
	inStock, hasAfter          bool
	after                      Cursor
	limit                      int
}

func keyOf(q Query) queryKey {
	k := queryKey{text: q.Text, category: q.Category, limit: q.Limit}
	if q.MinPrice != nil {
		k.minPrice, k.hasMin = *q.MinPrice, true
	}
	if q.MaxPrice != nil {
		k.maxPrice, k.hasMax = *q.MaxPrice, true
	}
	if q.InStock != nil {
		k.inStock, k.hasInStock = *q.InStock, true
	}
	if q.After != nil {
		k.after, k.hasAfter = *q.After, true
	}
	return k
}

// List returns one page of the product listing and the id to continue after ("" on the
// last page). q must be validated (Limit 1..MaxLimit). The listing is this read model's
// view: eventually consistent with the catalog (a product created a moment ago may be
// missing, a deleted one may still show, until the events are applied and refreshed).
func (s *Service) List(ctx context.Context, q ListQuery) ([]Listed, string, error) {
	want := q.Limit
	items, err := s.list.get(ctx, q, s.index.List)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) > want {
		items = items[:want]
		next = items[want-1].ID
	}
	return items, next, nil
}

// VersionMismatch is a product whose indexed version differs from the catalog's.
type VersionMismatch struct {
	ID      string `json:"id"`
	Catalog int64  `json:"catalogVersion"`
	Index   int64  `json:"indexVersion"`
}

// DriftReport compares the index with the catalog. Events in flight show up as drift
// that disappears on the next check; drift that stays is a lost or stuck event.
type DriftReport struct {
	CheckedAt       time.Time         `json:"checkedAt"`
	CatalogProducts int               `json:"catalogProducts"`
	IndexedProducts int               `json:"indexedProducts"`
	Missing         []string          `json:"missing"`
	Extra           []string          `json:"extra"`
	VersionMismatch []VersionMismatch `json:"versionMismatch"`
}

// InSync reports whether the report found no difference.
func (r DriftReport) InSync() bool {
	return len(r.Missing) == 0 && len(r.Extra) == 0 && len(r.VersionMismatch) == 0
}

// Drift pages through the catalog and the index behind the alias and reports the ids
// missing from the index, the ids in the index that the catalog does not have (deleted or
// unknown), and the ids whose versions differ.
func (s *Service) Drift(ctx context.Context) (DriftReport, error) { return s.drift(ctx, "") }

// drift is Drift against target ("" = the alias, else a concrete index).
func (s *Service) drift(ctx context.Context, target string) (DriftReport, error) {
	if s.catalog == nil {
		return DriftReport{}, errors.New("drift: no catalog configured")
	}
	rep := DriftReport{CheckedAt: time.Now().UTC(), Missing: []string{}, Extra: []string{}, VersionMismatch: []VersionMismatch{}}
	indexed, err := s.index.Versions(ctx, target)
	if err != nil {
		return DriftReport{}, fmt.Errorf("drift: %w", err)
	}
	rep.IndexedProducts = len(indexed)
	seen := make(map[string]bool, len(indexed))
	err = s.catalog.Each(ctx, func(id string, version int64) error {
		rep.CatalogProducts++
		seen[id] = true
		iv, ok := indexed[id]
		switch {
		case !ok:
			rep.Missing = append(rep.Missing, id)
		case iv != version:
			rep.VersionMismatch = append(rep.VersionMismatch, VersionMismatch{ID: id, Catalog: version, Index: iv})
		}
		return nil
	})
	if err != nil {
		return DriftReport{}, fmt.Errorf("drift: %w", err)
	}
	for id := range indexed {
		if !seen[id] {
			rep.Extra = append(rep.Extra, id)
		}
	}
	slices.Sort(rep.Missing)
	slices.Sort(rep.Extra)
	slices.SortFunc(rep.VersionMismatch, func(a, b VersionMismatch) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return rep, nil
}
