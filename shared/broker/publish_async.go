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
	return c.PublishEncodedAsync(ctx, e.ID, e.Type, e.TraceParent, e.CorrelationID, body)
}

// PublishEncodedAsync is PublishAsync for an event already encoded as its envelope JSON
// (as an outbox stores it), given with the attributes publishing needs: body goes out as
// it is, on the subject of type typ, with id as its de-duplication id. It saves the
// decode and encode of the envelope per event, an outbox relay's largest cost per event
// (outbox.EncodedPublisher).
func (c *Conn) PublishEncodedAsync(_ context.Context, id, typ, traceParent, correlationID string, body []byte) (wait func(context.Context) error, err error) {
	hdr := nats.Header{}
	hdr.Set("Content-Type", "application/cloudevents+json")
	if traceParent != "" {
		hdr.Set(HeaderTraceParent, traceParent)
	}
	if correlationID != "" {
		hdr.Set(HeaderCorrelationID, correlationID)
	}
	hdr.Set(jetstream.MsgIDHeader, id)
	subject := events.SubjectFor(typ)
	f, err := c.js.PublishMsgAsync(&nats.Msg{Subject: subject, Header: hdr, Data: body})
	if err != nil {
		return nil, fmt.Errorf("publish %s %s: %w", subject, id, err)
	}
	return func(ctx context.Context) error {
		t := time.NewTimer(AckTimeout)
		defer t.Stop()
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return fmt.Errorf("publish %s %s: %w", subject, id, err)
		case <-t.C:
			return fmt.Errorf("publish %s %s: %w", subject, id, jetstream.ErrAsyncPublishTimeout)
		case <-ctx.Done():
			return fmt.Errorf("publish %s %s: %w", subject, id, ctx.Err())
		}
	}, nil
}
