package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// sleepyStore hands out its pending events on every Drain, and its Wait sleeps until the
// relay's ctx ends: after the first drain, only the final drain of Start's stop publishes.
type sleepyStore struct {
	mu       sync.Mutex
	pending  []events.Envelope
	waiting  chan struct{} // closed when the relay first waits (its first drain is over)
	waitDone bool          // Wait returned: the relay stopped
	once     sync.Once
}

func (s *sleepyStore) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for len(s.pending) > 0 && n < limit {
		if err := publish(ctx, s.pending[0]); err != nil {
			return n, err
		}
		s.pending = s.pending[1:]
		n++
	}
	return n, nil
}

func (s *sleepyStore) Wait(ctx context.Context, _ time.Duration) error {
	s.once.Do(func() { close(s.waiting) })
	<-ctx.Done()
	s.mu.Lock()
	s.waitDone = true
	s.mu.Unlock()
	return ctx.Err()
}

type recPublisher struct {
	mu  sync.Mutex
	ids []string
}

func (p *recPublisher) Publish(_ context.Context, e events.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, e.ID)
	return nil
}

// Start's relay outlives its ctx, and stop publishes what was committed since the relay
// last drained, then ends the relay.
func TestStartDrainsOnStop(t *testing.T) {
	store := &sleepyStore{waiting: make(chan struct{}), pending: []events.Envelope{{ID: "a"}}}
	pub := &recPublisher{}
	ctx, cancel := context.WithCancel(context.Background())
	stop := outbox.Start(ctx, outbox.NewRelay(store, pub, nil))
	<-store.waiting // the first drain is over (waiting for the relay also keeps stop from
	// ending it between that drain and its wait, where it returns without waiting)
	cancel() // the service's ctx ends (SIGTERM): the relay keeps running
	store.mu.Lock()
	store.pending = append(store.pending, events.Envelope{ID: "b"}) // a last request commits
	stopped := store.waitDone
	store.mu.Unlock()
	if stopped {
		t.Fatal("the relay stopped with its ctx")
	}
	stop(context.Background())
	stop(context.Background()) // twice is fine
	store.mu.Lock()
	stopped = store.waitDone
	store.mu.Unlock()
	if !stopped {
		t.Error("the relay still runs after stop")
	}
	if diff := cmp.Diff(pub.ids, []string{"a", "b"}); diff != "" {
		t.Errorf("published (-got +want):\n%s", diff)
	}
}
