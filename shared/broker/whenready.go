package broker

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultAttachEvery is the pause between attempts of ConsumeWhenReady.
var DefaultAttachEvery = 2 * time.Second

// Attachment is a consumer that ConsumeWhenReady is attaching, or has attached. Stop it
// before closing the connection.
type Attachment struct {
	spec   ConsumerSpec
	mu     sync.Mutex
	sub    *Subscription
	err    error
	done   chan struct{}
	cancel context.CancelFunc
}

// ConsumeWhenReady is Consume for a stream this service does not own and may not create:
// the owner creates it, maybe after this service started. It returns at once and attaches
// in the background, trying again every every (0: DefaultAttachEvery) while Consume fails —
// typically because the stream does not exist yet — until it succeeds or ctx ends or Stop
// is called. The first failure and every 30th are logged, and the attach once it happens.
func (c *Conn) ConsumeWhenReady(ctx context.Context, spec ConsumerSpec, h Handler, every time.Duration) *Attachment {
	if every <= 0 {
		every = DefaultAttachEvery
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &Attachment{spec: spec, done: make(chan struct{}), err: errors.New("consumer not started yet"), cancel: cancel}
	go func() {
		defer close(a.done)
		for attempt := 1; ; attempt++ {
			sub, err := c.Consume(ctx, spec, h)
			a.mu.Lock()
			a.sub, a.err = sub, err
			a.mu.Unlock()
			if err == nil {
				c.log.InfoContext(ctx, "consuming", "stream", spec.Stream, "durable", spec.Durable, "subjects", spec.Subjects)
				return
			}
			if ctx.Err() != nil {
				return
			}
			if attempt == 1 || attempt%30 == 0 {
				c.log.WarnContext(ctx, "cannot attach consumer yet; retrying", "stream", spec.Stream,
					"durable", spec.Durable, "attempt", attempt, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	return a
}

// Durable returns the consumer's durable name.
func (a *Attachment) Durable() string { return a.spec.Durable }

// Attached reports whether the consumer is attached.
func (a *Attachment) Attached() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sub != nil
}

// Ready returns nil once the consumer is attached, else the last attach error (for /readyz).
func (a *Attachment) Ready(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Stop ends the attach attempts and stops the consumer if it was attached, waiting (bounded
// by ctx) until the messages in flight are handled and acknowledged.
func (a *Attachment) Stop(ctx context.Context) error {
	a.cancel()
	<-a.done
	a.mu.Lock()
	sub := a.sub
	a.mu.Unlock()
	if sub == nil {
		return nil
	}
	return sub.Stop(ctx)
}
