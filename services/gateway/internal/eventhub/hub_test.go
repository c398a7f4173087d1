package eventhub

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPositionRoundTrip(t *testing.T) {
	tests := []struct {
		in      string
		want    Position
		wantErr bool
	}{
		{"", Position{}, false},
		{"USERS:12", Position{"USERS": 12}, false},
		{"ORDERS:40, USERS:12", Position{"USERS": 12, "ORDERS": 40}, false},
		{"USERS=12", nil, true},
		{"USERS:-1", nil, true},
		{":3", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePosition(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
			if err == nil {
				again, _ := ParsePosition(got.String())
				if diff := cmp.Diff(again, got); diff != "" {
					t.Errorf("String does not round-trip (-got +want):\n%s", diff)
				}
			}
		})
	}
}

func TestParseTellsWhoseAggregateAMessageIsAbout(t *testing.T) {
	tests := []struct {
		name, subject, body    string
		kind, owner, user, ord string
	}{
		{"users event: the subject", "users.registered.v1", `{"type":"polyshop.users.registered.v1","subject":"u1","data":{"email":"x"}}`, "event", "users", "u1", ""},
		{"order event", "orders.order_placed.v1", `{"subject":"o1","data":{"orderId":"o1","userId":"u2"}}`, "event", "orders", "u2", "o1"},
		{"saga command", "orders.cmd.payments.charge.v1", `{"subject":"o1","data":{"orderId":"o1","userId":"u2"}}`, "command", "orders", "u2", "o1"},
		{"saga reply", "payments.reply.declined.v1", `{"subject":"o1","data":{"orderId":"o1","userId":"u2"}}`, "reply", "payments", "u2", "o1"},
		{"stock is shop-wide", "inventory.stock_changed.v1", `{"subject":"p1","data":{"productId":"p1"}}`, "event", "inventory", "", ""},
		{"not an envelope", "catalog.junk.v1", `not json`, "event", "catalog", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := Parse("S", 1, tc.subject, []byte(tc.body))
			got := []string{e.Kind, e.Owner, e.UserID, e.OrderID}
			if diff := cmp.Diff(got, []string{tc.kind, tc.owner, tc.user, tc.ord}); diff != "" {
				t.Errorf("kind, owner, user, order (-got +want):\n%s", diff)
			}
		})
	}
}
