package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"polyshop/shared/events"
)

// DefaultWindow is how many publishes a Relay keeps in flight at once (WithWindow).
const DefaultWindow = 64

type windowKey struct{}

type startKey struct{}

// AsyncPublisher is a Publisher that can also send an event without waiting for the
// broker: PublishAsync returns once the event is handed over, and wait returns its
// outcome. *broker.Conn is one. A Relay over an AsyncPublisher keeps its window of
// publishes in flight from one goroutine, which costs far less than one blocked goroutine
// per publish.
type AsyncPublisher interface {
	Publisher
	PublishAsync(ctx context.Context, e events.Envelope) (wait func(context.Context) error, err error)
}

// StartFunc starts one asynchronous publish (AsyncPublisher.PublishAsync).
type StartFunc func(ctx context.Context, e events.Envelope) (wait func(context.Context) error, err error)

// EncodedPublisher is an AsyncPublisher that can also send an event as the envelope JSON
// the outbox stored, without decoding and encoding it again (the largest cost per event of
// a relay); *broker.Conn is one. body must be the envelope of event id of type typ.
type EncodedPublisher interface {
	AsyncPublisher
	PublishEncodedAsync(ctx context.Context, id, typ, traceParent, correlationID string, body []byte) (wait func(context.Context) error, err error)
}

// begin starts the publish of one stored event; malformed reports that its envelope did not
// decode.
type begin func(ctx context.Context, it Item) (wait func(context.Context) error, malformed bool, err error)

// ContextWithStart returns ctx carrying an asynchronous publish, which PublishAll then
// uses (with the window of ctx) instead of the publish function it is given. The Relay
// sets it when its publisher is an AsyncPublisher.
func ContextWithStart(ctx context.Context, start StartFunc) context.Context {
	return context.WithValue(ctx, startKey{}, startBegin(start))
}

func startBegin(start StartFunc) begin {
	return func(ctx context.Context, it Item) (func(context.Context) error, bool, error) {
		e, err := events.Parse([]byte(it.Envelope))
		if err != nil {
			return nil, true, err
		}
		wait, err := start(ctx, e)
		return wait, false, err
	}
}

// encodedHead is what publishing a stored envelope as it is needs from it.
type encodedHead struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	TraceParent   string `json:"traceparent"`
	CorrelationID string `json:"correlationid"`
}

// encodedBegin publishes stored envelopes as they are (the adapters' write side encoded
// them from valid envelopes): only their id, type and trace attributes are needed, taken
// from the item when the store read them beside the envelope (see Item), else decoded
// from it. One that does not decode, or lacks id or type, counts as malformed.
func encodedBegin(pub EncodedPublisher) begin {
	return func(ctx context.Context, it Item) (func(context.Context) error, bool, error) {
		h := encodedHead{ID: it.EventID, Type: it.Type, TraceParent: it.TraceParent, CorrelationID: it.CorrelationID}
		if h.ID == "" || h.Type == "" {
			h = encodedHead{}
			if err := json.Unmarshal([]byte(it.Envelope), &h); err != nil || h.ID == "" || h.Type == "" {
				if err == nil {
					err = errors.New("no id or type")
				}
				return nil, true, fmt.Errorf("stored envelope: %w", err)
			}
		}
		wait, err := pub.PublishEncodedAsync(ctx, h.ID, h.Type, h.TraceParent, h.CorrelationID, []byte(it.Envelope))
		return wait, false, err
	}
}

// ContextWithWindow returns ctx telling an adapter's Drain that its publish function may be
// called by up to n goroutines at once (n <= 1: one at a time). The Relay sets it on the
// context of every Drain (WithWindow); a caller of Drain that does not set it gets the
// calls one at a time, in the order of the events.
func ContextWithWindow(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, windowKey{}, n)
}

// WindowFrom returns the window ctx carries, 1 when it carries none.
func WindowFrom(ctx context.Context) int {
	if n, ok := ctx.Value(windowKey{}).(int); ok && n > 1 {
		return n
	}
	return 1
}

// Item is one stored event a drain hands to PublishAll.
type Item struct {
	Aggregate, ID, Envelope string
	// EventID, Type, TraceParent and CorrelationID are the envelope's id, type, traceparent
	// and correlationid, for a store that reads them beside it (from its own columns or
	// fields). With EventID and Type set the relay publishes the stored envelope without
	// decoding it: reading those four attributes out of the JSON was the largest cost per
	// event of a relay (shared/README.md, "Fourth pass"). Otherwise they are decoded.
	EventID, Type, TraceParent, CorrelationID string
}

// PublishAll publishes items (in commit order per aggregate) and reports, in the order of
// items, which were published. With a window above 1 on ctx (ContextWithWindow) it keeps
// up to that many publishes in flight: each aggregate's events go out one after another,
// the next only once the broker acknowledged the previous one, and different aggregates
// go out concurrently. Waiting for each ack before an aggregate's next publish is what
// keeps order under failure: a publish that fails (rejected, or no ack in time) stops its
// aggregate, so no later event of it can reach the stream before it and be kept while it
// is published again later. Without a window it is Publish in a loop.
//
// The error is ctx's, once ctx has ended; failures are kept for Err and Failures.
func (o *InOrder) PublishAll(ctx context.Context, publish func(context.Context, events.Envelope) error, items []Item) ([]bool, error) {
	ok := make([]bool, len(items))
	window := WindowFrom(ctx)
	if window <= 1 {
		for i, it := range items {
			sent, err := o.Publish(ctx, publish, it.Aggregate, it.ID, it.Envelope)
			if err != nil {
				return ok, err
			}
			ok[i] = sent
		}
		return ok, nil
	}

	if start, _ := ctx.Value(startKey{}).(begin); start != nil {
		return o.pipeline(ctx, start, items, window)
	}

	// Chains of item indexes per aggregate, in order of first appearance.
	var order []string
	chains := map[string][]int{}
	for i, it := range items {
		if _, seen := chains[it.Aggregate]; !seen {
			order = append(order, it.Aggregate)
		}
		chains[it.Aggregate] = append(chains[it.Aggregate], i)
	}
	work := make(chan []int)
	var mu sync.Mutex // guards o and ok
	var wg sync.WaitGroup
	for range min(window, len(order)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chain := range work {
				for _, i := range chain {
					mu.Lock()
					held := o.failed[items[i].Aggregate] // by an earlier call on o
					mu.Unlock()
					if held || ctx.Err() != nil {
						break
					}
					e, err := events.Parse([]byte(items[i].Envelope))
					malformed := err != nil
					if !malformed {
						err = publish(ctx, e)
					}
					mu.Lock()
					sent := o.record(items[i].Aggregate, items[i].ID, err, malformed)
					ok[i] = sent
					mu.Unlock()
					if !sent {
						break // the rest of the aggregate waits for this one
					}
				}
			}
		}()
	}
	for _, agg := range order {
		if ctx.Err() != nil {
			break
		}
		work <- chains[agg]
	}
	close(work)
	wg.Wait()
	return ok, ctx.Err()
}

// pipeline is PublishAll over an asynchronous publish, from one goroutine: it keeps up to
// window publishes in flight, at most one per aggregate, starting an aggregate's next event
// when the previous one is acknowledged. Acks are awaited oldest first (a connection's
// acks come back in the order its messages were sent, so the oldest is the next to come).
func (o *InOrder) pipeline(ctx context.Context, start begin, items []Item, window int) ([]bool, error) {
	ok := make([]bool, len(items))
	var order []string
	chains := map[string][]int{}
	for i, it := range items {
		if _, seen := chains[it.Aggregate]; !seen {
			order = append(order, it.Aggregate)
		}
		chains[it.Aggregate] = append(chains[it.Aggregate], i)
	}
	type flight struct {
		i    int
		wait func(context.Context) error
	}
	ready := order // aggregates whose next event may start, in order
	var inFlight []flight
	next := func(agg string) int { // index of agg's next item, or -1 when done
		if c := chains[agg]; len(c) > 0 {
			return c[0]
		}
		return -1
	}
	for len(ready) > 0 || len(inFlight) > 0 {
		for len(inFlight) < window && len(ready) > 0 && ctx.Err() == nil {
			agg := ready[0]
			ready = ready[1:]
			i := next(agg)
			if i < 0 || o.failed[agg] {
				continue
			}
			chains[agg] = chains[agg][1:]
			wait, malformed, err := start(ctx, items[i])
			if err != nil {
				o.record(agg, items[i].ID, err, malformed)
				continue
			}
			inFlight = append(inFlight, flight{i: i, wait: wait})
		}
		if len(inFlight) == 0 {
			break // ctx ended, or nothing left to start
		}
		f := inFlight[0]
		inFlight = inFlight[1:]
		agg := items[f.i].Aggregate
		if ok[f.i] = o.record(agg, items[f.i].ID, f.wait(ctx), false); ok[f.i] {
			ready = append(ready, agg)
		}
	}
	return ok, ctx.Err()
}
