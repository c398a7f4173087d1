package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/events"
	"polyshop/shared/obs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	t0  = time.Date(2026, 11, 26, 10, 0, 0, 123000000, time.UTC)
	eur = func(amount int64) events.Money { return events.Money{Amount: amount, Currency: "EUR"} }
)

const (
	userID    = "0193a1b2-0000-7000-8000-000000000001"
	productID = "0193a1b2-0000-7000-8000-000000000002"
	orderID   = "0193a1b2-0000-7000-8000-000000000003"
	paymentID = "0193a1b2-0000-7000-8000-000000000004"
	resID     = "0193a1b2-0000-7000-8000-000000000005"
	sessionID = "0193a1b2-0000-7000-8000-000000000006"
)

// samples holds one representative payload per event type, with its aggregate id.
var samples = map[string]struct {
	subject string
	data    any
}{
	events.TypeUserRegistered: {userID, &events.UserRegistered{UserID: userID, Email: "ada@example.com", Name: "Ada Lovelace", Role: "customer", RegisteredAt: t0}},
	events.TypeUserAddressChanged: {userID, &events.UserAddressChanged{UserID: userID, Address: events.Address{
		Street: "1 Analytical Way", City: "London", PostalCode: "N1 9GU", Country: "GB"}, ChangedAt: t0}},
	events.TypeUserDeleted:    {userID, &events.UserDeleted{UserID: userID, DeletedAt: t0}},
	events.TypeSessionStarted: {sessionID, &events.SessionStarted{SessionID: sessionID, UserID: userID, StartedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}},
	events.TypeSessionEnded:   {sessionID, &events.SessionEnded{SessionID: sessionID, UserID: userID, Reason: events.SessionEndLogout, EndedAt: t0}},
	events.TypeProductCreated: {productID, &events.ProductCreated{ProductID: productID, Name: "Teapot", Description: "Short and stout.",
		Category: "kitchen", Price: eur(1299), Attributes: map[string]any{"colour": "blue", "capacity": map[string]any{"litres": 1.2}},
		InitialStock: 10, CreatedAt: t0}},
	events.TypeProductUpdated: {productID, &events.ProductUpdated{ProductID: productID, Name: "Teapot", Description: "Short and stout.",
		Category: "kitchen", Price: eur(1499), Attributes: map[string]any{"colour": "red", "tags": []any{"tea", "ceramic"}}, UpdatedAt: t0}},
	events.TypeProductPriceChanged: {productID, &events.ProductPriceChanged{ProductID: productID, Old: eur(1299), New: eur(1499), ChangedAt: t0}},
	events.TypeProductDeleted:      {productID, &events.ProductDeleted{ProductID: productID, DeletedAt: t0}},
	events.TypeStockReserved: {orderID, &events.StockReserved{OrderID: orderID, UserID: userID, ReservationID: resID,
		Items: []events.StockItem{{ProductID: productID, Quantity: 2}}, ReservedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}},
	events.TypeStockReservationFailed: {orderID, &events.StockReservationFailed{OrderID: orderID, UserID: userID, Reason: "insufficient_stock",
		Shortages: []events.StockShortage{{ProductID: productID, Requested: 5, Available: 3}}, FailedAt: t0}},
	events.TypeStockReleased: {orderID, &events.StockReleased{OrderID: orderID, UserID: userID, ReservationID: resID,
		Items: []events.StockItem{{ProductID: productID, Quantity: 2}}, Reason: events.ReleaseOrderCancelled, ReleasedAt: t0}},
	events.TypeStockCommitted: {orderID, &events.StockCommitted{OrderID: orderID, UserID: userID, ReservationID: resID,
		Items: []events.StockItem{{ProductID: productID, Quantity: 2}}, CommittedAt: t0}},
	events.TypeStockChanged: {productID, &events.StockChanged{ProductID: productID, Available: 8, Version: 3}},
	events.TypeOrderPlaced: {orderID, &events.OrderPlaced{OrderID: orderID, UserID: userID,
		Items: []events.OrderItem{{ProductID: productID, Quantity: 2, UnitPrice: eur(1299)}}, Total: eur(2598), PlacedAt: t0}},
	events.TypeOrderConfirmed: {orderID, &events.OrderConfirmed{OrderID: orderID, UserID: userID, PaymentID: paymentID, Total: eur(2598), ConfirmedAt: t0}},
	events.TypeOrderCancelled: {orderID, &events.OrderCancelled{OrderID: orderID, UserID: userID, Reason: "payment_declined", CancelledAt: t0}},
	events.TypePaymentCharged: {paymentID, &events.PaymentCharged{PaymentID: paymentID, OrderID: orderID, UserID: userID, Amount: eur(2598), ChargedAt: t0}},
	events.TypePaymentDeclined: {paymentID, &events.PaymentDeclined{PaymentID: paymentID, OrderID: orderID, UserID: userID, Amount: eur(2598),
		Reason: "insufficient_funds", DeclinedAt: t0}},
	events.TypePaymentRefunded: {paymentID, &events.PaymentRefunded{PaymentID: paymentID, OrderID: orderID, UserID: userID, Amount: eur(2598),
		Reason: "order_cancelled", RefundedAt: t0}},

	events.TypeCmdReserveStock: {orderID, &events.ReserveStock{OrderID: orderID, UserID: userID, Attempt: 1,
		Items: []events.StockItem{{ProductID: productID, Quantity: 2}}}},
	events.TypeCmdReleaseStock:  {orderID, &events.ReleaseStock{OrderID: orderID, UserID: userID, Attempt: 1, Reason: "payment_declined"}},
	events.TypeCmdCommitStock:   {orderID, &events.CommitStock{OrderID: orderID, UserID: userID, Attempt: 2}},
	events.TypeCmdChargePayment: {orderID, &events.ChargePayment{OrderID: orderID, UserID: userID, Attempt: 1, Amount: 2598, Currency: "EUR"}},
	events.TypeCmdRefundPayment: {orderID, &events.RefundPayment{OrderID: orderID, UserID: userID, Attempt: 1, Reason: "timeout"}},
	events.TypeReplyStockReserved: {orderID, &events.InventoryReply{OrderID: orderID, UserID: userID, Attempt: 1, ReservationID: resID,
		Items: []events.StockItem{{ProductID: productID, Quantity: 2}}, ExpiresAt: ptr(t0.Add(time.Hour)), At: t0}},
	events.TypeReplyStockRejected: {orderID, &events.InventoryReply{OrderID: orderID, UserID: userID, Attempt: 1, Reason: events.RejectOutOfStock,
		Shortages: []events.StockShortage{{ProductID: productID, Requested: 5, Available: 3}}, At: t0}},
	events.TypeReplyStockReleased:     {orderID, &events.InventoryReply{OrderID: orderID, UserID: userID, Attempt: 1, ReservationID: resID, At: t0}},
	events.TypeReplyStockCommitted:    {orderID, &events.InventoryReply{OrderID: orderID, UserID: userID, Attempt: 1, ReservationID: resID, At: t0}},
	events.TypeReplyStockCommitFailed: {orderID, &events.InventoryReply{OrderID: orderID, UserID: userID, Attempt: 1, Reason: events.RejectExpired, At: t0}},
	events.TypeReplyPaymentCharged: {orderID, &events.PaymentReply{OrderID: orderID, UserID: userID, Attempt: 1, PaymentID: paymentID,
		Amount: &events.Money{Amount: 2598, Currency: "EUR"}, At: t0}},
	events.TypeReplyPaymentDeclined: {orderID, &events.PaymentReply{OrderID: orderID, UserID: userID, Attempt: 1, PaymentID: paymentID,
		Reason: "insufficient_funds", At: t0}},
	events.TypeReplyPaymentFailed: {orderID, &events.PaymentReply{OrderID: orderID, UserID: userID, Attempt: 2, Error: "processor unavailable", At: t0}},
	events.TypeReplyPaymentRefunded: {orderID, &events.PaymentReply{OrderID: orderID, UserID: userID, Attempt: 1, PaymentID: paymentID,
		Amount: &events.Money{Amount: 2598, Currency: "EUR"}, At: t0}},
}

func ptr[T any](v T) *T { return &v }

// fixed builds the envelope of a sample with the generated attributes pinned.
func fixed(t *testing.T, typ string) events.Envelope {
	t.Helper()
	s, ok := samples[typ]
	if !ok {
		t.Fatalf("no sample payload for %s", typ)
	}
	e, err := events.New(context.Background(), typ, s.subject, 3, s.data)
	if err != nil {
		t.Fatalf("New(%s): %v", typ, err)
	}
	e.ID = "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
	e.Time = t0
	e.CorrelationID = "0193a1b2-c3d4-7e5f-8a6b-000000000c01"
	e.CausationID = "0193a1b2-c3d4-7e5f-8a6b-000000000c02"
	e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	return e
}

func TestEverySampleIsRegistered(t *testing.T) {
	var sampled []string
	for typ := range samples {
		sampled = append(sampled, typ)
	}
	if diff := cmp.Diff(len(sampled), len(events.Types())); diff != "" {
		t.Errorf("samples vs registered types (-got +want):\n%s", diff)
	}
	for _, typ := range events.Types() {
		if _, ok := samples[typ]; !ok {
			t.Errorf("registered type %s has no sample", typ)
		}
	}
}

func TestGolden(t *testing.T) {
	for _, typ := range events.Types() {
		t.Run(typ, func(t *testing.T) {
			env := fixed(t, typ)
			got, err := json.MarshalIndent(env, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", strings.TrimPrefix(typ, events.TypePrefix)+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(got), string(want)); diff != "" {
				t.Errorf("envelope JSON mismatch (-got +want):\n%s", diff)
			}

			// The golden file is also a valid wire message for consumers.
			parsed, err := events.Parse(want)
			if err != nil {
				t.Fatalf("Parse(golden): %v", err)
			}
			if diff := cmp.Diff(parsed, env, cmp.Comparer(jsonEqual)); diff != "" {
				t.Errorf("parsed envelope (-got +want):\n%s", diff)
			}
			payload, err := parsed.Payload()
			if err != nil {
				t.Fatalf("Payload: %v", err)
			}
			if diff := cmp.Diff(payload, samples[typ].data); diff != "" {
				t.Errorf("decoded payload (-got +want):\n%s", diff)
			}
		})
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
}

func TestNew(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	ctx = obs.WithCorrelationID(ctx, "corr-1")
	ctx = obs.WithCausationID(ctx, "cause-1")

	before := time.Now().Add(-time.Second)
	e, err := events.New(ctx, events.TypeUserDeleted, userID, 7, events.UserDeleted{UserID: userID, DeletedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(e.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("ID = %q, want a UUIDv7 (err %v)", e.ID, err)
	}
	if e.Time.Before(before) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want now in UTC", e.Time)
	}
	got := []string{e.SpecVersion, e.Source, e.Type, e.Subject, e.DataContentType, e.CorrelationID, e.CausationID, e.NATSSubject(), e.Owner()}
	want := []string{"1.0", "/polyshop/users", events.TypeUserDeleted, userID, "application/json", "corr-1", "cause-1", "users.deleted.v1", "users"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("attributes (-got +want):\n%s", diff)
	}
	wantTP := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if diff := cmp.Diff(e.TraceParent, wantTP); diff != "" {
		t.Errorf("traceparent (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(e.Sequence, int64(7)); diff != "" {
		t.Errorf("sequence (-got +want):\n%s", diff)
	}
}

func TestNewWithoutContextIDs(t *testing.T) {
	e, err := events.New(context.Background(), events.TypeUserDeleted, userID, 1, json.RawMessage(`{"userId":"x","deletedAt":"2026-11-26T10:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(e.CorrelationID); err != nil {
		t.Errorf("CorrelationID = %q, want a new UUID", e.CorrelationID)
	}
	if e.CausationID != "" || e.TraceParent != "" {
		t.Errorf("CausationID, TraceParent = %q, %q, want both empty", e.CausationID, e.TraceParent)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		subject   string
		seq       int64
		data      any
		wantField string
	}{
		{"payload of another type", events.TypeUserDeleted, userID, 1, events.UserRegistered{}, "data"},
		{"sequence zero", events.TypeUserDeleted, userID, 0, events.UserDeleted{}, "sequence"},
		{"no subject", events.TypeUserDeleted, "", 1, events.UserDeleted{}, "subject"},
		{"bad type", "users.deleted", userID, 1, map[string]any{}, "type"},
		{"data not an object", "polyshop.users.custom.v1", userID, 1, []int{1}, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := events.New(context.Background(), tt.typ, tt.subject, tt.seq, tt.data)
			checkFieldError(t, err, tt.wantField)
		})
	}
}

func checkFieldError(t *testing.T, err error, wantField string) {
	t.Helper()
	var fe *events.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *events.FieldError for %q", err, wantField)
	}
	if diff := cmp.Diff(fe.Field, wantField); diff != "" {
		t.Errorf("field (-got +want):\n%s\nerror: %v", diff, err)
	}
	if !errors.Is(err, events.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	if !strings.Contains(err.Error(), wantField) {
		t.Errorf("error %q does not name the field %q", err, wantField)
	}
}

// valid is a well-formed wire envelope that the Parse cases below break one way each.
func valid() map[string]any {
	return map[string]any{
		"specversion":     "1.0",
		"id":              "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
		"source":          "/polyshop/users",
		"type":            "polyshop.users.deleted.v1",
		"subject":         userID,
		"time":            "2026-11-26T10:00:00.123Z",
		"datacontenttype": "application/json",
		"correlationid":   "c1",
		"traceparent":     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"sequence":        3,
		"data":            map[string]any{"userId": userID, "deletedAt": "2026-11-26T10:00:00Z"},
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(m map[string]any)
		wantField string
	}{
		{"specversion missing", func(m map[string]any) { delete(m, "specversion") }, "specversion"},
		{"specversion 0.3", func(m map[string]any) { m["specversion"] = "0.3" }, "specversion"},
		{"specversion number", func(m map[string]any) { m["specversion"] = 1.0 }, "specversion"},
		{"id missing", func(m map[string]any) { delete(m, "id") }, "id"},
		{"id null", func(m map[string]any) { m["id"] = nil }, "id"},
		{"id not a uuid", func(m map[string]any) { m["id"] = "evt-42" }, "id"},
		{"id number", func(m map[string]any) { m["id"] = 42 }, "id"},
		{"source missing", func(m map[string]any) { delete(m, "source") }, "source"},
		{"source of another owner", func(m map[string]any) { m["source"] = "/polyshop/orders" }, "source"},
		{"type missing", func(m map[string]any) { delete(m, "type") }, "type"},
		{"type without version", func(m map[string]any) { m["type"] = "polyshop.users.deleted" }, "type"},
		{"type without prefix", func(m map[string]any) { m["type"] = "users.deleted.v1" }, "type"},
		{"type uppercase", func(m map[string]any) { m["type"] = "polyshop.Users.deleted.v1" }, "type"},
		{"subject missing", func(m map[string]any) { delete(m, "subject") }, "subject"},
		{"time missing", func(m map[string]any) { delete(m, "time") }, "time"},
		{"time not RFC 3339", func(m map[string]any) { m["time"] = "26/11/2026" }, "time"},
		{"datacontenttype xml", func(m map[string]any) { m["datacontenttype"] = "application/xml" }, "datacontenttype"},
		{"traceparent malformed", func(m map[string]any) { m["traceparent"] = "00-abc" }, "traceparent"},
		{"sequence missing", func(m map[string]any) { delete(m, "sequence") }, "sequence"},
		{"sequence zero", func(m map[string]any) { m["sequence"] = 0 }, "sequence"},
		{"sequence negative", func(m map[string]any) { m["sequence"] = -1 }, "sequence"},
		{"sequence fractional", func(m map[string]any) { m["sequence"] = 1.5 }, "sequence"},
		{"sequence string", func(m map[string]any) { m["sequence"] = "3" }, "sequence"},
		{"data missing", func(m map[string]any) { delete(m, "data") }, "data"},
		{"data null", func(m map[string]any) { m["data"] = nil }, "data"},
		{"data array", func(m map[string]any) { m["data"] = []int{1} }, "data"},
		{"data string", func(m map[string]any) { m["data"] = "{}" }, "data"},
		{"data_base64", func(m map[string]any) { m["data_base64"] = "e30=" }, "data_base64"},
		{"attribute with uppercase", func(m map[string]any) { m["Subject"] = "x" }, "Subject"},
		{"attribute with underscore", func(m map[string]any) { m["correlation_id"] = "x" }, "correlation_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.edit(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = events.Parse(b)
			checkFieldError(t, err, tt.wantField)
		})
	}
}

func TestParseRejectsNonObjects(t *testing.T) {
	for _, in := range []string{``, `[]`, `"x"`, `{"specversion":`, `{} {}`, `null`} {
		t.Run(in, func(t *testing.T) {
			_, err := events.Parse([]byte(in))
			if in == "null" {
				// null decodes to an empty map: reported as the first missing attribute.
				checkFieldError(t, err, "specversion")
				return
			}
			checkFieldError(t, err, "(envelope)")
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
		want func(e *events.Envelope)
	}{
		{"as is", func(map[string]any) {}, func(*events.Envelope) {}},
		{"extension attribute is ignored", func(m map[string]any) { m["partitionkey"] = "abc"; m["dataschema"] = "x" }, func(*events.Envelope) {}},
		{"datacontenttype defaults to JSON", func(m map[string]any) { delete(m, "datacontenttype") }, func(*events.Envelope) {}},
		{"optional ids absent", func(m map[string]any) { delete(m, "correlationid"); delete(m, "traceparent") },
			func(e *events.Envelope) { e.CorrelationID, e.TraceParent = "", "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.edit(m)
			b, _ := json.Marshal(m)
			got, err := events.Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := events.Envelope{
				SpecVersion: "1.0", ID: "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", Source: "/polyshop/users",
				Type: events.TypeUserDeleted, Subject: userID, Time: t0, DataContentType: "application/json",
				CorrelationID: "c1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				Sequence: 3, Data: json.RawMessage(`{"deletedAt":"2026-11-26T10:00:00Z","userId":"` + userID + `"}`),
			}
			tt.want(&want)
			if diff := cmp.Diff(got, want, cmp.Comparer(jsonEqual)); diff != "" {
				t.Errorf("Parse (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantField string
	}{
		{"unknown field", `{"orderId":"o","bogus":1}`, "data.bogus"},
		{"wrong type", `{"orderId":"o","items":[{"productId":"p","quantity":"two"}]}`, "data.items.quantity"},
		{"trailing data", `{"orderId":"o"} {}`, "data"},
		{"not an object", `[1]`, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := events.Envelope{Type: events.TypeOrderPlaced, Data: json.RawMessage(tt.data)}
			var p events.OrderPlaced
			err := e.Decode(&p)
			var fe *events.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if !strings.HasPrefix(fe.Field, tt.wantField) {
				t.Errorf("field = %q, want prefix %q (%v)", fe.Field, tt.wantField, err)
			}
		})
	}
}

func TestSubjectsAndOwners(t *testing.T) {
	for _, typ := range events.Types() {
		owner := events.OwnerOf(typ)
		if !strings.HasPrefix(events.SubjectFor(typ), owner+".") {
			t.Errorf("SubjectFor(%s) = %s, want it under %s.>", typ, events.SubjectFor(typ), owner)
		}
	}
	got := map[string]int{}
	for _, typ := range events.Types() {
		got[events.OwnerOf(typ)]++
	}
	// inventory: 5 domain events and 5 saga replies; orders: 3 and 5 saga commands; payments: 3 and 4 replies.
	want := map[string]int{"users": 3, "sessions": 2, "catalog": 4, "inventory": 10, "orders": 8, "payments": 7}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("types per owner (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(events.TypesOf("sessions"), []string{events.TypeSessionEnded, events.TypeSessionStarted}); diff != "" {
		t.Errorf("TypesOf(sessions) (-got +want):\n%s", diff)
	}
	if got := events.OwnerOf("orders.cmd.x"); got != "" {
		t.Errorf("OwnerOf(non-event) = %q, want empty", got)
	}
	if events.PayloadFor("polyshop.users.unknown.v1") != nil {
		t.Error("PayloadFor(unknown) != nil")
	}
}

func TestContext(t *testing.T) {
	e := fixed(t, events.TypeUserDeleted)
	ctx := e.Context(context.Background())
	sc := trace.SpanContextFromContext(ctx)
	got := []string{sc.TraceID().String(), sc.SpanID().String(), obs.CorrelationID(ctx), obs.CausationID(ctx)}
	want := []string{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", e.CorrelationID, e.ID}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("context from envelope (-got +want):\n%s", diff)
	}
	if !sc.IsRemote() {
		t.Error("span context is not remote")
	}
}
