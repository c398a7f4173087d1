package audit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckOrder(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	eur := func(n int64) Money { return Money{Amount: n, Currency: "EUR"} }
	items := []Item{{ProductID: "p1", Quantity: 2}}
	order := func(status string) Order {
		return Order{ID: "o1", Status: status, Items: items, Total: eur(200), CreatedAt: now.Add(-time.Minute)}
	}
	refunded := eur(200)
	half := eur(100)
	cases := []struct {
		name string
		f    Facts
		want []string // violation kinds
	}{
		{"confirmed, consistent", Facts{Order: order("CONFIRMED"),
			Payments:     []Payment{{ID: "pay", Amount: eur(200), Status: "charged"}},
			Reservations: []Reservation{{ID: "r", Status: "committed", Items: items}}}, nil},
		{"confirmed, no charge", Facts{Order: order("CONFIRMED"),
			Reservations: []Reservation{{ID: "r", Status: "committed", Items: items}}}, []string{"confirmed-charge"}},
		{"confirmed, wrong amount and items", Facts{Order: order("CONFIRMED"),
			Payments:     []Payment{{ID: "pay", Amount: eur(100), Status: "charged"}},
			Reservations: []Reservation{{ID: "r", Status: "committed", Items: []Item{{ProductID: "p1", Quantity: 1}}}}},
			[]string{"confirmed-charge", "confirmed-stock"}},
		{"confirmed, refunded, reservation released", Facts{Order: order("CONFIRMED"),
			Payments:     []Payment{{ID: "pay", Amount: eur(200), Status: "refunded", Refunded: &refunded}},
			Reservations: []Reservation{{ID: "r", Status: "released", Items: items}}},
			[]string{"confirmed-charge", "confirmed-stock"}},
		{"cancelled, refunded and released", Facts{Order: order("CANCELLED"),
			Payments:     []Payment{{ID: "pay", Amount: eur(200), Status: "refunded", Refunded: &refunded}},
			Reservations: []Reservation{{ID: "r", Status: "released", Items: items}}}, nil},
		{"cancelled, declined, tombstoned", Facts{Order: order("CANCELLED"),
			Payments:     []Payment{{ID: "pay", Amount: eur(200), Status: "declined"}},
			Reservations: []Reservation{{ID: "r", Status: "tombstone"}}}, nil},
		{"cancelled, money and stock held", Facts{Order: order("CANCELLED"),
			Payments:     []Payment{{ID: "pay", Amount: eur(200), Status: "charged"}},
			Reservations: []Reservation{{ID: "r", Status: "active", Items: items}}},
			[]string{"cancelled-money", "cancelled-stock"}},
		{"cancelled, half refunded", Facts{Order: order("CANCELLED"),
			Payments: []Payment{{ID: "pay", Amount: eur(200), Status: "refunded", Refunded: &half}}},
			[]string{"cancelled-money"}},
		{"pending, young", Facts{Order: order("PENDING")}, nil},
		{"pending, stuck", Facts{Order: Order{ID: "o1", Status: "PENDING", CreatedAt: now.Add(-time.Hour)}}, []string{"stuck"}},
	}
	for _, c := range cases {
		var got []string
		for _, v := range CheckOrder(c.f, now, 2*time.Minute) {
			got = append(got, v.Kind)
			if v.IDs[0] != "o1" {
				t.Errorf("%s: %v does not name the order first", c.name, v)
			}
		}
		if diff := cmp.Diff(got, c.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", c.name, diff)
		}
	}
}

func TestCheckLedger(t *testing.T) {
	facts := []Facts{
		{Reservations: []Reservation{{Status: "active", Items: []Item{{ProductID: "p", Quantity: 2}}}}},
		{Reservations: []Reservation{{Status: "committed", Items: []Item{{ProductID: "p", Quantity: 3}, {ProductID: "q", Quantity: 9}}}}},
		{Reservations: []Reservation{{Status: "released", Items: []Item{{ProductID: "p", Quantity: 4}}}}},
	}
	cases := []struct {
		name  string
		l     Ledger
		exact bool
		want  []string
	}{
		{"balanced, matching", Ledger{ProductID: "p", Initial: 10, Restocked: 1, Available: 6, Reserved: 2, Sold: 3}, true, nil},
		{"unbalanced", Ledger{ProductID: "p", Initial: 10, Available: 6, Reserved: 2, Sold: 3}, false, []string{"ledger"}},
		{"balanced, sold twice", Ledger{ProductID: "p", Initial: 10, Available: 2, Reserved: 2, Sold: 6}, true, []string{"ledger-reservations"}},
		{"not exact: reservations not compared", Ledger{ProductID: "p", Initial: 10, Available: 2, Reserved: 2, Sold: 6}, false, nil},
		{"held by the reservations", Ledger{ProductID: "p", Initial: 10, Available: 8, Reserved: 2, Held: ptr(2)}, false, nil},
		// A reserve applied three times (inventory.dedup off, duplicates 3): balanced, but
		// 4 of the 6 reserved units belong to no reservation.
		{"reserved twice", Ledger{ProductID: "p", Initial: 10, Available: 4, Reserved: 6, Held: ptr(2)}, false, []string{"ledger-held"}},
		{"no held reported: not checked", Ledger{ProductID: "p", Initial: 10, Available: 4, Reserved: 6}, false, nil},
	}
	for _, c := range cases {
		var got []string
		for _, v := range CheckLedger(c.l, facts, c.exact) {
			got = append(got, v.Kind)
		}
		if diff := cmp.Diff(got, c.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", c.name, diff)
		}
	}
}

func ptr(n int64) *int64 { return &n }
