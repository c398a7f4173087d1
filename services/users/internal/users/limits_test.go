package users

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHashingSlotsBoundConcurrency: however many requests hash at once, at most
// HashConcurrency computations run together; a request that waits longer than HashWait
// for a slot gets ErrBusy and runs nothing.
func TestHashingSlotsBoundConcurrency(t *testing.T) {
	s := NewService(nil, nil, Limits{HashConcurrency: 2, HashWait: 5 * time.Millisecond})
	var inFlight, peak, ran atomic.Int64
	var busy atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.hashing(context.Background(), func() {
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				inFlight.Add(-1)
				ran.Add(1)
			})
			switch {
			case errors.Is(err, ErrBusy):
				busy.Add(1)
			case err != nil:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p < 1 || p > 2 {
		t.Errorf("peak concurrent hashes = %d, want 1..2", p)
	}
	if ran.Load()+busy.Load() != 50 || busy.Load() == 0 {
		t.Errorf("ran %d, refused %d; want 50 in all and some refused", ran.Load(), busy.Load())
	}

	// A cancelled request stops waiting at once and runs nothing.
	s.slots <- struct{}{}
	s.slots <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	if err := s.hashing(ctx, func() { called = true }); !errors.Is(err, context.Canceled) || called {
		t.Errorf("cancelled wait = %v, ran %v; want context.Canceled and nothing run", err, called)
	}
}

// TestMemoryIsGivenBackAfterABurst: when the last hash of a burst ends, the heap is given
// back to the OS once, not after every hash.
func TestMemoryIsGivenBackAfterABurst(t *testing.T) {
	s := NewService(nil, nil, Limits{HashConcurrency: 2, HashWait: time.Second})
	freed := make(chan struct{}, 10)
	s.freeMemory = func() { freed <- struct{}{} }
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.hashing(context.Background(), func() { time.Sleep(time.Millisecond) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-freed:
	case <-time.After(10 * idleAfterHashing):
		t.Fatal("memory was not given back after the burst")
	}
	time.Sleep(2 * idleAfterHashing)
	if n := len(freed); n != 0 {
		t.Errorf("memory given back %d more times after one burst, want once", n)
	}
}
