package orders_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/orders/internal/consumer"
	"polyshop/services/orders/internal/httpapi"
	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/shared/events"
	"polyshop/shared/rebuild"
	"polyshop/shared/rebuild/rebuildtest"
)

func envelope(t *testing.T, typ, subject string, seq int64, data any) events.Envelope {
	t.Helper()
	e, err := events.New(context.Background(), typ, subject, seq, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// userEvent is the users event that brought a user to the record's state.
func userEvent(t *testing.T, r rebuild.AddressRecord) events.Envelope {
	t.Helper()
	switch {
	case r.Deleted:
		return envelope(t, events.TypeUserDeleted, r.UserID, r.Version, events.UserDeleted{UserID: r.UserID})
	case r.Address != nil:
		return envelope(t, events.TypeUserAddressChanged, r.UserID, r.Version, events.UserAddressChanged{UserID: r.UserID, Address: *r.Address})
	}
	return envelope(t, events.TypeUserRegistered, r.UserID, r.Version, events.UserRegistered{UserID: r.UserID, Email: "x@example.com", Role: "customer"})
}

// productEvent is the catalog event that brought a product to the record's state.
func productEvent(t *testing.T, r rebuild.ProductRecord) events.Envelope {
	t.Helper()
	switch {
	case r.Deleted:
		return envelope(t, events.TypeProductDeleted, r.ID, r.Version, events.ProductDeleted{ProductID: r.ID})
	case r.Version == 1:
		return envelope(t, events.TypeProductCreated, r.ID, 1, events.ProductCreated{ProductID: r.ID, Name: r.Name, Price: r.Price})
	}
	return envelope(t, events.TypeProductUpdated, r.ID, r.Version, events.ProductUpdated{ProductID: r.ID, Name: r.Name, Price: r.Price})
}

func addr(street string) *events.Address {
	return &events.Address{Street: street, City: "Lyon", PostalCode: "69001", Country: "FR"}
}

func prod(id string, v int64, name string, amount int64, deleted bool) rebuild.ProductRecord {
	return rebuild.ProductRecord{ID: id, Name: name, Price: events.Money{Amount: amount, Currency: "EUR"}, Version: v, Deleted: deleted}
}

type copyRow struct {
	Address *events.Address
}

type productRow struct {
	Name    string
	Amount  int64
	Deleted bool
}

// copies reads the local copies as they are stored.
func copies(t *testing.T, e orderstest.Env) (map[string]copyRow, map[string]productRow) {
	t.Helper()
	ctx := context.Background()
	cs := map[string]copyRow{}
	rows, err := e.Pool.Query(ctx, `SELECT user_id::text, street, city, postal_code, country FROM customers`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var street, city, postal, country *string
		if err := rows.Scan(&id, &street, &city, &postal, &country); err != nil {
			t.Fatal(err)
		}
		r := copyRow{}
		if street != nil {
			r.Address = &events.Address{Street: *street, City: *city, PostalCode: *postal, Country: *country}
		}
		cs[id] = r
	}
	rows.Close()
	ps := map[string]productRow{}
	rows, err = e.Pool.Query(ctx, `SELECT product_id::text, name, price_amount, deleted_at IS NOT NULL FROM products`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r productRow
		if err := rows.Scan(&id, &r.Name, &r.Amount, &r.Deleted); err != nil {
			t.Fatal(err)
		}
		ps[id] = r
	}
	rows.Close()
	return cs, ps
}

// The USERS and CATALOG streams have lost their early events (purged, as retention would),
// and the copies are wrong in three ways: a stale address, a deletion never heard of, a row
// lost although its version was recorded. Rebuilding from the owners' exports plus the
// tails brings the copies to the owners' state, including a change made while the export
// was read (only the tail has it); running it again changes nothing. Real PostgreSQL
// schema; a real nats-server in the test process.
func TestRebuildCopiesFromExportsWhenEarlyEventsAreGone(t *testing.T) {
	e := orderstest.New(t, orderstest.SlowTiming)
	ctx := context.Background()
	js := rebuildtest.JetStream(t)
	usersSt := rebuildtest.Stream(t, js, "USERS", "users")
	catalogSt := rebuildtest.Stream(t, js, "CATALOG", "catalog")
	usersFeed, catalogFeed := consumer.CopyFeeds("orders")

	u := make([]string, 5)
	for i := range u {
		u[i] = uuid.NewString()
	}
	slices.Sort(u) // export order
	// The owner's history and final state: u0 moved twice; u1 has no address; u2 was
	// deleted; u3 has one address; u4 moved once.
	history := [][]rebuild.AddressRecord{
		{{UserID: u[0], Version: 1}, {UserID: u[0], Address: addr("0 First St"), Version: 2}, {UserID: u[0], Address: addr("0 Second St"), Version: 3}},
		{{UserID: u[1], Version: 1}},
		{{UserID: u[2], Version: 1}, {UserID: u[2], Address: addr("2 Gone St"), Version: 2}, {UserID: u[2], Version: 3, Deleted: true}},
		{{UserID: u[3], Version: 1}, {UserID: u[3], Address: addr("3 Main St"), Version: 2}},
		{{UserID: u[4], Version: 1}, {UserID: u[4], Address: addr("4 Old St"), Version: 2}, {UserID: u[4], Address: addr("4 New St"), Version: 3}},
	}
	addresses := &rebuildtest.Export[rebuild.AddressRecord]{Key: func(r rebuild.AddressRecord) string { return r.UserID }, PageSize: 2}
	var userEvs []events.Envelope
	for _, h := range history {
		for _, r := range h {
			userEvs = append(userEvs, userEvent(t, r))
		}
		addresses.Set(h[len(h)-1])
	}
	p := make([]string, 3)
	for i := range p {
		p[i] = uuid.NewString()
	}
	products := &rebuildtest.Export[rebuild.ProductRecord]{Key: func(r rebuild.ProductRecord) string { return r.ID }, PageSize: 2}
	var productEvs []events.Envelope
	for _, h := range [][]rebuild.ProductRecord{
		{prod(p[0], 1, "Mug", 1250, false)},
		{prod(p[1], 1, "Kettle", 3000, false), prod(p[1], 2, "Kettle XL", 3500, false)},
		{prod(p[2], 1, "Lamp", 900, false), prod(p[2], 2, "Lamp", 900, true)},
	} {
		for _, r := range h {
			productEvs = append(productEvs, productEvent(t, r))
		}
		products.Set(h[len(h)-1])
	}

	// The copy as a consumer left it: u2's deletion, u4's move and everything of the
	// catalog after creation never arrived; u3's row is gone although its version was kept.
	apply := func(consumer string, evs ...events.Envelope) {
		t.Helper()
		for _, ev := range evs {
			if err := e.Svc.ApplyEvent(ctx, consumer, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(usersFeed.Consumer, userEvs[0], userEvs[1], userEvs[2], userEvs[3], userEvs[4], userEvs[5], userEvs[7], userEvs[8], userEvs[9], userEvs[10])
	apply(catalogFeed.Consumer, productEvs[0], productEvs[1], productEvs[3])
	if _, err := e.Pool.Exec(ctx, `DELETE FROM customers WHERE user_id = $1`, u[3]); err != nil {
		t.Fatal(err)
	}

	rebuildtest.Publish(t, js, userEvs...)
	rebuildtest.Publish(t, js, productEvs...)
	rebuildtest.Purge(t, usersSt, uint64(len(userEvs)))        // only the last event is left
	rebuildtest.Purge(t, catalogSt, uint64(len(productEvs)-1)) // only the last two

	// While the export is read, u0 (already served on page 1) moves again: only the tail
	// has it.
	addresses.BeforePage = func(page int) {
		if page == 2 {
			r := rebuild.AddressRecord{UserID: u[0], Address: addr("0 Third St"), Version: 4}
			rebuildtest.Publish(t, js, userEvent(t, r))
			addresses.Set(r)
		}
	}
	svc := orders.NewService(e.Store, orderstest.SlowTiming, nil)
	svc.SetCopySources(orders.CopySources{Rebuilder: rebuild.New(js, 0, slog.New(slog.NewTextHandler(io.Discard, nil))),
		Addresses: addresses, Products: products, Users: usersFeed, Catalog: catalogFeed})

	rep, err := svc.RebuildCopies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []rebuild.SourceReport{
		{Source: "users", Stream: "USERS", FirstSequence: uint64(len(userEvs)), Noted: uint64(len(userEvs)), Exported: 5,
			TailFrom: uint64(len(userEvs)) + 1, TailTo: uint64(len(userEvs)) + 1, Replayed: 1},
		{Source: "catalog", Stream: "CATALOG", FirstSequence: uint64(len(productEvs) - 1), Noted: uint64(len(productEvs)), Exported: 3,
			TailFrom: uint64(len(productEvs)) + 1, TailTo: uint64(len(productEvs)), Replayed: 0},
	}
	for i := range rep.Sources {
		rep.Sources[i].DurationMs = 0
	}
	if diff := cmp.Diff(rep.Sources, want); diff != "" {
		t.Errorf("report (-got +want):\n%s", diff)
	}

	wantCustomers := map[string]copyRow{}
	for _, r := range addresses.Items {
		if !r.Deleted {
			wantCustomers[r.UserID] = copyRow{Address: r.Address}
		}
	}
	wantProducts := map[string]productRow{}
	for _, r := range products.Items {
		wantProducts[r.ID] = productRow{Name: r.Name, Amount: r.Price.Amount, Deleted: r.Deleted}
	}
	check := func(when string) {
		t.Helper()
		gotC, gotP := copies(t, e)
		if diff := cmp.Diff(gotC, wantCustomers); diff != "" {
			t.Errorf("%s: customers (-got +want):\n%s", when, diff)
		}
		if diff := cmp.Diff(gotP, wantProducts); diff != "" {
			t.Errorf("%s: products (-got +want):\n%s", when, diff)
		}
	}
	check("after the rebuild")
	if wantCustomers[u[0]].Address.Street != "0 Third St" {
		t.Fatalf("the test's owner state lacks the move made during the export")
	}

	// Again, over POST /admin/rebuild-copies: the same state, nothing replayed.
	addresses.BeforePage = nil
	srv := httptest.NewServer(httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/admin/rebuild-copies", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var again orders.CopiesReport
	err = json.NewDecoder(resp.Body).Decode(&again)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(again.Sources) != 2 || again.Sources[0].Replayed != 0 || again.Sources[0].Exported != 5 {
		t.Errorf("POST /admin/rebuild-copies = %d %+v, %v", resp.StatusCode, again, err)
	}
	check("after the second rebuild")
	if resp, err := http.Get(srv.URL + "/admin/rebuild-copies"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /admin/rebuild-copies = %v, %v; want 405", resp.StatusCode, err)
	}
}
