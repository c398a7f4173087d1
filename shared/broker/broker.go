// Package broker is Polyshop's NATS JetStream client: connecting as a service, idempotent
// stream set-up, publishing with de-duplication by event id, durable pull consumers with
// explicit ack, bounded redelivery with backoff, a dead-letter stream per service, and
// replay of dead letters.
//
// Delivery is at least once end to end. A publisher may send the same event twice (an
// outbox relay that crashed between publish and mark); JetStream drops the copy when it
// arrives within the stream's duplicate window (Nats-Msg-Id = event id). A consumer may see
// an event more than once (redelivery after a failure or an ack lost in transit), so every
// handler must be idempotent (see package inbox).
package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/events"
	"polyshop/shared/obs"
)

// Header names set on every message Polyshop publishes.
const (
	// HeaderTraceParent carries the W3C traceparent of the producing span.
	HeaderTraceParent = "traceparent"
	// HeaderCorrelationID carries the correlation id of the operation.
	HeaderCorrelationID = "X-Correlation-Id"
)

// Stream settings shared by every owner stream.
const (
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. An outbox relay that
	// republishes an event within this window produces no second copy in the stream.
	DuplicateWindow = 2 * time.Minute
	// StreamMaxAge is how long events stay in an owner stream (and dead letters in a DLQ).
	StreamMaxAge = 30 * 24 * time.Hour
)

const tracerName = "polyshop/shared/broker"

// Conn is a NATS connection of one service with its JetStream context. It is safe for
// concurrent use. It reconnects forever; while disconnected, publishes fail (after the
// client's reconnect buffer) and consumers pause, and both resume on reconnect.
type Conn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	service string
	log     *slog.Logger
	closed  chan struct{}
	// onHandled is called between a handler's success and its ack (see OnHandled).
	onHandled atomic.Pointer[func(durable string, e events.Envelope)]

	subsMu sync.Mutex
	subs   []*Subscription // running consumers, for metrics and dead-letter replay (ops.go)

	streamsMu sync.Mutex
	streams   map[string]string // stream name → subjects the service ensures, again on every (re)connect
}

// Connect connects to url as service (the connection name seen in NATS monitoring). Later
// disconnects are logged and retried forever. When no server answers at start, Connect
// does not fail: it returns a connection that keeps trying in the background (Ready
// reports it down, publishes fail, consumers and EnsureStream wait for it), so a service
// can start — and accept work into its outbox — while the broker is down. A refusal by the
// server (a wrong password) is an error at once. ctx bounds the initial attempt only.
func Connect(ctx context.Context, url, service string, log *slog.Logger) (*Conn, error) {
	if service == "" {
		return nil, errors.New("broker: service name is required")
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Conn{service: service, log: log.With("component", "broker"), closed: make(chan struct{}),
		streams: map[string]string{}}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	opts := []nats.Option{
		nats.Name(service),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			c.log.WarnContext(context.Background(), "nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.InfoContext(context.Background(), "nats reconnected", "url", nc.ConnectedUrlRedacted())
			go c.ensureAll()
		}),
		nats.ConnectHandler(func(nc *nats.Conn) { // the first connection made in the background
			c.log.InfoContext(context.Background(), "nats connected", "url", nc.ConnectedUrlRedacted())
			go c.ensureAll()
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			// Permission violations and slow consumers are reported here, asynchronously.
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			c.log.ErrorContext(context.Background(), "nats async error", "err", err, "subscription", subj)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
	}
	nc, err := nats.Connect(url, opts...)
	if errors.Is(err, nats.ErrNoServers) {
		c.log.WarnContext(ctx, "nats not reachable; starting anyway and connecting in the background", "err", err)
		nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to nats as %s: %w", service, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.nc, c.js = nc, js
	if nc.IsConnected() {
		c.log.InfoContext(ctx, "nats connected", "url", nc.ConnectedUrlRedacted(), "service", service)
	}
	return c, nil
}

// Service returns the service name the connection was opened with.
func (c *Conn) Service() string { return c.service }

// StreamName returns the JetStream stream that holds owner's events: owner in upper case.
func StreamName(owner string) string { return strings.ToUpper(owner) }

// DLQStream returns the name of service's dead-letter stream.
func DLQStream(service string) string { return "DLQ_" + strings.ToUpper(service) }

// DLQSubject returns the subject a dead letter of service, first published on subject, is
// stored under.
func DLQSubject(service, subject string) string { return "dlq." + service + "." + subject }

// EnsureStream creates or updates the stream of owner's events (subjects "<owner>.>", file
// storage, limits retention for StreamMaxAge, duplicate window DuplicateWindow). It is
// idempotent, so every instance of the owner calls it at start. While the connection is
// down it returns nil and the stream is ensured as soon as the connection is up; it is
// ensured again after every reconnect (a broker that lost its store gets it back).
func (c *Conn) EnsureStream(ctx context.Context, owner string) error {
	return c.ensureLater(ctx, StreamName(owner), owner+".>")
}

// EnsureDLQ creates or updates the connection's service dead-letter stream "DLQ_<SERVICE>"
// capturing "dlq.<service>.>". Consume uses it; call it at start in every consuming service.
// Like EnsureStream it waits for the connection when the broker is down.
func (c *Conn) EnsureDLQ(ctx context.Context) error {
	return c.ensureLater(ctx, DLQStream(c.service), "dlq."+c.service+".>")
}

func (c *Conn) ensureLater(ctx context.Context, name, subjects string) error {
	c.streamsMu.Lock()
	c.streams[name] = subjects
	c.streamsMu.Unlock()
	if !c.nc.IsConnected() {
		c.log.WarnContext(ctx, "nats down: the stream is ensured once connected", "stream", name)
		return nil
	}
	return c.ensure(ctx, name, subjects)
}

// ensureAll ensures every stream the service asked for, after a (re)connect.
func (c *Conn) ensureAll() {
	c.streamsMu.Lock()
	want := maps.Clone(c.streams)
	c.streamsMu.Unlock()
	for name, subjects := range want {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.ensure(ctx, name, subjects); err != nil {
			c.log.ErrorContext(ctx, "ensure stream after connecting", "stream", name, "err", err)
		}
		cancel()
	}
}

func (c *Conn) ensure(ctx context.Context, name, subjects string) error {
	_, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{subjects},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     StreamMaxAge,
		Duplicates: DuplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", name, err)
	}
	return nil
}

// Publish publishes e on e.NATSSubject() in JSON structured mode and waits for JetStream's
// acknowledgement, so a nil error means the event is stored. The event id is the
// Nats-Msg-Id: publishing the same event again within DuplicateWindow stores nothing new
// and still succeeds. Publish is safe for concurrent use.
func (c *Conn) Publish(ctx context.Context, e events.Envelope) error {
	return c.PublishOn(ctx, e.NATSSubject(), e)
}

// PublishOn is Publish on another subject than the event's own: tests use it to send an
// event of a real type into their own namespace ("test.users.registered.v1", see
// testenv/natstest), where no live consumer reads it.
func (c *Conn) PublishOn(ctx context.Context, subject string, e events.Envelope) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	hdr := nats.Header{}
	hdr.Set("Content-Type", "application/cloudevents+json")
	if e.TraceParent != "" {
		hdr.Set(HeaderTraceParent, e.TraceParent)
	}
	if e.CorrelationID != "" {
		hdr.Set(HeaderCorrelationID, e.CorrelationID)
	}
	return c.publish(ctx, subject, e.ID, body, hdr)
}

// PublishRaw publishes body on subject with the given headers and waits for JetStream's
// acknowledgement; it is for messages that are not events, such as saga commands and
// replies. A non-empty msgID is the de-duplication id. The traceparent and correlation id of
// ctx are added unless hdr already has them.
func (c *Conn) PublishRaw(ctx context.Context, subject, msgID string, body []byte, hdr nats.Header) error {
	h := nats.Header{}
	for k, v := range hdr {
		h[k] = append([]string(nil), v...)
	}
	if h.Get(HeaderTraceParent) == "" {
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
	}
	if h.Get(HeaderCorrelationID) == "" {
		if id := obs.CorrelationID(ctx); id != "" {
			h.Set(HeaderCorrelationID, id)
		}
	}
	return c.publish(ctx, subject, msgID, body, h)
}

func (c *Conn) publish(ctx context.Context, subject, msgID string, body []byte, hdr nats.Header) error {
	if msgID != "" {
		hdr.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: hdr, Data: body}); err != nil {
		return fmt.Errorf("publish %s %s: %w", subject, msgID, err)
	}
	return nil
}

// Ready reports whether the connection is up and JetStream answers for this account; it is
// meant for /readyz.
func (c *Conn) Ready(ctx context.Context) error {
	if s := c.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats: %s", s)
	}
	if _, err := c.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream account info: %w", err)
	}
	return nil
}

// JetStream returns the underlying JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// NATS returns the underlying core NATS connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// Close drains the connection (pending publishes are flushed, subscriptions finish the
// messages they hold) and waits until it is closed, at most 30 seconds. Stop consumers
// with Subscription.Stop first so their in-flight messages are acknowledged.
func (c *Conn) Close() {
	if err := c.nc.Drain(); err != nil {
		c.nc.Close()
	}
	select {
	case <-c.closed:
	case <-time.After(30 * time.Second):
		c.nc.Close()
	}
}

func (c *Conn) tracer() trace.Tracer { return otel.Tracer(tracerName) }

func spanAttrs(subject, msgID string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subject),
		attribute.String("messaging.message.id", msgID),
	}
}
