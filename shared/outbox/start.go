package outbox

import (
	"context"
	"sync"

	"polyshop/shared/events"
)

// FinalDrainLimit is how many events Start's stop publishes at most in its last drain.
const FinalDrainLimit = 1000

// Start runs r in the background until the returned stop is called; cancelling ctx does not
// stop it (ctx gives only its values), because the relay must outlive the HTTP server and
// the consumers: events of their last requests and messages still have to go out. stop
// makes a last drain through the relay's publisher (at most FinalDrainLimit events, bounded
// by stop's ctx), then ends the relay and waits for it. Every service main runs its relay
// this way:
//
//	stopRelay := outbox.Start(ctx, relay)
//	… serve; on shutdown stop HTTP and the consumers first, then:
//	drainCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
//	stopRelay(drainCtx)
//	cancel()
//
// stop is safe to call more than once; later calls do nothing.
func Start(ctx context.Context, r *Relay) (stop func(context.Context)) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(runCtx)
	}()
	var once sync.Once
	return func(ctx context.Context) {
		once.Do(func() {
			if ctx.Err() == nil {
				_, _ = r.store.Drain(r.drainContext(ctx), FinalDrainLimit, r.publishFunc())
			}
			cancel()
			<-done
		})
	}
}

// drainContext is the context of the relay's drains: its window, and its asynchronous
// publish when its publisher has one (stored envelopes sent as they are when it can).
func (r *Relay) drainContext(ctx context.Context) context.Context {
	ctx = ContextWithWindow(ctx, r.window)
	if r.window <= 1 {
		return ctx
	}
	var b begin
	switch p := r.pub.(type) {
	case EncodedPublisher:
		b = encodedBegin(p)
	case AsyncPublisher:
		b = startBegin(p.PublishAsync)
	default:
		return ctx
	}
	if r.metrics != nil {
		b = r.metrics.begin(b)
	}
	return context.WithValue(ctx, startKey{}, b)
}

// publishFunc is the relay's publisher, counted in its metrics when it has them.
func (r *Relay) publishFunc() func(context.Context, events.Envelope) error {
	if r.metrics != nil {
		return r.metrics.publish(r.pub.Publish)
	}
	return r.pub.Publish
}
