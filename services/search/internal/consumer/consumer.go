// Package consumer attaches the search projection to a stream it does not own: CATALOG
// and INVENTORY are created by their owners, and the search user may not create them, so a
// consumer on a stream that does not exist yet is retried in the background until the
// stream appears (search starts, serves, and begins consuming then).
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"polyshop/shared/broker"
)

// DefaultRetryEvery is the pause between attempts to attach.
const DefaultRetryEvery = 2 * time.Second

// Consumer is one durable consumer being attached or attached. Stop it before closing the
// connection.
type Consumer struct {
	mu     sync.Mutex
	sub    *broker.Subscription
	err    error
	done   chan struct{}
	cancel context.CancelFunc
}

// Start attaches a durable consumer described by spec with handler h, retrying every
// retryEvery (0: DefaultRetryEvery) while that fails (typically: the stream does not exist
// yet). It returns at once.
func Start(ctx context.Context, nc *broker.Conn, spec broker.ConsumerSpec, h broker.Handler, retryEvery time.Duration, log *slog.Logger) *Consumer {
	if retryEvery <= 0 {
		retryEvery = DefaultRetryEvery
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Consumer{done: make(chan struct{}), err: errors.New("consumer not started yet"), cancel: cancel}
	go func() {
		defer close(c.done)
		for attempt := 1; ; attempt++ {
			sub, err := nc.Consume(ctx, spec, h)
			c.mu.Lock()
			c.sub, c.err = sub, err
			c.mu.Unlock()
			if err == nil {
				log.InfoContext(ctx, "consuming", "stream", spec.Stream, "durable", spec.Durable, "subjects", spec.Subjects)
				return
			}
			if attempt == 1 || attempt%30 == 0 {
				log.WarnContext(ctx, "cannot start consumer yet; retrying", "stream", spec.Stream, "durable", spec.Durable, "attempt", attempt, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryEvery):
			}
		}
	}()
	return c
}

// Ready returns nil once the consumer is attached, else the last attach error (for /readyz).
func (c *Consumer) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stop ends the attach retries and stops the consumer, waiting (bounded by ctx) until the
// events in flight are handled and acknowledged.
func (c *Consumer) Stop(ctx context.Context) error {
	c.cancel()
	<-c.done
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	if sub == nil {
		return nil
	}
	return sub.Stop(ctx)
}
