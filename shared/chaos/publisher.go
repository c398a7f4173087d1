package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"polyshop/shared/events"
)

// Broker is what Publisher publishes through: *broker.Conn.
type Broker interface {
	Publish(ctx context.Context, e events.Envelope) error
	PublishRaw(ctx context.Context, subject, msgID string, body []byte, hdr nats.Header) error
}

// Publisher is an outbox.Publisher for a service's relay that passes the relay's crash
// points (<svc>.reply.before_relay, <svc>.command.before_relay, <svc>.relay.after_publish)
// and publishes the configured number of copies of each event.
type Publisher struct {
	s *Switches
	b Broker
}

// Publisher returns the relay publisher of s's service over b.
func (s *Switches) Publisher(b Broker) *Publisher { return &Publisher{s: s, b: b} }

// Publish publishes e (and its duplicates) and returns once the broker stored them. A
// failed duplicate fails the publish, so the relay tries the event again later; the copies
// already stored are dropped then by the broker's duplicate window.
func (p *Publisher) Publish(ctx context.Context, e events.Envelope) error {
	svc := p.s.service
	switch {
	case strings.HasPrefix(e.Type, "polyshop."+svc+".reply."):
		p.s.Hit(svc + "." + PlaceReplyBeforeRelay)
	case strings.HasPrefix(e.Type, "polyshop."+svc+".cmd."):
		p.s.Hit(svc + "." + PlaceCommandBeforeRelay)
	}
	if err := p.b.Publish(ctx, e); err != nil {
		return err
	}
	if n := p.s.Duplicates(); n > 1 {
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		for k := 2; k <= n; k++ {
			hdr := nats.Header{}
			hdr.Set("Content-Type", "application/cloudevents+json")
			if e.TraceParent != "" {
				hdr.Set("traceparent", e.TraceParent)
			}
			if e.CorrelationID != "" {
				hdr.Set("X-Correlation-Id", e.CorrelationID)
			}
			if err := p.b.PublishRaw(ctx, e.NATSSubject(), DuplicateID(e.ID, k), body, hdr); err != nil {
				return err
			}
		}
	}
	p.s.Hit(svc + "." + PlaceRelayAfterPublish)
	return nil
}

// DuplicateID is the Nats-Msg-Id of the k-th copy (k >= 2) of event id.
func DuplicateID(id string, k int) string { return fmt.Sprintf("%s~dup%d", id, k) }

// ConsumerHook is the function to register with broker.Conn.OnHandled: it passes the
// service's <svc>.consumer.before_ack point after a handler committed.
func (s *Switches) ConsumerHook(string, events.Envelope) {
	s.Hit(s.service + "." + PlaceConsumerBeforeAck)
}
