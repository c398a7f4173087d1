package audit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckPayment(t *testing.T) {
	eur := func(n int64) *Money { return &Money{Amount: n, Currency: "EUR"} }
	pay := func(status string, refunded *Money) Payment {
		return Payment{ID: "pay", OrderID: "o", Amount: *eur(1000), Status: status, Refunded: refunded}
	}
	cases := []struct {
		name  string
		p     Payment
		known bool
		want  []string
	}{
		{"charged", pay("charged", nil), true, nil},
		{"declined", pay("declined", nil), true, nil},
		{"tombstone", Payment{ID: "pay", OrderID: "o", Status: "tombstone"}, true, nil},
		{"fully refunded", pay("refunded", eur(1000)), true, nil},
		{"partly refunded", pay("refunded", eur(400)), true, nil},
		{"refund above the charge", pay("refunded", eur(1001)), true, []string{"payment-refund"}},
		{"refund in another currency", pay("refunded", &Money{Amount: 1000, Currency: "USD"}), true, []string{"payment-refund"}},
		{"refunded without an amount", pay("refunded", nil), true, []string{"payment-refund"}},
		{"charged with a refund amount", pay("charged", eur(10)), true, []string{"payment-refund"}},
		{"order unknown", pay("charged", nil), false, []string{"payment-orphan"}},
		{"order unknown, refund above", pay("refunded", eur(2000)), false, []string{"payment-orphan", "payment-refund"}},
	}
	for _, c := range cases {
		var got []string
		for _, v := range CheckPayment(c.p, c.known) {
			got = append(got, v.Kind)
			if diff := cmp.Diff(v.IDs, []string{"pay", "o"}); diff != "" {
				t.Errorf("%s: ids (-got +want):\n%s", c.name, diff)
			}
		}
		if diff := cmp.Diff(got, c.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", c.name, diff)
		}
	}
}

func TestCheckDLQ(t *testing.T) {
	letters := []Letter{{Seq: 2, Type: "a"}, {Seq: 5, Type: "b"}, {Seq: 9, Type: "c"}}
	explained := map[LetterKey]string{{Service: "search", Seq: 5}: "poison event kept as evidence",
		{Service: "orders", Seq: 9}: "another service's letter 9"}
	cases := []struct {
		name      string
		letters   []Letter
		baseline  uint64
		wantIDs   []string // nil: no violation
		wantCount int
	}{
		{"no letters", nil, 0, nil, 0},
		{"every letter counts", letters, 0, []string{"DLQ_SEARCH", "2", "9"}, 1},
		{"baseline hides older letters", letters, 4, []string{"DLQ_SEARCH", "9"}, 1},
		{"all explained or older", letters[:2], 2, nil, 1},
	}
	for _, c := range cases {
		v, n := CheckDLQ("search", c.letters, c.baseline, explained)
		var got []string
		if v != nil {
			got = v.IDs
			if v.Kind != "dlq" {
				t.Errorf("%s: kind %q", c.name, v.Kind)
			}
		}
		if diff := cmp.Diff(got, c.wantIDs); diff != "" || n != c.wantCount {
			t.Errorf("%s: explained %d, want %d; ids (-got +want):\n%s", c.name, n, c.wantCount, diff)
		}
	}
}

func TestParseExplained(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[LetterKey]string
		wantErr  string
	}{
		{"comments and blanks", "# kept on purpose\n\nsearch 5 poison event, kept as evidence\nINVENTORY 12  replay not wanted \n",
			map[LetterKey]string{{Service: "search", Seq: 5}: "poison event, kept as evidence", {Service: "inventory", Seq: 12}: "replay not wanted"}, ""},
		{"no reason", "search 5\n", nil, "line 1: want <service> <seq> <reason>"},
		{"seq not a number", "# x\nsearch five because\n", nil, `line 2: seq "five"`},
		{"seq zero", "search 0 because\n", nil, "not a positive integer"},
	}
	for _, c := range cases {
		got, err := ParseExplained(strings.NewReader(c.in))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if diff := cmp.Diff(got, c.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", c.name, diff)
		}
	}
}
