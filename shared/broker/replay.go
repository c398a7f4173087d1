package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/events"
)

// ReplayDLQ hands up to max dead letters of this service, oldest first, to h, and deletes
// each one from DLQ_<SERVICE> once h returns nil. It stops at the first handler error (the
// letter stays) and returns how many letters were replayed. filter selects letters by
// subject: "" means all, a subject without the "dlq." prefix (such as "users.>") is taken
// as the original subject. Letters whose body is not a valid envelope are skipped and stay.
//
// Why a handler instead of republishing to the original subject: the original subject
// belongs to another service, which this service's NATS user may not publish on, and a
// republished event would reach every consumer of that stream, not just the one that gave
// up. Calling the consumer's handler directly replays to exactly that consumer, with the
// same idempotency as a redelivery (the inbox never recorded the failed event, so it
// accepts it now). Use Subscription.ReplayDLQ to restrict the replay to one consumer's
// letters with its own handler.
func (c *Conn) ReplayDLQ(ctx context.Context, filter string, max int, h Handler) (int, error) {
	return c.replay(ctx, filter, "", max, h)
}

// ReplayDLQ replays up to max dead letters that this subscription's consumer produced (its
// durable name is in the Polyshop-Dlq-Consumer header) through its handler; see
// Conn.ReplayDLQ.
func (s *Subscription) ReplayDLQ(ctx context.Context, max int) (int, error) {
	return s.c.replay(ctx, "", s.spec.Durable, max, s.h)
}

func (c *Conn) replay(ctx context.Context, filter, durable string, max int, h Handler) (int, error) {
	subject := "dlq." + c.service + ".>"
	switch {
	case filter == "":
	case strings.HasPrefix(filter, "dlq."):
		subject = filter
	default:
		subject = DLQSubject(c.service, filter)
	}
	stream, err := c.js.Stream(ctx, DLQStream(c.service))
	if err != nil {
		return 0, fmt.Errorf("replay: dlq stream: %w", err)
	}
	n := 0
	for seq := uint64(1); n < max; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("replay: read dead letter after %d: %w", seq, err)
		}
		seq = raw.Sequence + 1
		if durable != "" && raw.Header.Get(HeaderDLQConsumer) != durable {
			continue
		}
		e, err := events.Parse(raw.Data)
		if err != nil {
			c.log.WarnContext(ctx, "replay: skipping malformed dead letter", "dlq_seq", raw.Sequence, "err", err)
			continue
		}
		hctx, span := c.tracer().Start(e.Context(ctx), raw.Subject+" replay",
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(spanAttrs(raw.Subject, e.ID)...))
		err = call(hctx, h, e)
		span.End()
		if err != nil {
			return n, fmt.Errorf("replay dead letter %d (event %s): %w", raw.Sequence, e.ID, err)
		}
		if err := stream.DeleteMsg(ctx, raw.Sequence); err != nil {
			return n, fmt.Errorf("replay: delete dead letter %d: %w", raw.Sequence, err)
		}
		n++
	}
	return n, nil
}
