package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// platform serves owner answers recorded in testdata/platform.json by request URI; an
// unrecorded URI is a 404 problem, as an owner would answer an unknown order.
func platform(t *testing.T) *httptest.Server {
	t.Helper()
	b, err := os.ReadFile("testdata/platform.json")
	if err != nil {
		t.Fatal(err)
	}
	var answers map[string]json.RawMessage
	if err := json.Unmarshal(b, &answers); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := answers[r.URL.RequestURI()]
		if !ok {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":404}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Run reads every page of every owner: every payment (an orphan, a refund above its charge;
// a payment whose order was placed after the order list was read is not an orphan), every
// product's ledger (one never ordered, whose 5 + 3 != 7 was recorded broken on purpose),
// and the dead letters through the services' operator API, where an explained letter is
// not a violation; a DLQ stream of a service without a known address is only counted.
func TestRunReadsEveryOwner(t *testing.T) {
	srv := platform(t)
	cases := []struct {
		name       string
		since      time.Time
		explained  map[LetterKey]string
		services   map[string]string
		want       []string // "kind ids"
		wantDLQ    map[string]uint64
		explainedN int
	}{
		{name: "every order, no letter explained", services: map[string]string{"inventory": srv.URL},
			want: []string{
				"cancelled-money o-old pay3",
				"dlq DLQ_INVENTORY 3 7", "dlq DLQ_SEARCH",
				"ledger p-never-ordered",
				"payment-orphan pay4 o-ghost",
				"payment-refund pay3 o-old",
			},
			wantDLQ: map[string]uint64{"DLQ_INVENTORY": 2, "DLQ_SEARCH": 1}},
		{name: "one letter explained", services: map[string]string{"inventory": srv.URL},
			explained: map[LetterKey]string{{Service: "inventory", Seq: 3}: "kept as evidence"},
			want: []string{
				"cancelled-money o-old pay3",
				"dlq DLQ_INVENTORY 7", "dlq DLQ_SEARCH",
				"ledger p-never-ordered",
				"payment-orphan pay4 o-ghost",
				"payment-refund pay3 o-old",
			},
			wantDLQ: map[string]uint64{"DLQ_INVENTORY": 1, "DLQ_SEARCH": 1}, explainedN: 1},
		{name: "since: old orders not audited, their payments still are", since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			want: []string{
				"dlq DLQ_INVENTORY", "dlq DLQ_SEARCH",
				"ledger p-never-ordered",
				"payment-orphan pay4 o-ghost",
				"payment-refund pay3 o-old",
			},
			wantDLQ: map[string]uint64{"DLQ_INVENTORY": 2, "DLQ_SEARCH": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Run(context.Background(), Config{Orders: srv.URL, Inventory: srv.URL, Payments: srv.URL,
				NATSMonitor: srv.URL, Since: c.since, StuckAfter: 1000 * time.Hour, Services: c.services, Explained: c.explained})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range rep.Violations {
				got = append(got, strings.TrimSpace(v.Kind+" "+strings.Join(v.IDs, " ")))
			}
			sort.Strings(got)
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("violations (-got +want):\n%s\nreport: %+v", diff, rep.Violations)
			}
			if diff := cmp.Diff(rep.DLQ, c.wantDLQ); diff != "" {
				t.Errorf("dlq (-got +want):\n%s", diff)
			}
			wantOrders := 3
			if !c.since.IsZero() {
				wantOrders = 2
			}
			if rep.Orders != wantOrders || rep.Payments != 5 || rep.Products != 3 || rep.DLQExplained != c.explainedN {
				t.Errorf("orders %d payments %d ledgers %d explained %d; want %d, 5, 3, %d",
					rep.Orders, rep.Payments, rep.Products, rep.DLQExplained, wantOrders, c.explainedN)
			}
		})
	}
}

// An exact product whose ledger moves while the audit reads the orders is not compared
// with reservations read at other moments (it is reported as moving); one that holds
// still is, and a mismatch is a violation.
func TestRunSkipsLedgersThatMove(t *testing.T) {
	const order = `{"items":[{"id":"o1","status":"CONFIRMED","items":[{"productId":"p1","quantity":2}],` +
		`"total":{"amount":3000,"currency":"EUR"},"createdAt":"2026-12-01T10:00:00Z"}]}`
	cases := []struct {
		name       string
		versions   [2]int64 // the ledger's version on the first and the second read
		wantKinds  []string
		wantMoving []string
	}{
		{"still: compared, sold 3 is not the reservation's 2", [2]int64{4, 4}, []string{"ledger-reservations"}, []string{}},
		{"moving: not compared", [2]int64{4, 5}, nil, []string{"p1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reads := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case "/orders":
					_, _ = w.Write([]byte(order))
				case "/payments":
					_, _ = w.Write([]byte(`{"items":[{"id":"pay1","orderId":"o1","amount":{"amount":3000,"currency":"EUR"},"status":"charged","refunded":null}]}`))
				case "/reservations":
					_, _ = w.Write([]byte(`{"items":[{"id":"r1","status":"committed","items":[{"productId":"p1","quantity":2}]}]}`))
				case "/ledgers":
					v := c.versions[min(reads, 1)]
					reads++
					// Balanced (10 = 7 + 0 + 3) but sold 3, where the one reservation sold 2.
					_ = json.NewEncoder(w).Encode(map[string]any{"items": []map[string]any{{"productId": "p1",
						"initial": 10, "restocked": 0, "reserved": 0, "sold": 3, "available": 7, "version": v}}})
				case "/outbox":
					_, _ = w.Write([]byte(`{"pending":0,"oldestPendingAgeSeconds":0}`))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			rep, err := Run(context.Background(), Config{Orders: srv.URL, Inventory: srv.URL, Payments: srv.URL,
				StuckAfter: 1000 * time.Hour, ExactProducts: []string{"p1"}})
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, v := range rep.Violations {
				kinds = append(kinds, v.Kind)
			}
			if diff := cmp.Diff(kinds, c.wantKinds); diff != "" {
				t.Errorf("violations (-got +want):\n%s\n%+v", diff, rep.Violations)
			}
			if diff := cmp.Diff(rep.Moving, c.wantMoving); diff != "" {
				t.Errorf("moving (-got +want):\n%s", diff)
			}
			if reads != 2 {
				t.Errorf("ledger reads = %d, want 2 (before and after the orders)", reads)
			}
		})
	}
}
