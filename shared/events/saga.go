package events

import "time"

// The order saga's commands and replies (SPEC.md "The order saga", SAGA.md). They travel in
// the same CloudEvents envelope as domain events and through the same outboxes, so a
// command or reply is never a dual write either:
//
//   - commands are owned by orders and published on "orders.cmd.<participant>.<verb>.v1"
//     (stream ORDERS); participants consume only their own verbs;
//   - replies are owned by the participant and published on
//     "<participant>.reply.<outcome>.v1" (streams INVENTORY, PAYMENTS); orders consumes them.
//
// Subject is the order id for every command and reply. Sequence is the sender's counter
// for that order (orders: the saga's version when it sent the command; a participant: how
// many replies it has written for the order), so it only orders messages of one sender.
// Each send, a retry or a re-sent reply included, is a new envelope with a new id: the
// broker drops a repeated id, and a repeated command must reach the participant.
//
// Attempt is the orchestrator's attempt number of the step (1, 2, …); a reply echoes the
// attempt of the command it answers, so orders can ignore an answer to an older attempt.
const (
	// TypeCmdReserveStock: orders asks inventory to reserve every item of an order, or none.
	TypeCmdReserveStock = "polyshop.orders.cmd.inventory.reserve.v1"
	// TypeCmdReleaseStock: compensation; give a reservation back (or tombstone the order).
	TypeCmdReleaseStock = "polyshop.orders.cmd.inventory.release.v1"
	// TypeCmdCommitStock: the reservation becomes a sale (retryable; the charge is done).
	TypeCmdCommitStock = "polyshop.orders.cmd.inventory.commit.v1"
	// TypeCmdChargePayment: the pivot; charge the order's total once.
	TypeCmdChargePayment = "polyshop.orders.cmd.payments.charge.v1"
	// TypeCmdRefundPayment: compensation; refund the charge (or tombstone the order).
	TypeCmdRefundPayment = "polyshop.orders.cmd.payments.refund.v1"

	// TypeReplyStockReserved: every item is held (data InventoryReply with ReservationID,
	// Items, ExpiresAt).
	TypeReplyStockReserved = "polyshop.inventory.reply.reserved.v1"
	// TypeReplyStockRejected: nothing is held; Reason is RejectOutOfStock,
	// RejectUnknownProduct or RejectReleased (a release came first).
	TypeReplyStockRejected = "polyshop.inventory.reply.rejected.v1"
	// TypeReplyStockReleased: nothing is held for the order any more.
	TypeReplyStockReleased = "polyshop.inventory.reply.released.v1"
	// TypeReplyStockCommitted: the reserved items are sold.
	TypeReplyStockCommitted = "polyshop.inventory.reply.committed.v1"
	// TypeReplyStockCommitFailed: the reservation was gone and could not be re-taken; final.
	TypeReplyStockCommitFailed = "polyshop.inventory.reply.commit_failed.v1"

	// TypeReplyPaymentCharged: the order's total is charged (data PaymentReply with PaymentID).
	TypeReplyPaymentCharged = "polyshop.payments.reply.charged.v1"
	// TypeReplyPaymentDeclined: no money moved, and none will for this order; final.
	TypeReplyPaymentDeclined = "polyshop.payments.reply.declined.v1"
	// TypeReplyPaymentFailed: a transient error; nothing was stored, a retry is tried afresh.
	TypeReplyPaymentFailed = "polyshop.payments.reply.failed.v1"
	// TypeReplyPaymentRefunded: no money is held for the order any more (refunded, or no
	// charge existed and a late one will be refused).
	TypeReplyPaymentRefunded = "polyshop.payments.reply.refunded.v1"
)

// Reasons in an InventoryReply of TypeReplyStockRejected or TypeReplyStockCommitFailed,
// and in PaymentReply.Reason of TypeReplyPaymentDeclined.
const (
	RejectOutOfStock     = "out_of_stock"
	RejectUnknownProduct = "unknown_product"
	// RejectReleased: a release (or refund) for the order came before this command, so it
	// is refused for good (the hanging-compensation guard).
	RejectReleased = "released"
	// RejectExpired: a commit found the reservation expired and the stock gone.
	RejectExpired = "expired"
)

// ReserveStock is the data of TypeCmdReserveStock.
type ReserveStock struct {
	OrderID string      `json:"orderId"`
	UserID  string      `json:"userId"`
	Attempt int         `json:"attempt"`
	Items   []StockItem `json:"items"`
}

// ReleaseStock is the data of TypeCmdReleaseStock. Reason is the order's cancel reason.
type ReleaseStock struct {
	OrderID string `json:"orderId"`
	UserID  string `json:"userId"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

// CommitStock is the data of TypeCmdCommitStock.
type CommitStock struct {
	OrderID string `json:"orderId"`
	UserID  string `json:"userId"`
	Attempt int    `json:"attempt"`
}

// ChargePayment is the data of TypeCmdChargePayment: Amount minor units of Currency. The
// order id is the idempotency key: an order is charged at most once.
type ChargePayment struct {
	OrderID  string `json:"orderId"`
	UserID   string `json:"userId"`
	Attempt  int    `json:"attempt"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// RefundPayment is the data of TypeCmdRefundPayment. Reason is the order's cancel reason.
type RefundPayment struct {
	OrderID string `json:"orderId"`
	UserID  string `json:"userId"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

// InventoryReply is the data of every inventory reply type; fields that do not apply to a
// type are omitted.
type InventoryReply struct {
	OrderID       string          `json:"orderId"`
	UserID        string          `json:"userId"`
	Attempt       int             `json:"attempt"`
	ReservationID string          `json:"reservationId,omitempty"`
	Items         []StockItem     `json:"items,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	Shortages     []StockShortage `json:"shortages,omitempty"`
	ExpiresAt     *time.Time      `json:"expiresAt,omitempty"`
	At            time.Time       `json:"at"`
}

// PaymentReply is the data of every payments reply type; fields that do not apply to a
// type are omitted. Amount is set on charged and refunded (the refunded amount: zero when
// no charge existed).
type PaymentReply struct {
	OrderID   string    `json:"orderId"`
	UserID    string    `json:"userId"`
	Attempt   int       `json:"attempt"`
	PaymentID string    `json:"paymentId,omitempty"`
	Amount    *Money    `json:"amount,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
}
