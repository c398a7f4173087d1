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

// Source replays one stream's events (the catalog's product events, inventory's
// stock_changed) from the broker.
type Source interface {
	// Name names the stream, for reports and logs.
	Name() string
	// Replay hands the events on Subjects with stream sequence from..(the stream's last
	// sequence when Replay was called, or later) to fn in stream order, in batches, and
	// returns how many events it handed over and the last stream sequence it read
	// (from-1 when there was nothing). from 0 or 1 means the start of the stream.
	Replay(ctx context.Context, from uint64, fn func(ctx context.Context, batch []events.Envelope) error) (int, uint64, error)
}

// Catalog lists the catalog's live products, the source of truth for Drift.
type Catalog interface {
	// Each calls fn with the id and version of every live product.
	Each(ctx context.Context, fn func(id string, version int64) error) error
}

// ErrRebuildRunning: a rebuild is already in progress in this process.
var ErrRebuildRunning = errors.New("a rebuild is already running")

// Service is the search read model's application service. It is safe for concurrent use.
type Service struct {
	index   Index
	sources []Source
	catalog Catalog
	log     *slog.Logger
	rebuild sync.Mutex
}

// NewService returns a Service. sources are the streams a rebuild replays (CATALOG and
// INVENTORY); sources and catalog may be nil for a process that only serves queries or
// only consumes.
func NewService(index Index, sources []Source, catalog Catalog, log *slog.Logger) *Service {
	return &Service{index: index, sources: sources, catalog: catalog, log: log}
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
	return s.index.Apply(ctx, "", []Op{op})
}

// Search runs a validated query.
func (s *Service) Search(ctx context.Context, q Query) (Result, error) {
	return s.index.Search(ctx, q)
}

// RebuildReport says what a rebuild did.
type RebuildReport struct {
	Index string `json:"index"`
	// Replayed and CaughtUp are totals over Streams.
	Replayed int `json:"replayed"`
	CaughtUp int `json:"caughtUp"`
	// LastSeq is the last sequence read from the first stream (CATALOG), kept for
	// clients of the one-stream report; Streams has every stream's.
	LastSeq    uint64         `json:"lastSequence"`
	Streams    []StreamReport `json:"streams"`
	Removed    []string       `json:"removedIndices"`
	DurationMs int64          `json:"durationMs"`
}

// StreamReport is what a rebuild read from one stream.
type StreamReport struct {
	Stream   string `json:"stream"`
	Replayed int    `json:"replayed"`
	CaughtUp int    `json:"caughtUp"`
	LastSeq  uint64 `json:"lastSequence"`
}

// Rebuild replays every source stream from its start into a new concrete index, points the
// alias at it in one atomic alias update, replays what arrived meanwhile on each stream
// (events the live consumers wrote only into the old index), and deletes the old indices.
// Queries see the old index until the swap and the complete new one after it: never an
// empty one. A stream that does not exist yet replays nothing (Source's business).
func (s *Service) Rebuild(ctx context.Context) (RebuildReport, error) {
	if len(s.sources) == 0 {
		return RebuildReport{}, errors.New("rebuild: no event source configured")
	}
	if !s.rebuild.TryLock() {
		return RebuildReport{}, ErrRebuildRunning
	}
	defer s.rebuild.Unlock()
	start := time.Now()
	idx, err := s.index.CreateIndex(ctx)
	if err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild: %w", err)
	}
	apply := func(ctx context.Context, batch []events.Envelope) error {
		ops := make([]Op, 0, len(batch))
		for _, e := range batch {
			op, err := OpFor(e)
			if err != nil {
				// The live consumer dead-lettered it; a rebuild cannot do better.
				s.log.WarnContext(ctx, "rebuild: skipping malformed event", "event_id", e.ID, "err", err)
				continue
			}
			if op.Kind != OpNone {
				ops = append(ops, op)
			}
		}
		return s.index.Apply(ctx, idx, ops)
	}
	rep := RebuildReport{Index: idx, Streams: make([]StreamReport, len(s.sources)), Removed: []string{}}
	for i, src := range s.sources {
		n, last, err := src.Replay(ctx, 1, apply)
		if err != nil {
			_ = s.index.DeleteIndex(context.WithoutCancel(ctx), idx)
			return RebuildReport{}, fmt.Errorf("rebuild: replay %s into %s: %w", src.Name(), idx, err)
		}
		rep.Streams[i] = StreamReport{Stream: src.Name(), Replayed: n, LastSeq: last}
	}
	// Refresh before the swap: an unrefreshed index would answer with no hits.
	if err := s.index.Refresh(ctx, idx); err != nil {
		_ = s.index.DeleteIndex(context.WithoutCancel(ctx), idx)
		return RebuildReport{}, fmt.Errorf("rebuild: refresh %s: %w", idx, err)
	}
	old, err := s.index.SwapAlias(ctx, idx)
	if err != nil {
		_ = s.index.DeleteIndex(context.WithoutCancel(ctx), idx)
		return RebuildReport{}, fmt.Errorf("rebuild: swap alias to %s: %w", idx, err)
	}
	// From here on the live consumers write into the new index too; replay the tail of
	// each stream they may have written into the old one only. Versions per source make
	// overlaps harmless, optimistic concurrency makes concurrent writes safe.
	for i, src := range s.sources {
		sr := &rep.Streams[i]
		m, last, err := src.Replay(ctx, sr.LastSeq+1, apply)
		if err != nil {
			return RebuildReport{}, fmt.Errorf("rebuild: catch up %s into %s after the swap: %w", src.Name(), idx, err)
		}
		sr.CaughtUp, sr.LastSeq = m, max(sr.LastSeq, last)
		rep.Replayed += sr.Replayed
		rep.CaughtUp += sr.CaughtUp
	}
	rep.LastSeq = rep.Streams[0].LastSeq
	for _, o := range old {
		if o == idx {
			continue
		}
		if err := s.index.DeleteIndex(ctx, o); err != nil {
			s.log.WarnContext(ctx, "rebuild: delete old index", "index", o, "err", err)
			continue
		}
		rep.Removed = append(rep.Removed, o)
	}
	rep.DurationMs = time.Since(start).Milliseconds()
	s.log.InfoContext(ctx, "rebuild done", "index", idx, "replayed", rep.Replayed, "caught_up", rep.CaughtUp, "removed", rep.Removed)
	return rep, nil
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

// Drift pages through the catalog and the index and reports the ids missing from the index,
// the ids in the index that the catalog does not have (deleted or unknown), and the ids
// whose versions differ.
func (s *Service) Drift(ctx context.Context) (DriftReport, error) {
	if s.catalog == nil {
		return DriftReport{}, errors.New("drift: no catalog configured")
	}
	rep := DriftReport{CheckedAt: time.Now().UTC(), Missing: []string{}, Extra: []string{}, VersionMismatch: []VersionMismatch{}}
	indexed, err := s.index.Versions(ctx)
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
