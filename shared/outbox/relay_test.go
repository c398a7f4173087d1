package outbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// fakeStore scripts Drain results and records the relay's calls.
type fakeStore struct {
	mu      sync.Mutex
	results []drainResult // consumed in order; afterwards Drain returns 0, nil
	calls   []string
	limits  []int
	done    chan struct{}
}

type drainResult struct {
	n   int
	err error
}

func (s *fakeStore) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "drain")
	s.limits = append(s.limits, limit)
	if len(s.results) == 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
		return 0, nil
	}
	r := s.results[0]
	s.results = s.results[1:]
	return r.n, r.err
}

func (s *fakeStore) Wait(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.calls = append(s.calls, "wait")
	s.mu.Unlock()
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Envelope) error { return nil }

func TestRelayRun(t *testing.T) {
	tests := []struct {
		name       string
		results    []drainResult
		want       []string
		wantLimits []int // of the drains in want
	}{
		{"full batches drain again at once, each limit twice the last, up to the largest",
			[]drainResult{{10, nil}, {20, nil}, {40, nil}, {50, nil}, {50, nil}, {3, nil}},
			[]string{"drain", "drain", "drain", "drain", "drain", "drain", "wait", "drain"},
			[]int{10, 20, 40, 50, 50, 50, 10}},
		{"a drain that is not full: wait, and back to the batch",
			[]drainResult{{10, nil}, {19, nil}, {10, nil}},
			[]string{"drain", "drain", "wait", "drain", "drain"},
			[]int{10, 20, 10, 20}},
		{"errors back off without waiting on the store, and reset the limit",
			[]drainResult{{0, errors.New("broker down")}, {2, errors.New("again")}, {1, nil}},
			[]string{"drain", "drain", "drain", "wait", "drain"},
			[]int{10, 10, 10, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeStore{results: tc.results, done: make(chan struct{})}
			var observed []int
			r := outbox.NewRelay(s, nopPublisher{}, nil, outbox.WithBatch(10), outbox.WithMaxBatch(50), outbox.WithInterval(time.Millisecond),
				outbox.WithBackoff(time.Millisecond, 5*time.Millisecond),
				outbox.WithObserver(func(n int, err error) { observed = append(observed, n) }))
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- r.Run(ctx) }()
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				t.Fatal("relay did not drain everything")
			}
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if diff := cmp.Diff(s.calls[:len(tc.want)], tc.want); diff != "" {
				t.Errorf("calls (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(s.limits[:len(tc.wantLimits)], tc.wantLimits); diff != "" {
				t.Errorf("drain limits (-got +want):\n%s", diff)
			}
		})
	}
}
