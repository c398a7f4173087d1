package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/gateway/internal/eventhub"
	"polyshop/shared/httpx"
)

// operator holds what the live event view and the consistency console need beyond the
// services' HTTP APIs: the shared event fan-out and a JetStream handle (the gateway's own
// NATS user) for stream and consumer info. Both may be nil (no GATEWAY_NATS_URL): those
// routes then answer 503.
type operator struct {
	hub *eventhub.Hub
	js  jetstream.JetStream
	// heartbeat is how often an idle event stream gets a comment (and its position).
	heartbeat time.Duration
}

// WithEvents sets the event fan-out behind GET /api/events and the JetStream handle the
// console reads stream and consumer info with.
func WithEvents(hub *eventhub.Hub, js jetstream.JetStream) Option {
	return func(a *API) { a.ops.hub, a.ops.js = hub, js }
}

// WithEventHeartbeat sets how often an idle event stream is sent a heartbeat (default 15s).
func WithEventHeartbeat(d time.Duration) Option { return func(a *API) { a.ops.heartbeat = d } }

// registerEvents adds GET /api/events, the live event view's server-sent events.
func (a *API) registerEvents(mux *http.ServeMux) {
	mux.Handle("GET /api/events", a.requireUser(a.events))
}

// eventFilter is what a viewer asked to see, on top of what it may see.
type eventFilter struct {
	streams       []string
	typ           string
	correlationID string
	orderID       string
}

func (f eventFilter) keep(e *eventhub.Event) bool {
	switch {
	case e.Kind == "gap":
		return len(f.streams) == 0 || slices.Contains(f.streams, e.Stream)
	case len(f.streams) > 0 && !slices.Contains(f.streams, e.Stream):
		return false
	case f.typ != "" && !strings.Contains(e.Type, f.typ):
		return false
	case f.correlationID != "" && e.CorrelationID != f.correlationID:
		return false
	case f.orderID != "" && e.OrderID != f.orderID && e.Subject != f.orderID:
		return false
	}
	return true
}

// visibleTo is who may see e: an admin everything; anyone else only messages about their
// own aggregates (their user, their orders and what those caused). Shop-wide messages
// (products, stock levels) and everything about other users are never sent to them.
func visibleTo(p Principal, e *eventhub.Event) bool {
	return p.Role == "admin" || e.Kind == "gap" || (e.UserID != "" && e.UserID == p.UserID)
}

// events answers GET /api/events with text/event-stream. Each message is one SSE event whose
// data is the JSON of an eventhub.Event and whose id is the viewer's position: for every
// stream the last sequence it has been given or skipped ("CATALOG:12,ORDERS:40,…"). A
// reconnecting EventSource sends it back as Last-Event-ID (or ?lastEventId=) and the
// stream resumes right after it, without gaps. Filters: stream (comma list), type
// (substring), correlationId, orderId; backlog=n adds up to n recent buffered messages to a
// fresh (not resuming) stream. Positions that advance over messages this viewer may not
// see are sent as id-only events with the heartbeat.
func (a *API) events(w http.ResponseWriter, r *http.Request, p Principal) error {
	hub := a.ops.hub
	if hub == nil {
		return httpx.Unavailable("The live event view is not configured: the gateway has no NATS connection (GATEWAY_NATS_URL).")
	}
	q := r.URL.Query()
	f := eventFilter{typ: q.Get("type"), correlationID: q.Get("correlationId"), orderID: q.Get("orderId")}
	if s := q.Get("stream"); s != "" {
		for name := range strings.SplitSeq(s, ",") {
			name = strings.ToUpper(strings.TrimSpace(name))
			if !slices.Contains(hub.Streams(), name) {
				return httpx.BadRequest("Unknown stream.", httpx.FieldError{Field: "stream",
					Reason: "must be a comma-separated list of " + strings.Join(hub.Streams(), ", ")})
			}
			f.streams = append(f.streams, name)
		}
	}
	backlog := 0
	if s := q.Get("backlog"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > eventhub.DefaultBuffer {
			return httpx.BadRequest("Invalid backlog.", httpx.FieldError{Field: "backlog",
				Reason: fmt.Sprintf("must be an integer from 0 to %d", eventhub.DefaultBuffer)})
		}
		backlog = n
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("lastEventId")
	}
	from, err := eventhub.ParsePosition(last)
	if err != nil {
		return httpx.BadRequest("Invalid Last-Event-ID.", httpx.FieldError{Field: "Last-Event-ID", Reason: err.Error()})
	}
	show := func(e *eventhub.Event) bool { return visibleTo(p, e) && f.keep(e) }

	sub, err := hub.Subscribe(r.Context(), from, backlog, show)
	if errors.Is(err, eventhub.ErrNotReady) {
		e := httpx.Unavailable("The live event view is starting; try again shortly.")
		e.Headers = http.Header{"Retry-After": {"1"}}
		return e
	}
	if err != nil {
		return err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	pos := sub.Start.Clone()
	sentPos := ""
	var buf []byte
	write := func(e *eventhub.Event) {
		if e.Seq > pos[e.Stream] {
			pos[e.Stream] = e.Seq
		}
		if !show(e) {
			return
		}
		sentPos = pos.String()
		buf = append(buf, "id: "...)
		buf = append(buf, sentPos...)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, e.JSON()...)
		buf = append(buf, "\n\n"...)
	}
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		_, err := w.Write(buf)
		buf = buf[:0]
		if err == nil {
			err = rc.Flush()
		}
		return err
	}
	buf = append(buf, "retry: 2000\n"...)
	// The starting position, so a viewer that sees nothing yet still resumes from here.
	sentPos = pos.String()
	buf = append(buf, "id: "+sentPos+"\n\n"...)
	for _, e := range sub.Backlog {
		write(e)
		if len(buf) > 64<<10 {
			if err := flush(); err != nil {
				return nil
			}
		}
	}
	if err := flush(); err != nil {
		return nil
	}

	every := a.ops.heartbeat
	if every <= 0 {
		every = 15 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-hub.Done():
			return nil
		case <-tick.C:
			if cur := pos.String(); cur != sentPos {
				sentPos = cur
				buf = append(buf, "id: "+cur+"\n\n"...) // no data: moves Last-Event-ID only
			} else {
				buf = append(buf, ": keep-alive\n\n"...)
			}
		case e, ok := <-sub.C:
			if !ok {
				// Dropped as too slow, or the hub stopped: the browser reconnects with its
				// Last-Event-ID and resumes.
				_ = flush()
				return nil
			}
			write(e)
			for more := true; more && len(buf) < 64<<10; {
				select {
				case e, ok := <-sub.C:
					if !ok {
						more = false
						break
					}
					write(e)
				default:
					more = false
				}
			}
		}
		if err := flush(); err != nil {
			return nil
		}
	}
}
