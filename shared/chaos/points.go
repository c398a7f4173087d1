package chaos

import (
	"slices"
	"strings"
)

// Point is one named crash point: a place in a service where a process may be made to die
// at the worst moment, and what surviving that death proves.
type Point struct {
	// Name is "<service>.<place>", the key of crashPoints in the faults API.
	Name string
	// Where says in words where the process dies.
	Where string
	// Tests says what must still hold after the restart.
	Tests string
	// Pattern, when set, is the pattern switch and value without which the point is never
	// passed (a lab's point); the chaos run leaves such points alone.
	Pattern string
}

// Service returns the service part of the point's name.
func (p Point) Service() string { s, _, _ := strings.Cut(p.Name, "."); return s }

// Places where a point is hit; services name their points "<service>.<place>".
const (
	PlaceReplyBeforeRelay   = "reply.before_relay"
	PlaceCommandBeforeRelay = "command.before_relay"
	PlaceRelayAfterPublish  = "relay.after_publish"
	PlaceConsumerBeforeAck  = "consumer.before_ack"
	PlacePlaceBeforeReply   = "place.before_response"
)

// Points is the one table of every crash point. README.md (top level) repeats it.
var Points = []Point{
	{"inventory.reply.before_relay",
		"inventory's relay, about to publish a saga reply that the command's transaction committed (stock changed, reply stored, outbox row written)",
		"the committed reply is published after the restart (outbox), so orders hears of a reservation that really happened", ""},
	{"payments.reply.before_relay",
		"payments' relay, about to publish a saga reply that the command's transaction committed (charge or refund stored, outbox row written)",
		"a charge that happened is always reported: no money taken for an order that then times out unrefunded", ""},
	{"orders.command.before_relay",
		"orders' relay, about to publish a saga command that a persisted step (placement, a reply, a retry or deadline timer) wrote",
		"the saga resumes from the database: the command goes out after the restart, or the step's timer re-sends it", ""},
	{"inventory.relay.after_publish",
		"inventory's relay, after the broker stored an event or reply and before the outbox row is marked sent",
		"the republished copy is dropped by the broker (same Nats-Msg-Id) or ignored by idempotent consumers", ""},
	{"payments.relay.after_publish",
		"payments' relay, after the broker stored an event or reply and before the outbox row is marked sent",
		"the same, for charges and refunds: a reply seen twice is harmless to orders", ""},
	{"orders.relay.after_publish",
		"orders' relay, after the broker stored a command or event and before the outbox row is marked sent",
		"a command published twice has no second effect in inventory or payments (idempotent per order and verb)", ""},
	{"inventory.consumer.before_ack",
		"inventory's consumers, after a handler's transaction committed (a saga command, or a catalog event) and before the ack",
		"the redelivered message re-sends the stored reply as a new event and changes no stock twice (inbox, per-order row)", ""},
	{"payments.consumer.before_ack",
		"payments' consumers, after a command's transaction committed and before the ack",
		"the redelivered charge or refund answers the stored reply: never a second charge", ""},
	{"orders.consumer.before_ack",
		"orders' consumers, after a reply's transition committed (next command in the outbox) and before the ack",
		"the redelivered reply no longer fits the saga's state and changes nothing", ""},
	{"orders.place.before_response",
		"orders' POST /orders, after the order, its saga and its first command committed and before the 202 is written",
		"the client's retry with the same Idempotency-Key gets the same order; no second order, no lost one", ""},
	{Name: "users.direct.before_publish",
		Where:   "users in publish mode direct (lab 02), after a change committed without an outbox row and before users publishes its event itself",
		Tests:   "nothing survives: the event is lost and orders' address copy drifts; the outbox mode has no such gap",
		Pattern: PatternUsersPublish + "=" + PublishDirect},
}

// PlaceDirectBeforePublish is where a service in publish mode direct dies between its
// commit and its own publish.
const PlaceDirectBeforePublish = "direct.before_publish"

// RunPoints are the points a chaos run arms: those that need no pattern switch.
func RunPoints() []Point {
	var out []Point
	for _, p := range Points {
		if p.Pattern == "" {
			out = append(out, p)
		}
	}
	return out
}

// Lookup returns the point named name.
func Lookup(name string) (Point, bool) {
	i := slices.IndexFunc(Points, func(p Point) bool { return p.Name == name })
	if i < 0 {
		return Point{}, false
	}
	return Points[i], true
}

// PointsOf returns the points of service, in table order.
func PointsOf(service string) []Point {
	var out []Point
	for _, p := range Points {
		if p.Service() == service {
			out = append(out, p)
		}
	}
	return out
}
