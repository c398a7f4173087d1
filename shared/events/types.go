package events

import (
	"reflect"
	"slices"
	"time"
)

// Event types, version 1. The subject of each is the id of the aggregate named in the
// comment; Sequence is that aggregate's version.
const (
	// TypeUserRegistered: subject user id, data UserRegistered.
	TypeUserRegistered = "polyshop.users.registered.v1"
	// TypeUserAddressChanged: subject user id, data UserAddressChanged.
	TypeUserAddressChanged = "polyshop.users.address_changed.v1"
	// TypeUserDeleted: subject user id, data UserDeleted.
	TypeUserDeleted = "polyshop.users.deleted.v1"

	// TypeSessionStarted: subject session id, data SessionStarted.
	TypeSessionStarted = "polyshop.sessions.started.v1"
	// TypeSessionEnded: subject session id, data SessionEnded.
	TypeSessionEnded = "polyshop.sessions.ended.v1"

	// TypeProductCreated: subject product id, data ProductCreated.
	TypeProductCreated = "polyshop.catalog.product_created.v1"
	// TypeProductUpdated: subject product id, data ProductUpdated.
	TypeProductUpdated = "polyshop.catalog.product_updated.v1"
	// TypeProductPriceChanged: subject product id, data ProductPriceChanged.
	TypeProductPriceChanged = "polyshop.catalog.product_price_changed.v1"
	// TypeProductDeleted: subject product id, data ProductDeleted.
	TypeProductDeleted = "polyshop.catalog.product_deleted.v1"

	// TypeStockReserved: subject order id (the reservation belongs to the order), data
	// StockReserved.
	TypeStockReserved = "polyshop.inventory.stock_reserved.v1"
	// TypeStockReservationFailed: subject order id, data StockReservationFailed.
	TypeStockReservationFailed = "polyshop.inventory.stock_reservation_failed.v1"
	// TypeStockReleased: subject order id, data StockReleased.
	TypeStockReleased = "polyshop.inventory.stock_released.v1"
	// TypeStockCommitted: subject order id, data StockCommitted.
	TypeStockCommitted = "polyshop.inventory.stock_committed.v1"
	// TypeStockChanged: subject product id, data StockChanged; Sequence is the stock
	// row's version, so a projection keeps the newest availability whatever the order.
	TypeStockChanged = "polyshop.inventory.stock_changed.v1"

	// TypeOrderPlaced: subject order id, data OrderPlaced.
	TypeOrderPlaced = "polyshop.orders.order_placed.v1"
	// TypeOrderConfirmed: subject order id, data OrderConfirmed.
	TypeOrderConfirmed = "polyshop.orders.order_confirmed.v1"
	// TypeOrderCancelled: subject order id, data OrderCancelled.
	TypeOrderCancelled = "polyshop.orders.order_cancelled.v1"

	// TypePaymentCharged: subject payment id, data PaymentCharged.
	TypePaymentCharged = "polyshop.payments.payment_charged.v1"
	// TypePaymentDeclined: subject payment id, data PaymentDeclined.
	TypePaymentDeclined = "polyshop.payments.payment_declined.v1"
	// TypePaymentRefunded: subject payment id, data PaymentRefunded.
	TypePaymentRefunded = "polyshop.payments.payment_refunded.v1"
)

// Money is an amount in the currency's minor units (cents) and an ISO 4217 currency code:
// {"amount": 1299, "currency": "EUR"} is 12.99 EUR.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Address is a postal address; Country is an ISO 3166-1 alpha-2 code.
type Address struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// UserRegistered is the data of TypeUserRegistered. It never carries password material.
type UserRegistered struct {
	UserID       string    `json:"userId"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Role         string    `json:"role"` // "customer" or "admin"
	RegisteredAt time.Time `json:"registeredAt"`
}

// UserAddressChanged is the data of TypeUserAddressChanged: the user's full new address.
type UserAddressChanged struct {
	UserID    string    `json:"userId"`
	Address   Address   `json:"address"`
	ChangedAt time.Time `json:"changedAt"`
}

// UserDeleted is the data of TypeUserDeleted; every service removes or anonymises what it
// holds about the user in reaction.
type UserDeleted struct {
	UserID    string    `json:"userId"`
	DeletedAt time.Time `json:"deletedAt"`
}

// SessionStarted is the data of TypeSessionStarted. SessionID is a non-secret identifier of
// the session, never its bearer token.
type SessionStarted struct {
	SessionID string    `json:"sessionId"`
	UserID    string    `json:"userId"`
	StartedAt time.Time `json:"startedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Reasons a session ends, for SessionEnded.Reason.
const (
	SessionEndLogout      = "logout"
	SessionEndRevoked     = "revoked"
	SessionEndExpired     = "expired"
	SessionEndUserDeleted = "user_deleted"
)

// SessionEnded is the data of TypeSessionEnded; Reason is one of the SessionEnd constants.
type SessionEnded struct {
	SessionID string    `json:"sessionId"`
	UserID    string    `json:"userId"`
	Reason    string    `json:"reason"`
	EndedAt   time.Time `json:"endedAt"`
}

// ProductCreated is the data of TypeProductCreated. Attributes are free-form nested values
// (colour, sizes, dimensions…) as stored by the catalog.
type ProductCreated struct {
	ProductID    string         `json:"productId"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Category     string         `json:"category"`
	Price        Money          `json:"price"`
	Attributes   map[string]any `json:"attributes"`
	InitialStock int64          `json:"initialStock"`
	CreatedAt    time.Time      `json:"createdAt"`
}

// ProductUpdated is the data of TypeProductUpdated: the product's full new state, so a
// projection can upsert it without having seen earlier events.
type ProductUpdated struct {
	ProductID   string         `json:"productId"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Category    string         `json:"category"`
	Price       Money          `json:"price"`
	Attributes  map[string]any `json:"attributes"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

// ProductPriceChanged is the data of TypeProductPriceChanged, emitted alongside
// ProductUpdated when the price differs, for consumers that only care about prices.
type ProductPriceChanged struct {
	ProductID string    `json:"productId"`
	Old       Money     `json:"old"`
	New       Money     `json:"new"`
	ChangedAt time.Time `json:"changedAt"`
}

// ProductDeleted is the data of TypeProductDeleted.
type ProductDeleted struct {
	ProductID string    `json:"productId"`
	DeletedAt time.Time `json:"deletedAt"`
}

// OrderItem is one line of an order: the unit price is the catalog price when the order
// was placed.
type OrderItem struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
	UnitPrice Money  `json:"unitPrice"`
}

// StockItem is a quantity of one product reserved or released.
type StockItem struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// StockShortage says how much of a product was asked for and how much was available.
type StockShortage struct {
	ProductID string `json:"productId"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// StockReserved is the data of TypeStockReserved: every item of the order is held until
// ExpiresAt, after which inventory releases it unless the order is confirmed.
type StockReserved struct {
	OrderID       string      `json:"orderId"`
	UserID        string      `json:"userId"`
	ReservationID string      `json:"reservationId"`
	Items         []StockItem `json:"items"`
	ReservedAt    time.Time   `json:"reservedAt"`
	ExpiresAt     time.Time   `json:"expiresAt"`
}

// StockReservationFailed is the data of TypeStockReservationFailed; nothing was reserved.
type StockReservationFailed struct {
	OrderID   string          `json:"orderId"`
	UserID    string          `json:"userId"`
	Reason    string          `json:"reason"`
	Shortages []StockShortage `json:"shortages"`
	FailedAt  time.Time       `json:"failedAt"`
}

// Reasons stock is released, for StockReleased.Reason.
const (
	ReleaseOrderCancelled = "order_cancelled"
	ReleaseExpired        = "expired"
)

// StockReleased is the data of TypeStockReleased: a reservation given back to stock.
type StockReleased struct {
	OrderID       string      `json:"orderId"`
	UserID        string      `json:"userId"`
	ReservationID string      `json:"reservationId"`
	Items         []StockItem `json:"items"`
	Reason        string      `json:"reason"`
	ReleasedAt    time.Time   `json:"releasedAt"`
}

// StockCommitted is the data of TypeStockCommitted: a reservation became a sale.
type StockCommitted struct {
	OrderID       string      `json:"orderId"`
	UserID        string      `json:"userId"`
	ReservationID string      `json:"reservationId"`
	Items         []StockItem `json:"items"`
	CommittedAt   time.Time   `json:"committedAt"`
}

// StockChanged is the data of TypeStockChanged: a product's availability after any change
// (created, restocked, reserved, released, sold, expired, retired). Version equals the
// envelope's Sequence.
type StockChanged struct {
	ProductID string `json:"productId"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
}

// OrderPlaced is the data of TypeOrderPlaced: the order exists in state PENDING and its saga
// has started.
type OrderPlaced struct {
	OrderID  string      `json:"orderId"`
	UserID   string      `json:"userId"`
	Items    []OrderItem `json:"items"`
	Total    Money       `json:"total"`
	PlacedAt time.Time   `json:"placedAt"`
}

// OrderConfirmed is the data of TypeOrderConfirmed: stock reserved and payment charged.
type OrderConfirmed struct {
	OrderID     string    `json:"orderId"`
	UserID      string    `json:"userId"`
	PaymentID   string    `json:"paymentId"`
	Total       Money     `json:"total"`
	ConfirmedAt time.Time `json:"confirmedAt"`
}

// OrderCancelled is the data of TypeOrderCancelled; completed saga steps have been
// compensated. Reason is a short machine-readable cause such as "out_of_stock",
// "payment_declined", "timeout" or "user_deleted".
type OrderCancelled struct {
	OrderID     string    `json:"orderId"`
	UserID      string    `json:"userId"`
	Reason      string    `json:"reason"`
	CancelledAt time.Time `json:"cancelledAt"`
}

// PaymentCharged is the data of TypePaymentCharged.
type PaymentCharged struct {
	PaymentID string    `json:"paymentId"`
	OrderID   string    `json:"orderId"`
	UserID    string    `json:"userId"`
	Amount    Money     `json:"amount"`
	ChargedAt time.Time `json:"chargedAt"`
}

// PaymentDeclined is the data of TypePaymentDeclined; no money moved.
type PaymentDeclined struct {
	PaymentID  string    `json:"paymentId"`
	OrderID    string    `json:"orderId"`
	UserID     string    `json:"userId"`
	Amount     Money     `json:"amount"`
	Reason     string    `json:"reason"`
	DeclinedAt time.Time `json:"declinedAt"`
}

// PaymentRefunded is the data of TypePaymentRefunded: a charge given back, in full.
type PaymentRefunded struct {
	PaymentID  string    `json:"paymentId"`
	OrderID    string    `json:"orderId"`
	UserID     string    `json:"userId"`
	Amount     Money     `json:"amount"`
	Reason     string    `json:"reason"`
	RefundedAt time.Time `json:"refundedAt"`
}

// registry maps every known event type to its payload type.
var registry = map[string]reflect.Type{
	TypeUserRegistered:         reflect.TypeFor[UserRegistered](),
	TypeUserAddressChanged:     reflect.TypeFor[UserAddressChanged](),
	TypeUserDeleted:            reflect.TypeFor[UserDeleted](),
	TypeSessionStarted:         reflect.TypeFor[SessionStarted](),
	TypeSessionEnded:           reflect.TypeFor[SessionEnded](),
	TypeProductCreated:         reflect.TypeFor[ProductCreated](),
	TypeProductUpdated:         reflect.TypeFor[ProductUpdated](),
	TypeProductPriceChanged:    reflect.TypeFor[ProductPriceChanged](),
	TypeProductDeleted:         reflect.TypeFor[ProductDeleted](),
	TypeStockReserved:          reflect.TypeFor[StockReserved](),
	TypeStockReservationFailed: reflect.TypeFor[StockReservationFailed](),
	TypeStockReleased:          reflect.TypeFor[StockReleased](),
	TypeStockCommitted:         reflect.TypeFor[StockCommitted](),
	TypeStockChanged:           reflect.TypeFor[StockChanged](),
	TypeOrderPlaced:            reflect.TypeFor[OrderPlaced](),
	TypeOrderConfirmed:         reflect.TypeFor[OrderConfirmed](),
	TypeOrderCancelled:         reflect.TypeFor[OrderCancelled](),
	TypePaymentCharged:         reflect.TypeFor[PaymentCharged](),
	TypePaymentDeclined:        reflect.TypeFor[PaymentDeclined](),
	TypePaymentRefunded:        reflect.TypeFor[PaymentRefunded](),

	TypeCmdReserveStock:        reflect.TypeFor[ReserveStock](),
	TypeCmdReleaseStock:        reflect.TypeFor[ReleaseStock](),
	TypeCmdCommitStock:         reflect.TypeFor[CommitStock](),
	TypeCmdChargePayment:       reflect.TypeFor[ChargePayment](),
	TypeCmdRefundPayment:       reflect.TypeFor[RefundPayment](),
	TypeReplyStockReserved:     reflect.TypeFor[InventoryReply](),
	TypeReplyStockRejected:     reflect.TypeFor[InventoryReply](),
	TypeReplyStockReleased:     reflect.TypeFor[InventoryReply](),
	TypeReplyStockCommitted:    reflect.TypeFor[InventoryReply](),
	TypeReplyStockCommitFailed: reflect.TypeFor[InventoryReply](),
	TypeReplyPaymentCharged:    reflect.TypeFor[PaymentReply](),
	TypeReplyPaymentDeclined:   reflect.TypeFor[PaymentReply](),
	TypeReplyPaymentFailed:     reflect.TypeFor[PaymentReply](),
	TypeReplyPaymentRefunded:   reflect.TypeFor[PaymentReply](),
}

func payloadType(typ string) reflect.Type { return registry[typ] }

// PayloadFor returns a pointer to a new zero payload of the type registered for typ (such
// as *UserRegistered for TypeUserRegistered), ready for Envelope.Decode, or nil when typ is
// not a known event type.
func PayloadFor(typ string) any {
	t := registry[typ]
	if t == nil {
		return nil
	}
	return reflect.New(t).Interface()
}

// Types returns every known event type, sorted.
func Types() []string {
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// TypesOf returns the known event types owned by service, sorted.
func TypesOf(service string) []string {
	var types []string
	for _, t := range Types() {
		if OwnerOf(t) == service {
			types = append(types, t)
		}
	}
	return types
}
