package activity

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// Target says what Apply does with an event.
type Target int

// Targets of a Rule.
const (
	// UserFeed appends the event to the feed of the user its payload names.
	UserFeed Target = iota + 1
	// GlobalFeed appends the event to the global recent-activity feed.
	GlobalFeed
	// EraseUser deletes the feed of the user its payload names and tombstones the user.
	EraseUser
)

// Rule maps one event type to its feed. project decodes the payload strictly and returns
// the user the event belongs to ("" for the global feed) and the entry's summary.
type Rule struct {
	Target  Target
	project func(e events.Envelope) (userID, summary string, err error)
}

// rules is THE table from event type to feed. It is the only place to touch when the
// activity service starts following a new event type: add one line here, and the consumer
// subscribes to the type's subject on its owner's stream (see Subscriptions). The saga's
// events (inventory, orders, payments) all carry userId and go to that user's feed; the
// entry's subject (order or payment id) says which order a line is about.
var rules = map[string]Rule{
	events.TypeUserRegistered: userRule(func(p *events.UserRegistered) (string, string) {
		return p.UserID, "Account created"
	}),
	events.TypeUserAddressChanged: userRule(func(p *events.UserAddressChanged) (string, string) {
		return p.UserID, fmt.Sprintf("Address changed (%s, %s)", p.Address.City, p.Address.Country)
	}),
	events.TypeSessionStarted: userRule(func(p *events.SessionStarted) (string, string) {
		return p.UserID, "Signed in"
	}),
	events.TypeSessionEnded: userRule(func(p *events.SessionEnded) (string, string) {
		return p.UserID, sessionEndSummary(p.Reason)
	}),
	events.TypeProductCreated: globalRule(func(p *events.ProductCreated) string {
		return fmt.Sprintf("New product: %s (%s) at %s", p.Name, p.Category, money(p.Price))
	}),
	events.TypeProductUpdated: globalRule(func(p *events.ProductUpdated) string {
		return "Product updated: " + p.Name
	}),
	events.TypeProductPriceChanged: globalRule(func(p *events.ProductPriceChanged) string {
		return fmt.Sprintf("Price changed from %s to %s", money(p.Old), money(p.New))
	}),
	events.TypeProductDeleted: globalRule(func(p *events.ProductDeleted) string {
		return "Product removed"
	}),
	events.TypeUserDeleted: {Target: EraseUser, project: decoded(func(p *events.UserDeleted) (string, string) {
		return p.UserID, ""
	})},
	events.TypeStockReserved: userRule(func(p *events.StockReserved) (string, string) {
		return p.UserID, "Stock reserved for your order (" + itemCount(p.Items) + ")"
	}),
	events.TypeStockReservationFailed: userRule(func(p *events.StockReservationFailed) (string, string) {
		return p.UserID, "Stock could not be reserved for your order (" + p.Reason + ")"
	}),
	events.TypeStockReleased: userRule(func(p *events.StockReleased) (string, string) {
		return p.UserID, "Reserved stock released (" + p.Reason + ")"
	}),
	events.TypeStockCommitted: userRule(func(p *events.StockCommitted) (string, string) {
		return p.UserID, "Stock committed for your order (" + itemCount(p.Items) + ")"
	}),
	events.TypeOrderPlaced: userRule(func(p *events.OrderPlaced) (string, string) {
		return p.UserID, "Order placed: " + money(p.Total)
	}),
	events.TypeOrderConfirmed: userRule(func(p *events.OrderConfirmed) (string, string) {
		return p.UserID, "Order confirmed: " + money(p.Total)
	}),
	events.TypeOrderCancelled: userRule(func(p *events.OrderCancelled) (string, string) {
		return p.UserID, "Order cancelled (" + p.Reason + ")"
	}),
	events.TypePaymentCharged: userRule(func(p *events.PaymentCharged) (string, string) {
		return p.UserID, "Payment of " + money(p.Amount) + " charged"
	}),
	events.TypePaymentDeclined: userRule(func(p *events.PaymentDeclined) (string, string) {
		return p.UserID, "Payment of " + money(p.Amount) + " declined (" + p.Reason + ")"
	}),
	events.TypePaymentRefunded: userRule(func(p *events.PaymentRefunded) (string, string) {
		return p.UserID, "Payment of " + money(p.Amount) + " refunded"
	}),
}

// itemCount says how many units items hold: "1 item", "3 items".
func itemCount(items []events.StockItem) string {
	var n int64
	for _, it := range items {
		n += it.Quantity
	}
	if n == 1 {
		return "1 item"
	}
	return fmt.Sprintf("%d items", n)
}

// userRule builds a UserFeed rule from a function of the typed payload P.
func userRule[P any](f func(*P) (userID, summary string)) Rule {
	return Rule{Target: UserFeed, project: decoded(f)}
}

// globalRule builds a GlobalFeed rule from a function of the typed payload P.
func globalRule[P any](f func(*P) (summary string)) Rule {
	return Rule{Target: GlobalFeed, project: decoded(func(p *P) (string, string) { return "", f(p) })}
}

func decoded[P any](f func(*P) (string, string)) func(events.Envelope) (string, string, error) {
	return func(e events.Envelope) (string, string, error) {
		var p P
		if err := e.Decode(&p); err != nil {
			return "", "", err
		}
		uid, summary := f(&p)
		return uid, summary, nil
	}
}

// RuleFor returns the rule of event type typ.
func RuleFor(typ string) (Rule, bool) {
	r, ok := rules[typ]
	return r, ok
}

// Subscription is what the consumer must read: the subjects of one owner's stream.
type Subscription struct {
	// Owner is the service whose stream holds the events ("users").
	Owner string
	// Subjects are the exact NATS subjects of the ruled event types, sorted.
	Subjects []string
}

// Subscriptions returns, per owner (sorted), the subjects of every event type in the rule
// table: derived from the table so that adding a rule is enough to consume a new type.
func Subscriptions() []Subscription {
	byOwner := map[string][]string{}
	for typ := range rules {
		o := events.OwnerOf(typ)
		byOwner[o] = append(byOwner[o], events.SubjectFor(typ))
	}
	var subs []Subscription
	for _, o := range slices.Sorted(maps.Keys(byOwner)) {
		subs = append(subs, Subscription{Owner: o, Subjects: slices.Sorted(slices.Values(byOwner[o]))})
	}
	return subs
}

func sessionEndSummary(reason string) string {
	switch reason {
	case events.SessionEndLogout:
		return "Signed out"
	case events.SessionEndExpired:
		return "Session expired"
	case events.SessionEndRevoked:
		return "Session revoked"
	case events.SessionEndUserDeleted:
		return "Session ended: account deleted"
	default:
		return "Session ended"
	}
}

// money formats minor units with two decimals ("12.99 EUR"); every currency the shop sells
// in has two.
func money(m events.Money) string {
	sign, a := "", m.Amount
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, a/100, a%100, strings.ToUpper(m.Currency))
}

// canonicalUUID returns id in canonical lower-case form, or ok=false when it is not a UUID.
func canonicalUUID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", false
	}
	return u.String(), true
}
