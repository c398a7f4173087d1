package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"polyshop/shared/events"
	"polyshop/shared/inbox/pginbox"
	"polyshop/shared/rebuild"
)

// CopyRebuilder runs the snapshot + tail pattern; *rebuild.Rebuilder implements it.
type CopyRebuilder interface {
	Run(ctx context.Context, sources ...rebuild.Source) ([]rebuild.SourceReport, error)
}

// Feed is one live copy consumer: its stream, subjects and durable name. The durable name
// is the inbox consumer its versions are stored under, so a rebuild and the live consumer
// judge records and events against one another.
type Feed struct {
	Stream   string
	Consumer string
	Subjects []string
}

// CopySources are what RebuildCopies reads: the owners' exports and the live feeds.
type CopySources struct {
	Rebuilder CopyRebuilder
	Addresses rebuild.Export[rebuild.AddressRecord]
	Products  rebuild.Export[rebuild.ProductRecord]
	Users     Feed
	Catalog   Feed
}

// ErrRebuildRunning: a rebuild of the copies is already in progress in this process.
var ErrRebuildRunning = errors.New("a rebuild of the local copies is already running")

// ErrNoCopySources: the service was built without CopySources.
var ErrNoCopySources = errors.New("no sources configured for rebuilding the local copies")

// CopiesReport says what RebuildCopies did, per owner (users, then catalog).
type CopiesReport struct {
	Sources    []rebuild.SourceReport `json:"sources"`
	DurationMs int64                  `json:"durationMs"`
}

// SetCopySources sets what RebuildCopies reads; call it before the service is used.
func (s *Service) SetCopySources(cs CopySources) { s.copies = &cs }

// exportPage is how many records RebuildCopies asks an owner's export for at once.
const exportPage = 500

// RebuildCopies brings the local copies (customers' addresses from users, product names and
// prices from the catalog) up to the owners' state without depending on the streams'
// retention: per owner it notes the stream's last sequence, applies the owner's export
// (each record at its version, pginbox.AdvanceState under the live consumer's name: a
// record older than the copy changes nothing, one at the same version rewrites the same
// state and so repairs a lost row) and replays the stream's tail from there through the
// live handler (ApplyEvent). It works in place, alongside the live consumers: the
// per-aggregate versions make the order of the two irrelevant. Rows the owners do not know
// are left as they are.
func (s *Service) RebuildCopies(ctx context.Context) (CopiesReport, error) {
	cs := s.copies
	if cs == nil {
		return CopiesReport{}, ErrNoCopySources
	}
	if !s.rebuilding.TryLock() {
		return CopiesReport{}, ErrRebuildRunning
	}
	defer s.rebuilding.Unlock()
	start := time.Now()
	tail := func(consumer string) rebuild.ApplyFunc {
		return func(ctx context.Context, batch []events.Envelope) error {
			for _, e := range batch {
				err := s.ApplyEvent(ctx, consumer, e)
				if errors.Is(err, events.ErrInvalid) {
					// The live consumer dead-lettered it; a rebuild cannot do better.
					s.log.WarnContext(ctx, "rebuild copies: skipping malformed event", "event_id", e.ID, "type", e.Type, "err", err)
					continue
				}
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	sources := []rebuild.Source{
		{
			Name: "users", Stream: cs.Users.Stream, Subjects: cs.Users.Subjects, Apply: tail(cs.Users.Consumer),
			Snapshot: rebuild.Snapshot(cs.Addresses, exportPage, func(ctx context.Context, page []rebuild.AddressRecord) error {
				changes := make([]VersionedChange, 0, len(page))
				for _, r := range page {
					if !isUUID(r.UserID) || r.Version < 1 {
						s.log.WarnContext(ctx, "rebuild copies: skipping malformed address record", "user_id", r.UserID, "version", r.Version)
						continue
					}
					c := CopyChange{Kind: CustomerReplaced, UserID: r.UserID, Address: r.Address}
					if r.Deleted {
						c = CopyChange{Kind: CustomerDeleted, UserID: r.UserID}
					}
					changes = append(changes, VersionedChange{Key: pginbox.StateKey("users", r.UserID), Version: r.Version, Change: c})
				}
				return s.store.ApplyCopyState(ctx, cs.Users.Consumer, changes)
			}),
		},
		{
			Name: "catalog", Stream: cs.Catalog.Stream, Subjects: cs.Catalog.Subjects, Apply: tail(cs.Catalog.Consumer),
			Snapshot: rebuild.Snapshot(cs.Products, exportPage, func(ctx context.Context, page []rebuild.ProductRecord) error {
				changes := make([]VersionedChange, 0, len(page))
				for _, r := range page {
					if !isUUID(r.ID) || r.Version < 1 {
						s.log.WarnContext(ctx, "rebuild copies: skipping malformed product record", "product_id", r.ID, "version", r.Version)
						continue
					}
					p := Product{ID: r.ID, Name: r.Name, Price: r.Price, Deleted: r.Deleted}
					kind := ProductUpserted
					if r.Deleted {
						kind = ProductDeleted
					}
					changes = append(changes, VersionedChange{Key: pginbox.StateKey("catalog", r.ID), Version: r.Version,
						Change: CopyChange{Kind: kind, Product: p}})
				}
				return s.store.ApplyCopyState(ctx, cs.Catalog.Consumer, changes)
			}),
		},
	}
	reps, err := cs.Rebuilder.Run(ctx, sources...)
	rep := CopiesReport{Sources: reps, DurationMs: time.Since(start).Milliseconds()}
	if err != nil {
		return rep, fmt.Errorf("rebuild copies: %w", err)
	}
	s.log.InfoContext(ctx, "rebuild copies done", "duration_ms", rep.DurationMs)
	return rep, nil
}
