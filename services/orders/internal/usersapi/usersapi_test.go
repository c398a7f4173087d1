package usersapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/orders/orderstest"
	"polyshop/services/orders/internal/usersapi"
	"polyshop/shared/events"
)

// usersStandIn answers GET /users/{id} like users' internal API: the known user with the
// address it holds now (a change whose event orders never got), 404 for anyone else.
func usersStandIn(t *testing.T, known string, addr events.Address) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/users/"+known {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":404}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"` + known + `","email":"a@example.com","name":"Ada","role":"customer","address":{"street":"` +
			addr.Street + `","city":"` + addr.City + `","postalCode":"` + addr.PostalCode + `","country":"` + addr.Country + `"},"version":3}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The pattern switch orders.addressCopy on a real orders schema: async places with the
// local copy whatever users holds; sync places with users' current address (the drifted
// copy does not matter, a user without a copy can order), a user users does not know is
// 422 userId, and users not answering refuses the order (ErrUsersUnavailable, 503).
func TestAddressCopyModes(t *testing.T) {
	fresh := events.Address{Street: "9 Fresh St", City: "Porto", PostalCode: "4000-001", Country: "PT"}
	cases := []struct {
		name       string
		sync       bool
		usersDown  bool
		noCopy     bool
		unknown    bool
		wantStreet string
		wantErr    error
		wantField  string
	}{
		{name: "async: the local copy", wantStreet: "1 Main St"},
		{name: "async: no copy, no order", noCopy: true, wantField: "userId"},
		{name: "sync: users' current address", sync: true, wantStreet: "9 Fresh St"},
		{name: "sync: no copy needed", sync: true, noCopy: true, wantStreet: "9 Fresh St"},
		{name: "sync: users does not know the user", sync: true, unknown: true, wantField: "userId"},
		{name: "sync: users down, no order", sync: true, usersDown: true, wantErr: orders.ErrUsersUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := orderstest.New(t, orderstest.SlowTiming)
			user := uuid.Must(uuid.NewV7()).String()
			if !c.noCopy {
				user = e.Customer(t) // copy: 1 Main St
			}
			known := user
			if c.unknown {
				known = uuid.NewString()
			}
			srv := usersStandIn(t, known, fresh)
			if c.usersDown {
				srv.Close()
			}
			var sync atomic.Bool
			sync.Store(c.sync)
			e.Svc.SetAddressSource(orders.AddressSource{Sync: sync.Load,
				Read: usersapi.Reader(srv.Client(), srv.URL, 2*time.Second)})
			p := e.Product(t, "Mug", 1250, "EUR")
			placed, err := e.Svc.Place(context.Background(), user, uuid.NewString(), []orders.Line{{ProductID: p, Quantity: 1}})
			var invalid orders.Invalid
			switch {
			case c.wantErr != nil:
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v, want %v", err, c.wantErr)
				}
				return
			case c.wantField != "":
				if !errors.As(err, &invalid) || invalid[0].Field != c.wantField {
					t.Fatalf("err %v, want a validation error on %s", err, c.wantField)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			o, err := e.Svc.Get(context.Background(), placed.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.ShippingAddress == nil {
				t.Fatal("no shipping address")
			}
			if diff := cmp.Diff(o.ShippingAddress.Street, c.wantStreet); diff != "" {
				t.Errorf("street (-got +want):\n%s", diff)
			}
		})
	}
}
