package activity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/activity/internal/activity/activitytest"
	"polyshop/shared/events"
)

func TestCursorRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 123_000_000, time.UTC)
	c := CursorAfter(Entry{EventID: "01a2154a-74dc-732a-8374-cf6e7dcbb8a0", OccurredAt: at})
	got, err := ParseCursor(c.Encode())
	if err != nil {
		t.Fatalf("ParseCursor: %v", err)
	}
	want := Cursor{Bucket: 202611, OccurredAt: at, EventID: "01a2154a-74dc-732a-8374-cf6e7dcbb8a0"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("cursor (-got +want):\n%s", diff)
	}
}

func TestParseCursorRejects(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	ms := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).UnixMilli()
	id := "01a2154a-74dc-732a-8374-cf6e7dcbb8a0"
	for name, in := range map[string]string{
		"not base64":         "!!!",
		"padded base64":      base64.URLEncoding.EncodeToString([]byte("v1:202611:1:" + id)),
		"wrong version":      enc("v2:202611:" + itoa(ms) + ":" + id),
		"too few parts":      enc("v1:202611:" + itoa(ms)),
		"bucket not number":  enc("v1:x:" + itoa(ms) + ":" + id),
		"time not number":    enc("v1:202611:x:" + id),
		"id not uuid":        enc("v1:202611:" + itoa(ms) + ":nope"),
		"id upper case":      enc("v1:202611:" + itoa(ms) + ":01A2154A-74DC-732A-8374-CF6E7DCBB8A0"),
		"bucket is not time": enc("v1:202610:" + itoa(ms) + ":" + id),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCursor(in)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != "cursor" || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("ParseCursor(%q) = %v, want an InputError for cursor", in, err)
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in           string
		want         int
		ok           bool
		unacceptable bool // an integer out of range (422), not an unreadable value (400)
	}{
		{"", DefaultLimit, true, false}, {"1", 1, true, false}, {"100", 100, true, false}, {"37", 37, true, false},
		{"0", 0, false, true}, {"101", 0, false, true}, {"-1", 0, false, true},
		{"abc", 0, false, false}, {"1.5", 0, false, false}, {" 5", 0, false, false},
	} {
		got, err := ParseLimit(tc.in)
		var ie *InputError
		switch {
		case tc.ok && (err != nil || got != tc.want):
			t.Errorf("ParseLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case !tc.ok && (!errors.As(err, &ie) || ie.Field != "limit" || ie.Unacceptable != tc.unacceptable):
			t.Errorf("ParseLimit(%q) = %d, %v; want an InputError for limit, Unacceptable %v", tc.in, got, err, tc.unacceptable)
		}
	}
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		at         time.Time
		month, day int
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 202601, 20260101},
		{time.Date(2026, 12, 31, 23, 59, 59, 999e6, time.UTC), 202612, 20261231},
		// Buckets are UTC: 00:30 in Berlin on 1 December is still November in UTC.
		{time.Date(2026, 12, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)), 202611, 20261130},
	} {
		if got := BucketOf(tc.at); got != tc.month {
			t.Errorf("BucketOf(%v) = %d, want %d", tc.at, got, tc.month)
		}
		if got := DayOf(tc.at); got != tc.day {
			t.Errorf("DayOf(%v) = %d, want %d", tc.at, got, tc.day)
		}
	}
}

func TestLess(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := Entry{EventID: "b", OccurredAt: t0.Add(time.Millisecond)}
	b := Entry{EventID: "c", OccurredAt: t0}
	c := Entry{EventID: "a", OccurredAt: t0}
	if !Less(a, b) || !Less(b, c) || Less(c, b) || Less(a, a) {
		t.Errorf("Less: want newer first, then higher event id first")
	}
}

func TestRules(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	uid := activitytest.ID(t)
	pid := activitytest.ID(t)
	oid := activitytest.ID(t)
	for _, tc := range []struct {
		env     events.Envelope
		target  Target
		userID  string
		summary string
	}{
		{activitytest.UserRegistered(t, uid, at), UserFeed, uid, "Account created"},
		{activitytest.UserAddressChanged(t, uid, at), UserFeed, uid, "Address changed (Berlin, DE)"},
		{activitytest.UserDeleted(t, uid, at), EraseUser, uid, ""},
		{activitytest.SessionStarted(t, uid, at), UserFeed, uid, "Signed in"},
		{activitytest.Event(t, events.TypeSessionEnded, pid, at, events.SessionEnded{SessionID: pid, UserID: uid, Reason: events.SessionEndExpired, EndedAt: at}),
			UserFeed, uid, "Session expired"},
		{activitytest.Event(t, events.TypeProductCreated, pid, at, events.ProductCreated{ProductID: pid, Name: "Kettle", Category: "kitchen", Price: events.Money{Amount: 2999, Currency: "eur"}}),
			GlobalFeed, "", "New product: Kettle (kitchen) at 29.99 EUR"},
		{activitytest.Event(t, events.TypeProductUpdated, pid, at, events.ProductUpdated{ProductID: pid, Name: "Kettle"}),
			GlobalFeed, "", "Product updated: Kettle"},
		{activitytest.Event(t, events.TypeProductPriceChanged, pid, at, events.ProductPriceChanged{ProductID: pid, Old: events.Money{Amount: 2999, Currency: "EUR"}, New: events.Money{Amount: 5, Currency: "EUR"}}),
			GlobalFeed, "", "Price changed from 29.99 EUR to 0.05 EUR"},
		{activitytest.Event(t, events.TypeProductDeleted, pid, at, events.ProductDeleted{ProductID: pid, DeletedAt: at}),
			GlobalFeed, "", "Product removed"},
		{activitytest.Event(t, events.TypeStockReserved, oid, at, events.StockReserved{OrderID: oid, UserID: uid, ReservationID: pid,
			Items: []events.StockItem{{ProductID: pid, Quantity: 2}, {ProductID: oid, Quantity: 1}}, ReservedAt: at, ExpiresAt: at}),
			UserFeed, uid, "Stock reserved for your order (3 items)"},
		{activitytest.Event(t, events.TypeStockReservationFailed, oid, at, events.StockReservationFailed{OrderID: oid, UserID: uid,
			Reason: events.RejectOutOfStock, Shortages: []events.StockShortage{{ProductID: pid, Requested: 2, Available: 1}}, FailedAt: at}),
			UserFeed, uid, "Stock could not be reserved for your order (out_of_stock)"},
		{activitytest.Event(t, events.TypeStockReleased, oid, at, events.StockReleased{OrderID: oid, UserID: uid, ReservationID: pid,
			Items: []events.StockItem{{ProductID: pid, Quantity: 1}}, Reason: events.ReleaseOrderCancelled, ReleasedAt: at}),
			UserFeed, uid, "Reserved stock released (order_cancelled)"},
		{activitytest.Event(t, events.TypeStockCommitted, oid, at, events.StockCommitted{OrderID: oid, UserID: uid, ReservationID: pid,
			Items: []events.StockItem{{ProductID: pid, Quantity: 1}}, CommittedAt: at}),
			UserFeed, uid, "Stock committed for your order (1 item)"},
		{activitytest.Event(t, events.TypeOrderPlaced, oid, at, events.OrderPlaced{OrderID: oid, UserID: uid,
			Items: []events.OrderItem{{ProductID: pid, Quantity: 1, UnitPrice: events.Money{Amount: 1299, Currency: "EUR"}}},
			Total: events.Money{Amount: 1299, Currency: "EUR"}, PlacedAt: at}),
			UserFeed, uid, "Order placed: 12.99 EUR"},
		{activitytest.Event(t, events.TypeOrderConfirmed, oid, at, events.OrderConfirmed{OrderID: oid, UserID: uid, PaymentID: pid,
			Total: events.Money{Amount: 1299, Currency: "EUR"}, ConfirmedAt: at}),
			UserFeed, uid, "Order confirmed: 12.99 EUR"},
		{activitytest.Event(t, events.TypeOrderCancelled, oid, at, events.OrderCancelled{OrderID: oid, UserID: uid,
			Reason: "payment_declined", CancelledAt: at}),
			UserFeed, uid, "Order cancelled (payment_declined)"},
		{activitytest.Event(t, events.TypePaymentCharged, pid, at, events.PaymentCharged{PaymentID: pid, OrderID: oid, UserID: uid,
			Amount: events.Money{Amount: 1299, Currency: "EUR"}, ChargedAt: at}),
			UserFeed, uid, "Payment of 12.99 EUR charged"},
		{activitytest.Event(t, events.TypePaymentDeclined, pid, at, events.PaymentDeclined{PaymentID: pid, OrderID: oid, UserID: uid,
			Amount: events.Money{Amount: 1299, Currency: "EUR"}, Reason: "card_declined", DeclinedAt: at}),
			UserFeed, uid, "Payment of 12.99 EUR declined (card_declined)"},
		{activitytest.Event(t, events.TypePaymentRefunded, pid, at, events.PaymentRefunded{PaymentID: pid, OrderID: oid, UserID: uid,
			Amount: events.Money{Amount: 1299, Currency: "EUR"}, Reason: "timeout", RefundedAt: at}),
			UserFeed, uid, "Payment of 12.99 EUR refunded"},
	} {
		t.Run(tc.env.Type, func(t *testing.T) {
			r, ok := RuleFor(tc.env.Type)
			if !ok {
				t.Fatalf("no rule for %s", tc.env.Type)
			}
			uid, summary, err := r.project(tc.env)
			if err != nil {
				t.Fatalf("project: %v", err)
			}
			if r.Target != tc.target || uid != tc.userID || summary != tc.summary {
				t.Errorf("got (%v, %q, %q), want (%v, %q, %q)", r.Target, uid, summary, tc.target, tc.userID, tc.summary)
			}
		})
	}
}

func TestSubscriptionsFollowTheRules(t *testing.T) {
	want := []Subscription{
		{Owner: "catalog", Subjects: []string{"catalog.product_created.v1", "catalog.product_deleted.v1", "catalog.product_price_changed.v1", "catalog.product_updated.v1"}},
		{Owner: "inventory", Subjects: []string{"inventory.stock_committed.v1", "inventory.stock_released.v1", "inventory.stock_reservation_failed.v1", "inventory.stock_reserved.v1"}},
		{Owner: "orders", Subjects: []string{"orders.order_cancelled.v1", "orders.order_confirmed.v1", "orders.order_placed.v1"}},
		{Owner: "payments", Subjects: []string{"payments.payment_charged.v1", "payments.payment_declined.v1", "payments.payment_refunded.v1"}},
		{Owner: "sessions", Subjects: []string{"sessions.ended.v1", "sessions.started.v1"}},
		{Owner: "users", Subjects: []string{"users.address_changed.v1", "users.deleted.v1", "users.registered.v1"}},
	}
	if diff := cmp.Diff(Subscriptions(), want); diff != "" {
		t.Errorf("Subscriptions (-got +want):\n%s", diff)
	}
}

// Apply rejects what redelivery cannot fix before touching the store (nil here).
func TestApplyRejectsBeforeTheStore(t *testing.T) {
	svc := NewService(nil, nil, Options{})
	at := time.Now()
	pid := activitytest.ID(t)
	for name, tc := range map[string]struct {
		env  events.Envelope
		want error
	}{
		"unhandled type": {activitytest.Event(t, events.TypeStockChanged, pid, at, events.StockChanged{ProductID: pid, Available: 1, Version: 1}), ErrUnhandledType},
		"user id not a UUID": {activitytest.Event(t, events.TypeSessionStarted, pid, at, events.SessionStarted{SessionID: pid, UserID: "bob"}),
			events.ErrInvalid},
		"unknown payload field": {func() events.Envelope {
			e := activitytest.SessionStarted(t, activitytest.ID(t), at)
			e.Data = json.RawMessage(`{"sessionId":"x","userId":"y","extra":1}`)
			return e
		}(), events.ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if err := svc.Apply(context.Background(), tc.env); !errors.Is(err, tc.want) {
				t.Errorf("Apply = %v, want %v", err, tc.want)
			}
		})
	}
}
