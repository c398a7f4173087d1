// Package eventhub is the gateway's one shared fan-out of the owners' event streams to every
// live viewer (GET /api/events). It reads each owner stream (USERS, SESSIONS, CATALOG,
// INVENTORY, ORDERS, PAYMENTS — saga commands and replies included) with a single JetStream
// ordered consumer, keeps the last Buffer messages of each stream in memory, and hands every
// message to every subscriber, whatever the number of viewers: NATS sees one consumer per
// stream per gateway, never one per browser.
//
// Positions are per stream: a Position maps a stream name to the last stream sequence a
// viewer has been given (or skipped). A reconnecting viewer sends its Position back and
// Subscribe resumes right after it: from the in-memory buffer when it still holds the
// following messages, otherwise from JetStream itself (stream.GetMsg), so a reconnect loses
// nothing the stream still retains. Nothing is acknowledged: the consumers are ephemeral
// and read-only, and the hub never affects the owners' durable consumers.
package eventhub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStreams are the owner streams the gateway shows.
var DefaultStreams = []string{"USERS", "SESSIONS", "CATALOG", "INVENTORY", "ORDERS", "PAYMENTS"}

// Engines names the datastore of each owner, for colouring events by engine.
var Engines = map[string]string{
	"users": "PostgreSQL", "sessions": "Redis", "catalog": "MongoDB", "inventory": "PostgreSQL",
	"orders": "PostgreSQL", "payments": "PostgreSQL", "activity": "Cassandra", "search": "Elasticsearch",
}

// DefaultBuffer is how many recent messages per stream the hub keeps in memory.
const DefaultBuffer = 2000

// MaxCatchup bounds how many messages of one stream a resuming subscriber reads from
// JetStream (beyond the in-memory buffer); a longer absence gets a gap notice instead.
const MaxCatchup = 5000

// subscriberQueue is how many messages a subscriber may be behind before it is dropped
// (the viewer reconnects and resumes from its position, so nothing is lost).
const subscriberQueue = 4096

// Event is one message of an owner stream as viewers see it: the CloudEvents envelope plus
// where it came from. Kind is "event" (domain event), "command" (saga command from orders),
// "reply" (a participant's saga reply) or "gap" (messages a resuming viewer cannot get any
// more: Seq is the first one, Data says how many).
type Event struct {
	Stream        string          `json:"stream"`
	Seq           uint64          `json:"seq"`
	NATSSubject   string          `json:"natsSubject"`
	Owner         string          `json:"owner"`
	Engine        string          `json:"engine"`
	Kind          string          `json:"kind"`
	ID            string          `json:"id,omitempty"`
	Type          string          `json:"type,omitempty"`
	Subject       string          `json:"subject,omitempty"`
	Time          time.Time       `json:"time"`
	CorrelationID string          `json:"correlationid,omitempty"`
	CausationID   string          `json:"causationid,omitempty"`
	Sequence      int64           `json:"sequence,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`

	// UserID is the user whose aggregate the message is about ("" for shop-wide ones such
	// as products and stock): data.userId, the subject of a users event, or the user of
	// the order named by data.orderId / the subject.
	UserID string `json:"-"`
	// OrderID is data.orderId, or the subject of an orders event.
	OrderID string `json:"-"`

	encoded []byte
}

// JSON returns the event encoded once, shared by every viewer.
func (e *Event) JSON() []byte { return e.encoded }

// Parse turns a stream message into an Event. A body that is not an envelope still becomes
// an Event (kind by subject, no data), so an operator sees it.
func Parse(stream string, seq uint64, subject string, body []byte) *Event {
	// The tests' namespace ("test.<owner>.…", shared/testenv/natstest) mirrors the owners'
	// subjects, so a hub pointed at a test stream reads its events like the live ones.
	own := strings.TrimPrefix(subject, "test.")
	e := &Event{Stream: stream, Seq: seq, NATSSubject: subject, Kind: kindOf(own)}
	e.Owner, _, _ = strings.Cut(own, ".")
	e.Engine = Engines[e.Owner]
	var env struct {
		ID            string          `json:"id"`
		Type          string          `json:"type"`
		Subject       string          `json:"subject"`
		Time          time.Time       `json:"time"`
		CorrelationID string          `json:"correlationid"`
		CausationID   string          `json:"causationid"`
		Sequence      int64           `json:"sequence"`
		Data          json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.ID, e.Type, e.Subject, e.Time = env.ID, env.Type, env.Subject, env.Time
		e.CorrelationID, e.CausationID, e.Sequence = env.CorrelationID, env.CausationID, env.Sequence
		if len(env.Data) > 0 && env.Data[0] == '{' {
			e.Data = env.Data
			var ids struct {
				UserID  string `json:"userId"`
				OrderID string `json:"orderId"`
			}
			_ = json.Unmarshal(env.Data, &ids)
			e.UserID, e.OrderID = ids.UserID, ids.OrderID
		}
	}
	if e.Type == "" {
		e.Type = "polyshop." + own
	}
	switch {
	case e.UserID == "" && e.OrderID == "" && e.Owner == "users":
		e.UserID = e.Subject
	case e.OrderID == "" && e.Owner == "orders":
		e.OrderID = e.Subject
	}
	return e
}

func kindOf(subject string) string {
	switch parts := strings.Split(subject, "."); {
	case len(parts) > 1 && parts[1] == "cmd":
		return "command"
	case len(parts) > 1 && parts[1] == "reply":
		return "reply"
	}
	return "event"
}

func (e *Event) encode() {
	b, err := json.Marshal(e)
	if err != nil {
		b = []byte(`{}`)
	}
	e.encoded = b
}

// Position is, per stream, the last sequence a viewer has been given or skipped.
type Position map[string]uint64

// String encodes p as "STREAM:seq,STREAM:seq" in stream order: the SSE id.
func (p Position) String() string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(p[n], 10))
	}
	return b.String()
}

// ParsePosition decodes what Position.String encodes. Unknown streams are kept (Subscribe
// ignores them); a malformed part is an error.
func ParsePosition(s string) (Position, error) {
	p := Position{}
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, seq, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || name == "" || err != nil {
			return nil, fmt.Errorf("position %q: want STREAM:seq,STREAM:seq", part)
		}
		p[name] = n
	}
	return p, nil
}

// Clone returns a copy of p.
func (p Position) Clone() Position {
	out := make(Position, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// Config configures a Hub.
type Config struct {
	// Streams to read; DefaultStreams when empty.
	Streams []string
	// FilterSubjects, when set, limits every stream to these subjects (tests point the hub
	// at test-only subjects of the owners' streams this way).
	FilterSubjects []string
	// Buffer is how many recent messages per stream are kept; DefaultBuffer when zero.
	Buffer int
	Log    *slog.Logger
}

// Hub is the shared fan-out. It is safe for concurrent use.
type Hub struct {
	js      jetstream.JetStream
	cfg     Config
	log     *slog.Logger
	streams map[string]*ring
	orders  *ownerMap
	done    chan struct{}
}

// New returns a Hub reading through js; Run starts it.
func New(js jetstream.JetStream, cfg Config) *Hub {
	if len(cfg.Streams) == 0 {
		cfg.Streams = DefaultStreams
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Hub{js: js, cfg: cfg, log: cfg.Log.With("component", "eventhub"), streams: map[string]*ring{},
		orders: newOwnerMap(100_000), done: make(chan struct{})}
	for _, s := range cfg.Streams {
		h.streams[s] = &ring{name: s, size: cfg.Buffer, subs: map[*Sub]struct{}{}}
	}
	return h
}

// Streams returns the names of the streams the hub reads.
func (h *Hub) Streams() []string { return slices.Clone(h.cfg.Streams) }

// Done is closed when the hub has stopped (Run returned); subscriptions end then.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Run reads every stream until ctx is cancelled. A stream that does not exist yet, or a
// lost connection, is retried every second; it resumes after the last message it kept.
func (h *Hub) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range h.streams {
		wg.Go(func() { h.read(ctx, r) })
	}
	wg.Wait()
	for _, r := range h.streams {
		r.closeAll()
	}
	close(h.done)
}

// Last returns, per stream, the last message the hub has seen (nil when none yet).
func (h *Hub) Last() map[string]*Event {
	out := map[string]*Event{}
	for name, r := range h.streams {
		r.mu.Lock()
		if n := len(r.buf); n > 0 {
			out[name] = r.buf[n-1]
		} else {
			out[name] = nil
		}
		r.mu.Unlock()
	}
	return out
}

func (h *Hub) read(ctx context.Context, r *ring) {
	for ctx.Err() == nil {
		err := h.readOnce(ctx, r)
		if ctx.Err() != nil {
			return
		}
		h.log.WarnContext(ctx, "event stream read interrupted; retrying", "stream", r.name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// readOnce attaches an ordered consumer to r's stream after the last message kept (on the
// first attach: Buffer messages before the end, so the buffer starts warm) and feeds the
// ring until an error.
func (h *Hub) readOnce(ctx context.Context, r *ring) error {
	st, err := h.js.Stream(ctx, r.name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.name, err)
	}
	start := r.last() + 1
	if start == 1 {
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s info: %w", r.name, err)
		}
		if last := info.State.LastSeq; last > uint64(h.cfg.Buffer) {
			start = last - uint64(h.cfg.Buffer) + 1
		}
		r.setOrigin(start)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: h.cfg.FilterSubjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer on %s: %w", r.name, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("messages of %s: %w", r.name, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return nil
			}
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		e := Parse(r.name, md.Sequence.Stream, msg.Subject(), msg.Data())
		h.orders.fill(e)
		e.encode()
		r.add(e)
	}
}

// ErrNotReady is returned by Subscribe until every stream has been attached once.
var ErrNotReady = errors.New("event hub: not every stream is attached yet")

// Sub is one viewer's subscription. Backlog is what the viewer must be sent first (resumed
// or requested history, in stream order per stream); C then carries every new message of
// every stream. C is closed when the viewer fell too far behind (Lagged reports true), the
// hub stopped, or Close was called.
type Sub struct {
	Backlog []*Event
	// Start is the position the subscription starts from (Backlog included).
	Start  Position
	C      <-chan *Event
	c      chan *Event
	h      *Hub
	mu     sync.Mutex
	closed bool
	lagged bool
}

// Lagged reports whether the hub dropped the subscription because it was too slow.
func (s *Sub) Lagged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lagged
}

// Close ends the subscription.
func (s *Sub) Close() {
	for _, r := range s.h.streams {
		r.mu.Lock()
		delete(r.subs, s)
		r.mu.Unlock()
	}
	s.end(false)
}

func (s *Sub) end(lagged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed, s.lagged = true, lagged
		close(s.c)
	}
}

// Subscribe starts a subscription. For each stream named in from, the viewer resumes right
// after from[stream] (buffer first, JetStream for what the buffer no longer holds, at most
// MaxCatchup messages, then a "gap" event). For the other streams it starts at the current
// end, plus up to backlog of the most recent buffered messages for which keep returns true
// (keep may be nil: all). The backlog is ordered by stream then sequence.
func (h *Hub) Subscribe(ctx context.Context, from Position, backlog int, keep func(*Event) bool) (*Sub, error) {
	c := make(chan *Event, subscriberQueue)
	s := &Sub{c: c, C: c, h: h, Start: Position{}}
	select {
	case <-h.done:
		return nil, errors.New("event hub stopped")
	default:
	}
	type fetch struct {
		r        *ring
		from, to uint64 // read [from, to] from JetStream
	}
	var fetches []fetch
	var recent []*Event
	for _, name := range h.cfg.Streams {
		r := h.streams[name]
		r.mu.Lock()
		r.subs[s] = struct{}{}
		if r.origin == 0 {
			r.mu.Unlock()
			s.Close()
			return nil, ErrNotReady
		}
		after, resume := from[name]
		switch {
		case resume:
			if after+1 < r.origin {
				fetches = append(fetches, fetch{r, after + 1, r.origin - 1})
			}
			for _, e := range r.buf {
				if e.Seq > after {
					s.Backlog = append(s.Backlog, e)
				}
			}
			s.Start[name] = after
		default:
			for i, n := len(r.buf)-1, backlog; i >= 0 && n > 0; i-- {
				if keep == nil || keep(r.buf[i]) {
					recent = append(recent, r.buf[i])
					n--
				}
			}
			s.Start[name] = r.seen
		}
		r.mu.Unlock()
	}
	// recent holds up to backlog messages per stream; keep the newest backlog overall, in
	// time order, so a fresh viewer sees the latest history first.
	slices.SortStableFunc(recent, func(a, b *Event) int { return b.Time.Compare(a.Time) })
	if len(recent) > backlog {
		recent = recent[:backlog]
	}
	slices.SortStableFunc(recent, func(a, b *Event) int {
		if a.Stream != b.Stream {
			return strings.Compare(a.Stream, b.Stream)
		}
		return int(a.Seq) - int(b.Seq)
	})
	s.Backlog = append(s.Backlog, recent...)
	for _, f := range fetches {
		old, err := h.catchUp(ctx, f.r.name, f.from, f.to)
		if err != nil {
			s.Close()
			return nil, err
		}
		// JetStream's part comes before the buffer's part of the same stream.
		i := slices.IndexFunc(s.Backlog, func(e *Event) bool { return e.Stream == f.r.name })
		if i < 0 {
			i = len(s.Backlog)
		}
		s.Backlog = slices.Insert(s.Backlog, i, old...)
	}
	return s, nil
}

// catchUp reads [from, to] of stream from JetStream, at most MaxCatchup messages: when more
// are missing, a gap event stands for the oldest ones. Messages the stream no longer has
// (removed by age) are skipped.
func (h *Hub) catchUp(ctx context.Context, stream string, from, to uint64) ([]*Event, error) {
	st, err := h.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("catch up %s: %w", stream, err)
	}
	var out []*Event
	if to-from+1 > MaxCatchup {
		skipped := to - from + 1 - MaxCatchup
		gap := &Event{Stream: stream, Seq: from, Kind: "gap", Type: "polyshop.gateway.gap",
			Time: time.Now().UTC(), Data: json.RawMessage(`{"skipped":` + strconv.FormatUint(skipped, 10) + `}`)}
		gap.encode()
		out = append(out, gap)
		from += skipped
	}
	for seq := from; seq <= to; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("catch up %s at %d: %w", stream, seq, err)
		}
		if !h.matches(raw.Subject) {
			continue
		}
		e := Parse(stream, raw.Sequence, raw.Subject, raw.Data)
		h.orders.fill(e)
		e.encode()
		out = append(out, e)
	}
	return out, nil
}

// ring is one stream's buffer and its subscribers.
type ring struct {
	name string
	size int
	mu   sync.Mutex
	buf  []*Event
	// origin is the oldest sequence the buffer answers for: every message of the stream
	// (that passes the hub's filter) from origin to seen is in buf. 0 until attached.
	origin uint64
	seen   uint64 // the last sequence read
	subs   map[*Sub]struct{}
}

func (r *ring) setOrigin(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.origin == 0 {
		r.origin = seq
	}
}

func (r *ring) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

func (r *ring) add(e *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Seq <= r.seen {
		return // an ordered consumer reset may deliver again what was read
	}
	r.seen = e.Seq
	if r.origin == 0 {
		r.origin = e.Seq
	}
	if len(r.buf) >= r.size {
		r.origin = r.buf[0].Seq + 1
		r.buf[0] = nil
		r.buf = r.buf[1:]
	}
	r.buf = append(r.buf, e)
	for s := range r.subs {
		select {
		case s.c <- e:
		default:
			delete(r.subs, s)
			go s.dropLagged()
		}
	}
}

func (s *Sub) dropLagged() {
	for _, r := range s.h.streams {
		r.mu.Lock()
		delete(r.subs, s)
		r.mu.Unlock()
	}
	s.end(true)
}

func (r *ring) closeAll() {
	r.mu.Lock()
	subs := make([]*Sub, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

// ownerMap remembers which user placed which order, so messages about an order that do not
// carry the user id themselves still reach that user. It is bounded: when full it starts
// over (an order older than that many orders falls back to its own userId field, which
// every current message type carries).
type ownerMap struct {
	mu  sync.Mutex
	max int
	m   map[string]string
}

func newOwnerMap(max int) *ownerMap { return &ownerMap{max: max, m: map[string]string{}} }

func (o *ownerMap) fill(e *Event) {
	if e.OrderID == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case e.UserID != "":
		if len(o.m) >= o.max {
			clear(o.m)
		}
		o.m[e.OrderID] = e.UserID
	default:
		e.UserID = o.m[e.OrderID]
	}
}

// matches reports whether subject passes the hub's FilterSubjects.
func (h *Hub) matches(subject string) bool {
	if len(h.cfg.FilterSubjects) == 0 {
		return true
	}
	for _, f := range h.cfg.FilterSubjects {
		if subjectMatch(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatch is NATS subject matching: "*" is one token, ">" the rest.
func subjectMatch(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range ft {
		switch {
		case t == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case t != "*" && t != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}
