package search

import (
	"context"
	"errors"
	"fmt"
	"time"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/rebuild"
)

// Rebuilder runs the snapshot + tail pattern; *rebuild.Rebuilder implements it.
type Rebuilder interface {
	Run(ctx context.Context, sources ...rebuild.Source) ([]rebuild.SourceReport, error)
	Tail(ctx context.Context, stream string, subjects []string, from uint64, fn rebuild.ApplyFunc) (rebuild.TailReport, error)
}

// Exports are the owners' exports a rebuild reads: the catalog's products (tombstones
// included) and inventory's stock rows.
type Exports struct {
	Products rebuild.Export[rebuild.ProductRecord]
	Stock    rebuild.Export[rebuild.StockRecord]
}

// ExportPage is how many records a rebuild asks an owner's export for at once.
const ExportPage = 500

// ErrRebuildRunning: a rebuild is already in progress in this process.
var ErrRebuildRunning = errors.New("a rebuild is already running")

// ErrDriftRefused: the new index disagrees with the catalog after every drift round; the
// alias was left on the old index and the new index deleted. The report says how.
var ErrDriftRefused = errors.New("the rebuilt index disagrees with the catalog; the alias was not swapped")

// RebuildReport says what a rebuild did.
type RebuildReport struct {
	// Index is the concrete index built (deleted again when Swapped is false).
	Index   string `json:"index"`
	Swapped bool   `json:"swapped"`
	// Sources is, per owner, the sequence noted, the export and the tail replayed before
	// the swap (TailTo and Replayed include the catch-ups between drift rounds).
	Sources []rebuild.SourceReport `json:"sources"`
	// DriftRounds is how many drift checks ran before the swap; Drift is the last one.
	DriftRounds int          `json:"driftRounds"`
	Drift       *DriftReport `json:"drift"`
	// CaughtUp is, per stream, what arrived between the end of its tail and the swap, replayed
	// into the new index after it (the live consumers wrote those into the old index only).
	CaughtUp   []rebuild.TailReport `json:"caughtUp"`
	Removed    []string             `json:"removedIndices"`
	DurationMs int64                `json:"durationMs"`
}

// ProductOp is the index operation of a catalog export record: the product's state at its
// version, or its tombstone.
func ProductOp(p rebuild.ProductRecord) Op {
	if p.Deleted {
		return Op{Kind: OpDelete, ID: p.ID, Version: p.Version}
	}
	attrs := p.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	d := Document{ID: p.ID, Name: p.Name, Description: p.Description, Category: p.Category, Price: p.Price,
		Attributes: attrs, AttrFacets: FacetValues(attrs), Version: p.Version, UpdatedAt: p.UpdatedAt,
		CreatedAt: p.CreatedAt, InitialStock: p.InitialStock}
	return Op{Kind: OpPut, ID: p.ID, Version: p.Version, Doc: d}
}

// StockOp is the index operation of an inventory export record.
func StockOp(s rebuild.StockRecord) Op {
	return Op{Kind: OpStock, ID: s.ProductID, Version: s.Version, Available: s.Available}
}

// Rebuild builds a new concrete index from the owners' exports plus their streams' tails
// (shared/rebuild: note each stream's last sequence, apply the export, replay from there),
// so it does not depend on what the streams still hold. Before the swap the new index is
// compared with the catalog (drift check, up to Options.DriftRounds times with the tails
// caught up in between, so changes in flight do not count); when it still disagrees the
// swap is refused: the alias stays on the old index, the new index is deleted, and the
// report (with ErrDriftRefused) says what differed. Otherwise the alias is swapped in one
// atomic request, what arrived meanwhile is replayed into the new index, and the old
// indices are deleted. Queries see the old index until the swap and the complete new one
// after it: never an empty one.
func (s *Service) Rebuild(ctx context.Context) (RebuildReport, error) {
	if s.rb == nil || s.exports.Products == nil || s.exports.Stock == nil || s.catalog == nil {
		return RebuildReport{}, errors.New("rebuild: no broker, exports or catalog configured")
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
	rep := RebuildReport{Index: idx, CaughtUp: []rebuild.TailReport{}, Removed: []string{}}
	abandon := func(err error) (RebuildReport, error) {
		if derr := s.index.DeleteIndex(context.WithoutCancel(ctx), idx); derr != nil {
			s.log.WarnContext(ctx, "rebuild: delete abandoned index", "index", idx, "err", derr)
		}
		rep.DurationMs = time.Since(start).Milliseconds()
		return rep, err
	}
	applyOps := func(ctx context.Context, ops []Op) error { return s.index.Apply(ctx, idx, ops) }
	applyEvents := func(ctx context.Context, batch []events.Envelope) error {
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
		return applyOps(ctx, ops)
	}
	sources := []rebuild.Source{
		{
			Name: "catalog", Stream: broker.StreamName("catalog"), Subjects: Subjects, Apply: applyEvents,
			Snapshot: rebuild.Snapshot(s.exports.Products, ExportPage, func(ctx context.Context, page []rebuild.ProductRecord) error {
				ops := make([]Op, len(page))
				for i, p := range page {
					ops[i] = ProductOp(p)
				}
				return applyOps(ctx, ops)
			}),
		},
		{
			Name: "inventory", Stream: broker.StreamName("inventory"), Subjects: StockSubjects, Apply: applyEvents,
			Snapshot: rebuild.Snapshot(s.exports.Stock, ExportPage, func(ctx context.Context, page []rebuild.StockRecord) error {
				ops := make([]Op, len(page))
				for i, st := range page {
					ops[i] = StockOp(st)
				}
				return applyOps(ctx, ops)
			}),
		},
	}
	rep.Sources, err = s.rb.Run(ctx, sources...)
	if err != nil {
		return abandon(fmt.Errorf("rebuild into %s: %w", idx, err))
	}
	// catchUp replays each stream from the end of what was replayed so far to its end now;
	// before the swap (count) it is added to the sources' tails.
	next := make([]uint64, len(sources))
	for i := range sources {
		next[i] = rep.Sources[i].TailTo + 1
	}
	catchUp := func(ctx context.Context, count bool) ([]rebuild.TailReport, error) {
		var out []rebuild.TailReport
		for i, src := range sources {
			t, err := s.rb.Tail(ctx, src.Stream, src.Subjects, next[i], applyEvents)
			if err != nil {
				return out, fmt.Errorf("catch up %s: %w", src.Stream, err)
			}
			next[i] = max(next[i], t.To+1)
			if sr := &rep.Sources[i]; count {
				sr.TailTo, sr.Replayed = max(sr.TailTo, t.To), sr.Replayed+t.Applied
			}
			out = append(out, t)
		}
		return out, nil
	}

	// Drift check before the swap. Only the rebuild writes the new index until then.
	for round := 1; ; round++ {
		// Refresh: an unrefreshed index would answer with no hits (and no versions).
		if err := s.index.Refresh(ctx, idx); err != nil {
			return abandon(fmt.Errorf("rebuild: refresh %s: %w", idx, err))
		}
		d, err := s.drift(ctx, idx)
		if err != nil {
			return abandon(fmt.Errorf("rebuild: drift check of %s: %w", idx, err))
		}
		rep.DriftRounds, rep.Drift = round, &d
		if d.InSync() {
			break
		}
		if round >= s.opts.DriftRounds {
			s.log.WarnContext(ctx, "rebuild: the new index disagrees with the catalog; alias not swapped",
				"index", idx, "missing", len(d.Missing), "extra", len(d.Extra), "version_mismatch", len(d.VersionMismatch))
			return abandon(ErrDriftRefused)
		}
		select {
		case <-ctx.Done():
			return abandon(ctx.Err())
		case <-time.After(s.opts.DriftPause):
		}
		if _, err := catchUp(ctx, true); err != nil {
			return abandon(fmt.Errorf("rebuild into %s: %w", idx, err))
		}
	}

	old, err := s.index.SwapAlias(ctx, idx)
	if err != nil {
		return abandon(fmt.Errorf("rebuild: swap alias to %s: %w", idx, err))
	}
	rep.Swapped = true
	s.list.clear() // pages of the old index
	s.results.clear()
	// From here on the live consumers write into the new index too; replay the tail of
	// each stream they may have written into the old one only. Versions per source make
	// overlaps harmless, optimistic concurrency makes concurrent writes safe.
	caught, err := catchUp(ctx, false)
	rep.CaughtUp = append(rep.CaughtUp, caught...)
	if err != nil {
		rep.DurationMs = time.Since(start).Milliseconds()
		return rep, fmt.Errorf("rebuild: %s is live but its catch-up failed (the live consumers carry on; drift shows what is missing): %w", idx, err)
	}
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
	s.log.InfoContext(ctx, "rebuild done", "index", idx, "drift_rounds", rep.DriftRounds, "removed", rep.Removed)
	return rep, nil
}
