package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/events"
)

// AckTimeout bounds how long PublishAsync's wait waits for JetStream's acknowledgement
// when its ctx has no earlier deadline (a message the server dropped, such as one denied
// by permissions, is never acknowledged).
const AckTimeout = 5 * time.Second

// PublishAsync sends e like Publish but returns once it is handed to the connection,
// without waiting for JetStream's acknowledgement; wait then returns the outcome (nil:
// stored, or dropped as a duplicate within DuplicateWindow). Many publishes can be in
// flight at once from one goroutine, which is what makes it fast: outbox relays use it
// (outbox.AsyncPublisher). Messages of one connection reach the stream in the order they
// were sent.
func (c *Conn) PublishAsync(ctx context.Context, e events.Envelope) (wait func(context.Context) error, err error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	hdr := nats.Header{}
	hdr.Set("Content-Type", "application/cloudevents+json")
	if e.TraceParent != "" {
		hdr.Set(HeaderTraceParent, e.TraceParent)
	}
	if e.CorrelationID != "" {
		hdr.Set(HeaderCorrelationID, e.CorrelationID)
	}
	hdr.Set(jetstream.MsgIDHeader, e.ID)
	subject := e.NATSSubject()
	f, err := c.js.PublishMsgAsync(&nats.Msg{Subject: subject, Header: hdr, Data: body})
	if err != nil {
		return nil, fmt.Errorf("publish %s %s: %w", subject, e.ID, err)
	}
	return func(ctx context.Context) error {
		t := time.NewTimer(AckTimeout)
		defer t.Stop()
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return fmt.Errorf("publish %s %s: %w", subject, e.ID, err)
		case <-t.C:
			return fmt.Errorf("publish %s %s: %w", subject, e.ID, jetstream.ErrAsyncPublishTimeout)
		case <-ctx.Done():
			return fmt.Errorf("publish %s %s: %w", subject, e.ID, ctx.Err())
		}
	}, nil
}
