package esindex_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex"
	"polyshop/services/search/internal/httpapi"
	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
	"polyshop/shared/rebuild"
	"polyshop/shared/rebuild/rebuildtest"
)

var stamp = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// product is the catalog's record of a product at version v (a tombstone when deleted).
func product(id string, v int64, name string, deleted bool) rebuild.ProductRecord {
	p := rebuild.ProductRecord{ID: id, Name: name, Description: "A fine " + name, Category: "kettle",
		Price: events.Money{Amount: 1000 + v, Currency: "EUR"}, Attributes: map[string]any{"material": "steel"},
		Version: v, CreatedAt: stamp, UpdatedAt: stamp.Add(time.Duration(v) * time.Minute), Deleted: deleted}
	if deleted {
		at := p.UpdatedAt
		p.DeletedAt = &at
	}
	return p
}

// eventOf is the catalog event that brought a product to the record's state.
func eventOf(t *testing.T, p rebuild.ProductRecord) events.Envelope {
	t.Helper()
	var typ string
	var data any
	switch {
	case p.Deleted:
		typ, data = events.TypeProductDeleted, events.ProductDeleted{ProductID: p.ID, DeletedAt: p.UpdatedAt}
	case p.Version == 1:
		typ, data = events.TypeProductCreated, events.ProductCreated{ProductID: p.ID, Name: p.Name, Description: p.Description,
			Category: p.Category, Price: p.Price, Attributes: p.Attributes, CreatedAt: p.UpdatedAt}
	default:
		typ, data = events.TypeProductUpdated, events.ProductUpdated{ProductID: p.ID, Name: p.Name, Description: p.Description,
			Category: p.Category, Price: p.Price, Attributes: p.Attributes, UpdatedAt: p.UpdatedAt}
	}
	e, err := events.New(context.Background(), typ, p.ID, p.Version, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// recordsOf folds catalog events into the catalog's final records (the owner's state).
func recordsOf(t *testing.T, evs []events.Envelope) []rebuild.ProductRecord {
	t.Helper()
	last := map[string]rebuild.ProductRecord{}
	var order []string
	for _, e := range evs {
		var p rebuild.ProductRecord
		switch e.Type {
		case events.TypeProductCreated:
			var d events.ProductCreated
			_ = e.Decode(&d)
			p = rebuild.ProductRecord{ID: d.ProductID, Name: d.Name, Description: d.Description, Category: d.Category,
				Price: d.Price, Attributes: d.Attributes, CreatedAt: d.CreatedAt, UpdatedAt: d.CreatedAt}
		case events.TypeProductUpdated:
			var d events.ProductUpdated
			_ = e.Decode(&d)
			p = rebuild.ProductRecord{ID: d.ProductID, Name: d.Name, Description: d.Description, Category: d.Category,
				Price: d.Price, Attributes: d.Attributes, UpdatedAt: d.UpdatedAt}
		case events.TypeProductDeleted:
			p = rebuild.ProductRecord{ID: e.Subject, Deleted: true}
		}
		p.Version = e.Sequence
		if _, ok := last[p.ID]; !ok {
			order = append(order, p.ID)
		}
		last[p.ID] = p
	}
	out := make([]rebuild.ProductRecord, len(order))
	for i, id := range order {
		out[i] = last[id]
	}
	return out
}

func stockRec(id string, v, available int64) rebuild.StockRecord {
	return rebuild.StockRecord{ProductID: id, Available: available, Version: v, Retired: false}
}

// swapHook is the index with something happening just before the alias swap.
type swapHook struct {
	*esindex.Index
	before func()
}

func (s swapHook) SwapAlias(ctx context.Context, index string) ([]string, error) {
	if s.before != nil {
		s.before()
	}
	return s.Index.SwapAlias(ctx, index)
}

// expected is the document the owners' final state implies.
func expected(p rebuild.ProductRecord, st *rebuild.StockRecord) search.Document {
	ops := []search.Op{search.ProductOp(p)}
	if st != nil {
		ops = append(ops, search.StockOp(*st))
	}
	d, _ := search.Fold(nil, ops)
	return d
}

// The streams have lost their early events (purged, as retention would), so a replay from
// sequence 1 would lose products unchanged for longer than the retention. The rebuild
// notes each stream's end, applies the owners' exports, and replays the tails: the result
// equals the owners' state, including changes made while the exports were read (tail),
// after the tails ended (caught up between drift rounds) and just before the swap (caught
// up after it). Real Elasticsearch index; a real nats-server in the test process.
func TestRebuildFromExportsAndTailsWhenEarlyEventsAreGone(t *testing.T) {
	x := newIndex(t)
	ctx := context.Background()
	js := rebuildtest.JetStream(t)
	catSt := rebuildtest.Stream(t, js, "CATALOG", "catalog")
	invSt := rebuildtest.Stream(t, js, "INVENTORY", "inventory")

	ids := make([]string, 12)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	slices.Sort(ids) // export order
	var catEvs, invEvs []events.Envelope
	products := rebuildtest.Products()
	products.PageSize = 5
	stock := rebuildtest.Stock()
	stock.PageSize = 5
	for i, id := range ids {
		p := product(id, 1, fmt.Sprintf("Kettle %d", i), false)
		catEvs = append(catEvs, eventOf(t, p))
		switch i % 4 {
		case 1: // renamed
			p = product(id, 2, fmt.Sprintf("Kettle %d renamed", i), false)
			catEvs = append(catEvs, eventOf(t, p))
		case 2: // deleted (inventory retired it)
			p = product(id, 2, p.Name, true)
			catEvs = append(catEvs, eventOf(t, p))
		}
		products.Set(p)
		s := stockRec(id, 1, int64(i))
		invEvs = append(invEvs, stockEvent(t, id, 1, s.Available))
		if i%4 == 2 {
			s = rebuild.StockRecord{ProductID: id, Available: 0, Version: 2, Retired: true}
			invEvs = append(invEvs, stockEvent(t, id, 2, 0))
		}
		stock.Set(s)
	}
	rebuildtest.Publish(t, js, catEvs...)
	rebuildtest.Publish(t, js, invEvs...)
	// Retention: only the last two events of each stream are left.
	rebuildtest.Purge(t, catSt, uint64(len(catEvs)-1))
	rebuildtest.Purge(t, invSt, uint64(len(invEvs)-1))

	// While the catalog's export is read, the owner renames the first product (already
	// served on page 1): only the tail has it.
	first := ids[0]
	products.BeforePage = func(page int) {
		if page == 2 {
			p := product(first, 2, "Kettle zero renamed", false)
			rebuildtest.Publish(t, js, eventOf(t, p))
			products.Set(p)
		}
	}
	// While inventory's export is read (the catalog's tail has ended), the catalog renames
	// the fourth product: the first drift check sees it, the catch-up brings it.
	late := ids[3]
	stock.BeforePage = func(page int) {
		if page == 1 {
			p := product(late, 2, "Kettle three late", false)
			rebuildtest.Publish(t, js, eventOf(t, p))
			products.Set(p)
		}
	}
	// Just before the swap inventory sells out the fifth product: caught up after the swap.
	soldOut := ids[4]
	idx := swapHook{Index: x, before: func() {
		rebuildtest.Publish(t, js, stockEvent(t, soldOut, 2, 0))
		stock.Set(stockRec(soldOut, 2, 0))
	}}

	svc := search.NewService(idx, rebuild.New(js, 3, quiet()), search.Exports{Products: products, Stock: stock},
		testCatalog{Export: products}, search.Options{DriftRounds: 3, DriftPause: time.Millisecond}, quiet())
	// The live index holds a product no owner knows (a lost delete): the rebuild drops it.
	stray := uuid.NewString()
	handleAll(t, svc, eventOf(t, product(stray, 1, "Stray", false)))

	rep, err := svc.Rebuild(ctx)
	if err != nil {
		t.Fatalf("rebuild: %v (report %+v)", err, rep)
	}
	if !rep.Swapped || rep.DriftRounds != 2 || !rep.Drift.InSync() {
		t.Errorf("swapped %v after %d drift rounds, last %+v; want swapped after 2", rep.Swapped, rep.DriftRounds, rep.Drift)
	}
	for _, sr := range rep.Sources {
		if sr.TailFrom != sr.Noted+1 || sr.FirstSequence <= 1 || sr.Exported == 0 {
			t.Errorf("%s: %+v; want the tail from the noted sequence + 1 on a stream whose start is gone", sr.Source, sr)
		}
	}
	if got := []int{rep.Sources[0].Replayed, rep.Sources[1].Replayed}; !cmp.Equal(got, []int{2, 0}) {
		t.Errorf("replayed from the tails %v, want [2 0] (the rename during the export, the late rename)", got)
	}
	if len(rep.CaughtUp) != 2 || rep.CaughtUp[1].Applied != 1 || rep.CaughtUp[0].Applied != 0 {
		t.Errorf("caught up after the swap %+v, want the sell-out only", rep.CaughtUp)
	}

	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range products.Items {
		st := stock.Items[slices.IndexFunc(stock.Items, func(s rebuild.StockRecord) bool { return s.ProductID == p.ID })]
		got, found, err := x.Get(ctx, p.ID)
		if err != nil || !found {
			t.Fatalf("document %s: found %v, %v", p.ID, found, err)
		}
		if diff := cmp.Diff(got, expected(p, &st)); diff != "" {
			t.Errorf("document %s (-got +want):\n%s", p.ID, diff)
		}
	}
	if _, found, _ := x.Get(ctx, stray); found {
		t.Errorf("the stray product %s survived the rebuild", stray)
	}
	if d, err := svc.Drift(ctx); err != nil || !d.InSync() {
		t.Errorf("drift after the rebuild: %+v, %v", d, err)
	}
}

// When the new index disagrees with the catalog on every drift round (here: the catalog
// lists a product its export left out), the swap is refused: the report names the
// product, the alias stays on the old index, the new index is deleted, and
// POST /admin/rebuild answers 409 with the report.
func TestRebuildIsRefusedWhenTheNewIndexDisagreesWithTheCatalog(t *testing.T) {
	x := newIndex(t)
	ctx := context.Background()
	js := rebuildtest.JetStream(t)
	rebuildtest.Stream(t, js, "CATALOG", "catalog")
	// No INVENTORY stream: inventory has not started yet; the rebuild goes on without it.
	products := rebuildtest.Products(product(uuid.NewString(), 1, "Kettle", false), product(uuid.NewString(), 3, "Old", true))
	missing := uuid.NewString()
	svc := search.NewService(x, rebuild.New(js, 0, quiet()), search.Exports{Products: products, Stock: rebuildtest.Stock()},
		testCatalog{Export: products, Extra: map[string]int64{missing: 4}},
		search.Options{DriftRounds: 2, DriftPause: time.Millisecond}, quiet())
	live := uuid.NewString()
	handleAll(t, svc, eventOf(t, product(live, 1, "Live", false)))
	// Elasticsearch shows a write to searches after a refresh: make the listing below see it.
	if err := x.Refresh(ctx, ""); err != nil {
		t.Fatal(err)
	}
	before, err := x.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	rep, err := svc.Rebuild(ctx)
	if !errors.Is(err, search.ErrDriftRefused) {
		t.Fatalf("rebuild: %v, want ErrDriftRefused", err)
	}
	if rep.Swapped || rep.DriftRounds != 2 || rep.Drift == nil || !cmp.Equal(rep.Drift.Missing, []string{missing}) ||
		len(rep.Drift.Extra) != 0 || len(rep.Drift.VersionMismatch) != 0 {
		t.Errorf("report %+v (drift %+v); want not swapped after 2 rounds, missing %s", rep, rep.Drift, missing)
	}
	after, err := x.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(after, before); diff != "" {
		t.Errorf("the alias moved (-got +want):\n%s", diff)
	}
	if err := esindex.Do(ctx, x, http.MethodHead, "/"+rep.Index, nil); err == nil {
		t.Errorf("the refused index %s still exists", rep.Index)
	}

	srv := httptest.NewServer(httpapi.New(svc, quiet(), nil, nil).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/admin/rebuild", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body httpapi.RefusedRebuild
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "application/problem+json" ||
		body.Report.Drift == nil || !cmp.Equal(body.Report.Drift.Missing, []string{missing}) {
		t.Errorf("POST /admin/rebuild = %d %s %+v, want 409 problem with the drift", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// Replay ends at the stream's last sequence taken when the tail starts: events published
// while it runs are neither waited for nor applied (the next catch-up takes them).
func TestTailEndsAtTheLastSequenceTakenAtItsStart(t *testing.T) {
	js := rebuildtest.JetStream(t)
	rebuildtest.Stream(t, js, "INVENTORY", "inventory")
	id := uuid.NewString()
	for v := range int64(5) {
		rebuildtest.Publish(t, js, stockEvent(t, id, v+1, v))
	}
	var seen []int64
	rb := rebuild.New(js, 2, quiet())
	rep, err := rb.Tail(context.Background(), "INVENTORY", search.StockSubjects, 2, func(_ context.Context, b []events.Envelope) error {
		for _, e := range b {
			seen = append(seen, e.Sequence)
		}
		if len(seen) == 2 { // more events arrive while the tail runs
			rebuildtest.Publish(t, js, stockEvent(t, id, 6, 6), stockEvent(t, id, 7, 7))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{2, 3, 4, 5}; !cmp.Equal(seen, want) || rep.To != 5 || rep.Applied != 4 {
		t.Errorf("tail %+v applied %v, want %v up to 5", rep, seen, want)
	}
	// A tail that starts before the stream's first message (retention removed it since the
	// note) is an error, not a silent gap.
	st, err := js.Stream(context.Background(), "INVENTORY")
	if err != nil {
		t.Fatal(err)
	}
	rebuildtest.Purge(t, st, 7)
	if _, err := rb.Tail(context.Background(), "INVENTORY", search.StockSubjects, 6, func(context.Context, []events.Envelope) error { return nil }); !errors.Is(err, rebuild.ErrTailGone) {
		t.Errorf("tail from a purged sequence: %v, want ErrTailGone", err)
	}
}
