package mongostore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/services/catalog/internal/mongostore"
	"polyshop/shared/events"
	"polyshop/shared/testenv/mongotest"
	"polyshop/shared/testenv/natstest"
)

func newStore(t *testing.T) (*mongostore.Store, *catalog.Service) {
	t.Helper()
	db := mongotest.Database(t, "CATALOG_MONGODB_URI")
	ctx := context.Background()
	s, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Twice: index creation must be idempotent (FerretDB v1 drops the connection when asked
	// to create an index that exists).
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	return s, catalog.NewService(s)
}

func kettle() catalog.NewProduct {
	stock := int64(7)
	return catalog.NewProduct{
		Name: "Steel kettle", Description: "Boils water", Category: "kettle",
		Price:      &catalog.Money{Amount: 2999, Currency: "EUR"},
		Attributes: map[string]any{"capacityMl": 1700.0, "material": "steel"}, InitialStock: &stock,
	}
}

// pendingTypes reads the event types stored inside the product's document.
func pendingTypes(t *testing.T, s *mongostore.Store, id string) []string {
	t.Helper()
	var doc struct {
		Outbox []struct {
			Type string `bson:"type"`
		} `bson:"_outbox"`
	}
	if err := s.Collection().FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	types := []string{}
	for _, e := range doc.Outbox {
		types = append(types, e.Type)
	}
	return types
}

func TestChangesCarryTheirEventsInTheDocument(t *testing.T) {
	s, svc := newStore(t)
	ctx := context.Background()
	p, err := svc.Create(ctx, kettle())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pendingTypes(t, s, p.ID), []string{events.TypeProductCreated}); diff != "" {
		t.Errorf("after create (-got +want):\n%s", diff)
	}
	v := int64(1)
	newPrice := catalog.Money{Amount: 2499, Currency: "EUR"}
	p2, err := svc.Update(ctx, p.ID, catalog.Patch{Price: &newPrice, Version: &v})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Version != 2 || p2.Price != newPrice {
		t.Errorf("updated product = version %d price %+v, want 2 and %+v", p2.Version, p2.Price, newPrice)
	}
	want := []string{events.TypeProductCreated, events.TypeProductUpdated, events.TypeProductPriceChanged}
	if diff := cmp.Diff(pendingTypes(t, s, p.ID), want); diff != "" {
		t.Errorf("after price change (-got +want):\n%s", diff)
	}
	// A patch that changes nothing makes no version and no event.
	same := "Steel kettle"
	p3, err := svc.Update(ctx, p.ID, catalog.Patch{Name: &same})
	if err != nil || p3.Version != 2 {
		t.Errorf("no-op patch: version %d err %v, want 2 and nil", p3.Version, err)
	}
	got, err := svc.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, p2); diff != "" {
		t.Errorf("Get (-got +want):\n%s", diff)
	}
}

func TestStaleVersionIsAConflict(t *testing.T) {
	_, svc := newStore(t)
	ctx := context.Background()
	p, err := svc.Create(ctx, kettle())
	if err != nil {
		t.Fatal(err)
	}
	name := "Kettle v2"
	v1 := int64(1)
	if _, err := svc.Update(ctx, p.ID, catalog.Patch{Name: &name, Version: &v1}); err != nil {
		t.Fatal(err)
	}
	other := "Kettle from a stale read"
	if _, err := svc.Update(ctx, p.ID, catalog.Patch{Name: &other, Version: &v1}); !errors.Is(err, catalog.ErrVersionConflict) {
		t.Errorf("update with stale version: err = %v, want ErrVersionConflict", err)
	}
	if err := svc.Delete(ctx, p.ID, &v1); !errors.Is(err, catalog.ErrVersionConflict) {
		t.Errorf("delete with stale version: err = %v, want ErrVersionConflict", err)
	}
	v2 := int64(2)
	if err := svc.Delete(ctx, p.ID, &v2); err != nil {
		t.Fatalf("delete at current version: %v", err)
	}
	if _, err := svc.Get(ctx, p.ID); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("get after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := svc.Update(ctx, p.ID, catalog.Patch{Name: &name}); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("update after delete: err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentUpdatesEachGetTheirOwnVersion(t *testing.T) {
	_, svc := newStore(t)
	ctx := context.Background()
	p, err := svc.Create(ctx, kettle())
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	versions := make(chan int64, n)
	for i := range n {
		wg.Go(func() {
			price := catalog.Money{Amount: int64(1000 + i), Currency: "EUR"}
			got, err := svc.Update(ctx, p.ID, catalog.Patch{Price: &price})
			if err != nil {
				t.Errorf("update %d: %v", i, err)
				return
			}
			versions <- got.Version
		})
	}
	wg.Wait()
	close(versions)
	seen := map[int64]bool{}
	for v := range versions {
		if seen[v] {
			t.Errorf("version %d handed out twice", v)
		}
		seen[v] = true
	}
	final, err := svc.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Version != n+1 {
		t.Errorf("final version = %d, want %d", final.Version, n+1)
	}
}

func TestListPagesByCategory(t *testing.T) {
	_, svc := newStore(t)
	ctx := context.Background()
	var kettles []string
	for i := range 5 {
		np := kettle()
		if i%2 == 1 {
			np = catalog.NewProduct{Name: "Book", Category: "book", Price: &catalog.Money{Amount: 999, Currency: "EUR"},
				Attributes: map[string]any{"author": "A. Writer", "pages": 100.0}}
		}
		p, err := svc.Create(ctx, np)
		if err != nil {
			t.Fatal(err)
		}
		if np.Category == "kettle" {
			kettles = append(kettles, p.ID)
		}
	}
	var got []string
	after := ""
	for range 10 {
		page, next, err := svc.List(ctx, catalog.ListQuery{Category: "kettle", After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if diff := cmp.Diff(got, kettles); diff != "" {
		t.Errorf("kettles paged (-got +want):\n%s", diff)
	}
	n, err := svc.Count(ctx)
	if err != nil || n != 5 {
		t.Errorf("Count = %d, %v; want 5", n, err)
	}
}

// TestRelayPublishesEachEventOnce runs the real relay path (Drain with the broker's
// Publish) into the tests' own namespace (test.catalog.* in TEST_CATALOG, never the live
// CATALOG) and counts what arrives for this test's product.
func TestRelayPublishesEachEventOnce(t *testing.T) {
	s, svc := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc := natstest.TestConn(t)
	stream := natstest.Stream(t, nc, "catalog")
	pub := natstest.Publisher{C: nc}
	durable := natstest.Durable(t, nc, stream, "catalogtest")
	subjects := natstest.Subjects(events.TypeProductCreated, events.TypeProductUpdated,
		events.TypeProductPriceChanged, events.TypeProductDeleted)
	cons, err := nc.JetStream().CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: durable, FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckNonePolicy,
	})
	if err != nil {
		t.Fatal(err)
	}

	p, err := svc.Create(ctx, kettle())
	if err != nil {
		t.Fatal(err)
	}
	price := catalog.Money{Amount: 1999, Currency: "EUR"}
	if _, err := svc.Update(ctx, p.ID, catalog.Patch{Price: &price}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, p.ID, nil); err != nil {
		t.Fatal(err)
	}

	ob := mongostore.NewOutbox(s, time.Hour)
	var published []events.Envelope
	publish := func(ctx context.Context, e events.Envelope) error {
		published = append(published, e)
		return pub.Publish(ctx, e)
	}
	// The first Drain scans (the scan interval has not started); later ones find nothing.
	n, err := ob.Drain(ctx, 100, publish)
	if err != nil || n != 4 {
		t.Fatalf("first drain: %d events, %v; want 4, nil", n, err)
	}
	if n, err := ob.Drain(ctx, 100, publish); err != nil || n != 0 {
		t.Fatalf("second drain: %d events, %v; want 0, nil", n, err)
	}
	if left := pendingTypes(t, s, p.ID); len(left) != 0 {
		t.Errorf("events left in the document after the relay: %v", left)
	}
	// A relay that died after publishing but before marking publishes again: the broker
	// drops the copy (same event id within the duplicate window).
	if err := pub.Publish(ctx, published[0]); err != nil {
		t.Fatal(err)
	}

	var got []string
	var seqs []int64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(got) < 4 {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := events.Parse(m.Data())
			if err != nil || e.Subject != p.ID {
				continue
			}
			got = append(got, e.Type)
			seqs = append(seqs, e.Sequence)
		}
	}
	// Drain for a moment more: a duplicate would arrive now.
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if e, err := events.Parse(m.Data()); err == nil && e.Subject == p.ID {
			got = append(got, e.Type)
			seqs = append(seqs, e.Sequence)
		}
	}
	want := []string{events.TypeProductCreated, events.TypeProductUpdated, events.TypeProductPriceChanged, events.TypeProductDeleted}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events on the stream for the product (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(seqs, []int64{1, 2, 2, 3}); diff != "" {
		t.Errorf("sequences (-got +want):\n%s", diff)
	}
}
