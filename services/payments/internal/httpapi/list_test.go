package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/rebuild"
)

type listedPayment struct {
	ID       string        `json:"id"`
	OrderID  string        `json:"orderId"`
	Amount   events.Money  `json:"amount"`
	Status   string        `json:"status"`
	Refunded *events.Money `json:"refunded"`
}

// GET /payments without orderId pages through every payment in id order (tombstones
// included) for operators and the auditor; ?orderId= still answers one order's payments.
// A cursor this service did not issue is 400, an out-of-range limit 422, and the down
// switch 503.
func TestListEveryPayment(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	send := func(typ, order string, data any) {
		t.Helper()
		env, err := events.New(ctx, typ, order, 1, data)
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case events.TypeCmdChargePayment:
			_, err = e.svc.Charge(ctx, env)
		default:
			_, err = e.svc.Refund(ctx, env)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	user := newID(t)
	charged, refunded, tombstone := newID(t), newID(t), newID(t)
	send(events.TypeCmdChargePayment, charged, events.ChargePayment{OrderID: charged, UserID: user, Attempt: 1, Amount: 1000, Currency: "EUR"})
	send(events.TypeCmdChargePayment, refunded, events.ChargePayment{OrderID: refunded, UserID: user, Attempt: 1, Amount: 700, Currency: "EUR"})
	send(events.TypeCmdRefundPayment, refunded, events.RefundPayment{OrderID: refunded, UserID: user, Attempt: 1, Reason: "timeout"})
	send(events.TypeCmdRefundPayment, tombstone, events.RefundPayment{OrderID: tombstone, UserID: user, Attempt: 1, Reason: "timeout"})

	var got []listedPayment
	pages, cursor := 0, ""
	for {
		path := "/payments?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "")
		var page rebuild.Page[listedPayment]
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		pages++
		got = append(got, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	byOrder := map[string]listedPayment{}
	for i, p := range got {
		if i > 0 && got[i-1].ID >= p.ID {
			t.Errorf("payment %s listed after %s: want id order", p.ID, got[i-1].ID)
		}
		p.ID = ""
		byOrder[p.OrderID] = p
	}
	back := events.Money{Amount: 700, Currency: "EUR"}
	want := map[string]listedPayment{
		charged:   {OrderID: charged, Amount: events.Money{Amount: 1000, Currency: "EUR"}, Status: "charged"},
		refunded:  {OrderID: refunded, Amount: events.Money{Amount: 700, Currency: "EUR"}, Status: "refunded", Refunded: &back},
		tombstone: {OrderID: tombstone, Status: "tombstone"},
	}
	if diff := cmp.Diff(byOrder, want); diff != "" || pages != 2 || len(got) != 3 {
		t.Errorf("%d payments in %d pages (-got +want):\n%s", len(got), pages, diff)
	}

	// ?orderId= is unchanged: one order's payments, no paging.
	var one struct{ Items []listedPayment }
	if r := e.do(t, "GET", "/payments?orderId="+charged, ""); r.status != http.StatusOK || json.Unmarshal(r.body, &one) != nil || len(one.Items) != 1 {
		t.Errorf("GET /payments?orderId= = %d %s, want the one payment", r.status, r.body)
	}

	tests := []struct {
		path string
		want int
	}{
		{"/payments?limit=abc", http.StatusBadRequest},
		{"/payments?cursor=nonsense", http.StatusBadRequest},
		{"/payments?cursor=" + rebuild.EncodeCursor("not-a-payment-id"), http.StatusBadRequest},
		{"/payments?userId=" + user, http.StatusBadRequest},
		{"/payments?limit=0", http.StatusUnprocessableEntity},
		{"/payments?limit=1001", http.StatusUnprocessableEntity},
		{"/payments?orderId=", http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		r := e.do(t, "GET", tc.path, "")
		if r.status != tc.want {
			t.Errorf("GET %s = %d %s, want %d", tc.path, r.status, r.body, tc.want)
			continue
		}
		problemOf(t, r)
	}
	if r := e.do(t, "PUT", "/faults", `{"down":true}`); r.status != http.StatusOK {
		t.Fatalf("PUT /faults = %d", r.status)
	}
	if r := e.do(t, "GET", "/payments", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /payments while down = %d %s, want 503", r.status, r.body)
	}
}
