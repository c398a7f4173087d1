// Package mongooutbox is the MongoDB outbox for engines without multi-document
// transactions or change streams (FerretDB v1): an aggregate's pending events live inside
// the aggregate's own document, written by the same single-document update as the state
// change, and a relay removes them once published.
//
// Fields the package owns in an aggregate document:
//
//	_outbox       array of {id, seq, type, envelope (the event as a JSON string)}, oldest first
//	_outboxN      number of elements in _outbox (indexed: how relays find pending events;
//	              FerretDB v1 silently ignores $pull by condition, so removal is a $set)
//
// Write the state change with update operators merged with AppendUpdate (or insert with
// AppendFields), inside Write; never replace a whole document that may have pending events.
//
// Cost on FerretDB v1: only a filter that is a lone _id is pushed down, so the relay's
// query on _outboxN reads the whole collection. WithFollowWrites avoids it: the relay
// works from the ids this process's Store.Write has just written (lone _id reads) and
// scans only every scan interval, to pick up what other instances or a crashed run left
// behind, or an event whose retry time has come. WithLocalLock replaces the lock documents
// by in-process locks for a collection with a single writing process (the catalog holds a
// writer lease for that).
//
// Failures (outbox.Policy) are recorded on the element: attempts, next try, parking time,
// last error. The array is bounded: Room reports ErrFull once a document holds
// MaxPending events (an aggregate blocked by a parked event), so the writer refuses the
// change instead of growing the document toward MongoDB's 16 MB limit. Published events
// are removed at once, so Prune has nothing to remove.
package mongooutbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// Field names in an aggregate document.
const (
	FieldEvents = "_outbox"
	FieldCount  = "_outboxN"
)

// pending is one element of _outbox.
type pending struct {
	ID       string    `bson:"id"`
	Seq      int64     `bson:"seq"`
	Type     string    `bson:"type"`
	Envelope string    `bson:"envelope"`
	At       time.Time `bson:"at,omitempty"`       // when it was stored
	Attempts int       `bson:"attempts,omitempty"` // failed publishes
	Next     time.Time `bson:"next,omitempty"`     // no try before
	Parked   time.Time `bson:"parked,omitempty"`   // parked since
	Error    string    `bson:"error,omitempty"`    // last failure
}

// held says the element (and so its aggregate) is not to be tried at now.
func (p pending) held(now time.Time) bool { return !p.Parked.IsZero() || p.Next.After(now) }

// MaxPending is the default bound of one document's pending events (see Room).
const MaxPending = 1000

// ErrFull is returned by Room when a document already holds the most pending events
// allowed: its aggregate is blocked (a parked event) and a write would grow it unbounded.
var ErrFull = errors.New("outbox: too many pending events in this document; is an event parked?")

func elements(evs []events.Envelope) (bson.A, error) {
	out := make(bson.A, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("outbox: encode event %s: %w", e.ID, err)
		}
		out[i] = pending{ID: e.ID, Seq: e.Sequence, Type: e.Type, Envelope: string(b), At: time.Now().UTC().Truncate(time.Millisecond)}
	}
	return out, nil
}

// AppendUpdate adds to update (a MongoDB update document such as bson.M{"$set": …}) the
// operators that append evs to the document's pending events: $push with $each on _outbox
// and $inc on _outboxN. Existing "$push"/"$inc" entries (bson.M or bson.D) are kept.
func AppendUpdate(update bson.M, evs ...events.Envelope) error {
	if len(evs) == 0 {
		return nil
	}
	els, err := elements(evs)
	if err != nil {
		return err
	}
	if err := addOp(update, "$push", FieldEvents, bson.M{"$each": els}); err != nil {
		return err
	}
	return addOp(update, "$inc", FieldCount, len(evs))
}

// AppendRawUpdate is AppendUpdate for events already encoded as envelope JSON (as an
// earlier outbox stored them), kept byte for byte.
func AppendRawUpdate(update bson.M, envelopes ...string) error {
	if len(envelopes) == 0 {
		return nil
	}
	els := make(bson.A, len(envelopes))
	for i, env := range envelopes {
		e, err := events.Parse([]byte(env))
		if err != nil {
			return fmt.Errorf("outbox: stored event: %w", err)
		}
		els[i] = pending{ID: e.ID, Seq: e.Sequence, Type: e.Type, Envelope: env, At: e.Time.UTC()}
	}
	if err := addOp(update, "$push", FieldEvents, bson.M{"$each": els}); err != nil {
		return err
	}
	return addOp(update, "$inc", FieldCount, len(envelopes))
}

// Update returns an update document that only appends evs; merge your own operators into it.
func Update(evs ...events.Envelope) (bson.M, error) {
	u := bson.M{}
	return u, AppendUpdate(u, evs...)
}

func addOp(update bson.M, op, field string, v any) error {
	switch cur := update[op].(type) {
	case nil:
		update[op] = bson.M{field: v}
	case bson.M:
		cur[field] = v
	case bson.D:
		update[op] = append(cur, bson.E{Key: field, Value: v})
	default:
		return fmt.Errorf("outbox: cannot merge into %s of type %T", op, cur)
	}
	return nil
}

// AppendFields returns doc with the fields that hold evs as pending events, for
// inserting a new aggregate together with its first events.
func AppendFields(doc bson.D, evs ...events.Envelope) (bson.D, error) {
	els, err := elements(evs)
	if err != nil {
		return nil, err
	}
	return append(doc, bson.E{Key: FieldEvents, Value: els}, bson.E{Key: FieldCount, Value: len(evs)}), nil
}

// EnsureIndexes creates the index relays use to find documents with pending events.
func EnsureIndexes(ctx context.Context, coll *mongo.Collection) error {
	_, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: FieldCount, Value: 1}}},
	})
	if err != nil {
		return fmt.Errorf("outbox indexes on %s: %w", coll.Name(), err)
	}
	return nil
}

// Write runs write, the caller's update of the aggregate document with the given _id,
// while holding that document's outbox lock, and returns write's error. Every write to a
// document that may hold pending events must go through Write.
//
// Why: FerretDB v1 applies an update by reading the document, changing it in memory and
// writing the whole document back, without a transaction around the three steps, so two
// concurrent updates of one document can lose one of them. Without the lock a relay
// removing published events could erase an event (and a state change) committed at the
// same moment. On MongoDB the lock is unnecessary but harmless. The lock is a document in
// the collection "<coll>_outbox_locks", taken by inserting it (the unique _id makes that
// atomic on every engine) and expiring after 10 seconds if its holder dies.
func Write(ctx context.Context, coll *mongo.Collection, id any, write func(ctx context.Context) error) error {
	l, err := lock(ctx, coll, id, true)
	if err != nil {
		return err
	}
	defer l.unlock()
	return write(ctx)
}

const lockTTL = 10 * time.Second

var errLocked = errors.New("outbox: document locked")

func locks(coll *mongo.Collection) *mongo.Collection {
	return coll.Database().Collection(coll.Name() + "_outbox_locks")
}

// held is a taken outbox lock; unlock releases it.
type heldLock struct {
	unlock func()
	// valid reports whether the lock is still this holder's, right before a write that
	// must not run without it (the fence against a holder that stalled past the TTL).
	valid func(ctx context.Context) bool
}

// lock takes the outbox lock of document id; with wait it retries until ctx ends,
// otherwise it returns errLocked at once when another holder has it. While held, the lock
// is renewed every lockTTL/3, so a slow holder keeps it.
func lock(ctx context.Context, coll *mongo.Collection, id any, wait bool) (heldLock, error) {
	lc := locks(coll)
	token := uuid.NewString()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		now := time.Now()
		_, err := lc.InsertOne(ctx, bson.M{"_id": id, "token": token, "until": now.Add(lockTTL)})
		if err == nil {
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				t := time.NewTicker(lockTTL / 3)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockTTL/3)
						_, _ = lc.UpdateOne(rctx, bson.M{"_id": id, "token": token}, bson.M{"$set": bson.M{"until": time.Now().Add(lockTTL)}})
						cancel()
					}
				}
			}()
			return heldLock{
				unlock: func() {
					close(stop)
					<-done
					uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer cancel()
					_, _ = lc.DeleteOne(uctx, bson.M{"_id": id, "token": token})
				},
				valid: func(ctx context.Context) bool {
					var l struct {
						Token string    `bson:"token"`
						Until time.Time `bson:"until"`
					}
					err := lc.FindOne(ctx, bson.M{"_id": id}).Decode(&l)
					return err == nil && l.Token == token && time.Until(l.Until) > lockTTL/5
				},
			}, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return heldLock{}, fmt.Errorf("outbox: lock %v: %w", id, err)
		}
		// A holder that died leaves an expired lock behind.
		if _, err := lc.DeleteOne(ctx, bson.M{"_id": id, "until": bson.M{"$lt": now}}); err != nil {
			return heldLock{}, fmt.Errorf("outbox: clear expired lock %v: %w", id, err)
		}
		if !wait {
			return heldLock{}, errLocked
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return heldLock{}, fmt.Errorf("outbox: lock %v: %w", id, ctx.Err())
		}
	}
}

// Store drains the pending events of one collection, and is the write side for writers
// that want the relay to follow their writes (Store.Write). It is safe for concurrent use,
// and several relays may drain one collection at once: a relay works on a document only
// while holding its outbox lock (see Write), so one aggregate's events are published by
// one relay at a time, in order, and never concurrently with a write to the aggregate.
type Store struct {
	coll *mongo.Collection

	follow     bool          // WithFollowWrites
	scan       time.Duration // scan interval when following writes
	hints      chan any
	kick       chan struct{}
	local      *Locks // WithLocalLock
	guard      bool   // the count condition goes into the removal's filter
	maxPending int

	mu       sync.Mutex // one Drain at a time per Store; guards the fields below
	policy   outbox.Policy
	lastScan time.Time
	retry    map[any]time.Time // held documents known to this Store, by next try
	byAgg    map[string]any    // the drain's documents by aggregate (InOrder's key)
}

var _ outbox.Operator = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithFollowWrites makes the relay find pending events from the ids this Store's Write
// has just written, scanning the collection only every scan interval (and when a held
// document's retry time comes). Use it when every writer of the collection in this
// process goes through Store.Write.
func WithFollowWrites(scan time.Duration) Option {
	return func(s *Store) { s.follow, s.scan = true, max(scan, time.Millisecond) }
}

// Locks is a table of in-process document locks, shared by the Stores of one process.
type Locks struct{ m [256]sync.Mutex }

// WithLocalLock serialises writers and relays on a document with the in-process locks l
// (nil: a table of the Store's own) instead of lock documents: correct only when every
// writer and relay of the collection runs in this process and uses l (the catalog holds a
// writer lease for that), since FerretDB v1 applies even conditional updates without
// atomicity. With guard, the removal of published events is also conditioned on the
// pending count in the update's filter (atomic on MongoDB); without it the filter is a
// lone _id, which is all FerretDB v1 pushes down.
func WithLocalLock(l *Locks, guard bool) Option {
	return func(s *Store) {
		if l == nil {
			l = &Locks{}
		}
		s.local, s.guard = l, guard
	}
}

// WithMaxPending sets the bound Room enforces (default MaxPending).
func WithMaxPending(n int) Option { return func(s *Store) { s.maxPending = n } }

// New returns a Store over coll, with outbox.DefaultPolicy.
func New(coll *mongo.Collection, opts ...Option) *Store {
	s := &Store{
		coll: coll, guard: true, hints: make(chan any, 4096), kick: make(chan struct{}, 1),
		maxPending: MaxPending, policy: outbox.DefaultPolicy(), retry: map[any]time.Time{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SetPolicy implements outbox.Operator.
func (s *Store) SetPolicy(p outbox.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// Room returns ErrFull when a document holding pending events (its _outboxN) cannot take
// adding more; writers call it with the count they read before writing.
func (s *Store) Room(pending, adding int) error {
	if s.maxPending > 0 && pending+adding > s.maxPending && adding > 0 {
		return ErrFull
	}
	return nil
}

func (s *Store) lockDoc(ctx context.Context, id any, wait bool) (heldLock, error) {
	if s.local == nil {
		return lock(ctx, s.coll, id, wait)
	}
	h := fnv.New32a()
	_, _ = fmt.Fprint(h, id)
	m := &s.local.m[h.Sum32()%uint32(len(s.local.m))]
	if wait {
		m.Lock()
	} else if !m.TryLock() {
		return heldLock{}, errLocked
	}
	return heldLock{unlock: m.Unlock, valid: func(context.Context) bool { return true }}, nil
}

// Write runs write, the caller's update of document id, under the document's outbox lock
// (see the package-level Write), and on success tells this Store's relay that id has
// pending events.
func (s *Store) Write(ctx context.Context, id any, write func(ctx context.Context) error) error {
	l, err := s.lockDoc(ctx, id, true)
	if err != nil {
		return err
	}
	err = write(ctx)
	l.unlock()
	if err == nil {
		s.Hint(id)
	}
	return err
}

// Hint tells this Store's relay that document id has new pending events. A full buffer
// drops the hint; the periodic scan finds the document.
func (s *Store) Hint(id any) {
	select {
	case s.hints <- id:
	default:
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

type doc struct {
	ID     any       `bson:"_id"`
	Events []pending `bson:"_outbox"`
	N      int       `bson:"_outboxN"`
}

// candidates returns ids of documents that may have events to hand out: the hinted ones
// and those whose retry time has come; the result of a scan when following writes is off,
// or when there are no hints and a scan is due. Called with s.mu held.
func (s *Store) candidates(ctx context.Context, limit int) ([]any, error) {
	now := time.Now()
	var ids []any
	seen := map[any]bool{}
	add := func(id any) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for id, at := range s.retry {
		if !at.After(now) && len(ids) < limit {
			add(id)
			delete(s.retry, id)
		}
	}
	if s.follow {
	hints:
		for len(ids) < limit {
			select {
			case id := <-s.hints:
				add(id)
			default:
				break hints
			}
		}
		if len(ids) > 0 || now.Sub(s.lastScan) < s.scan {
			return ids, nil
		}
		s.lastScan = now
	}
	cur, err := s.coll.Find(ctx, bson.M{FieldCount: bson.M{"$gt": 0}},
		options.Find().SetProjection(bson.M{"_id": 1, FieldEvents: 1}))
	if err != nil {
		return nil, fmt.Errorf("outbox drain: find pending: %w", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("outbox drain: find pending: %w", err)
	}
	for _, d := range docs {
		if len(ids) >= limit {
			break
		}
		if len(d.Events) > 0 && d.Events[0].held(now) {
			if d.Events[0].Parked.IsZero() {
				s.retry[d.ID] = d.Events[0].Next
			}
			continue
		}
		add(d.ID)
	}
	return ids, nil
}

// Drain implements outbox.Store. For each candidate document whose lock it gets
// (documents locked by a writer or another relay are left for the next drain) it rereads
// the pending events, publishes them in array order until one fails or is held (parked,
// or waiting for its retry time), and removes the published ones before releasing the
// lock; failures are then recorded on their elements (outbox.Policy). If the relay dies
// before the removal, the events stay and are published again (a lock document expires
// after 10s). The removal is fenced: a relay whose lock is no longer its own (it stalled
// past the TTL, its renewals failing) does not write, and its events are published again.
func (s *Store) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.candidates(ctx, limit)
	if err != nil {
		return 0, err
	}
	sent := 0
	var pub outbox.InOrder
	var firstErr error
	s.byAgg = map[string]any{}
	for _, id := range ids {
		if sent >= limit {
			s.retry[id] = time.Time{} // look again next drain
			continue
		}
		n, err := s.drainDoc(ctx, id, limit-sent, publish, &pub)
		sent += n
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, f := range pub.Failures() {
		if err := s.recordFailure(ctx, f); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = pub.Err()
	}
	return sent, firstErr
}

func (s *Store) drainDoc(ctx context.Context, id any, limit int, publish func(context.Context, events.Envelope) error, pub *outbox.InOrder) (int, error) {
	l, err := s.lockDoc(ctx, id, false)
	if errors.Is(err, errLocked) {
		s.retry[id] = time.Time{}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer l.unlock()
	var d doc
	err = s.coll.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{FieldEvents: 1, FieldCount: 1})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("outbox drain: read %v: %w", id, err)
	}
	agg := fmt.Sprint(id)
	s.byAgg[agg] = id
	now := time.Now()
	n := 0
	for _, p := range d.Events {
		if n >= limit {
			s.retry[id] = time.Time{}
			break
		}
		if p.held(now) {
			if p.Parked.IsZero() {
				s.retry[id] = p.Next
			}
			break
		}
		ok, err := pub.Publish(ctx, publish, agg, p.ID, p.Envelope)
		if err != nil {
			return 0, err
		}
		if !ok {
			s.retry[id] = time.Time{} // a recorded failure sets the real retry time
			break
		}
		n++
	}
	if n == 0 || ctx.Err() != nil {
		return 0, nil
	}
	if !l.valid(ctx) {
		return 0, fmt.Errorf("outbox drain: lost the lock of %v while publishing; its events are sent again", id)
	}
	filter := bson.M{"_id": id}
	if s.guard {
		// The filter on the count guards against a writer that bypassed the lock.
		filter[FieldCount] = d.N
	}
	res, err := s.coll.UpdateOne(ctx, filter, bson.M{"$set": bson.M{FieldEvents: d.Events[n:], FieldCount: d.N - n}})
	if err != nil {
		return 0, fmt.Errorf("outbox drain: remove sent from %v: %w", id, err)
	}
	if res.MatchedCount != 1 {
		return 0, fmt.Errorf("outbox drain: %v changed without its lock; events are sent again", id)
	}
	return n, nil
}

// recordFailure counts a failed publish on its element, under the document's lock.
func (s *Store) recordFailure(ctx context.Context, f outbox.Failure) error {
	d := doc{ID: s.byAgg[f.Aggregate]}
	l, err := s.lockDoc(ctx, d.ID, true)
	if err != nil {
		return err
	}
	defer l.unlock()
	if err := s.coll.FindOne(ctx, bson.M{"_id": d.ID}, options.FindOne().SetProjection(bson.M{FieldEvents: 1, FieldCount: 1})).Decode(&d); err != nil {
		return fmt.Errorf("outbox drain: record failure of %s: %w", f.ID, err)
	}
	for i := range d.Events {
		p := &d.Events[i]
		if p.ID != f.ID {
			continue
		}
		p.Attempts++
		p.Error = f.Err.Error()
		p.Next = time.Now().Add(s.policy.Delay(p.Attempts)).UTC()
		if s.policy.Parks(p.Attempts) {
			p.Parked = time.Now().UTC()
		} else {
			s.retry[d.ID] = p.Next
		}
		filter := bson.M{"_id": d.ID}
		if s.guard {
			filter[FieldCount] = d.N
		}
		if _, err := s.coll.UpdateOne(ctx, filter, bson.M{"$set": bson.M{FieldEvents: d.Events}}); err != nil {
			return fmt.Errorf("outbox drain: record failure of %s: %w", f.ID, err)
		}
		return nil
	}
	return nil
}

// Wait implements outbox.Store: it returns when this Store's Write hints new events, when
// a scan or a retry is due, after d, or when ctx ends. Without WithFollowWrites it sleeps
// d: FerretDB v1 has no change streams, so the relay polls, and d (outbox.WithInterval)
// is the delivery latency.
func (s *Store) Wait(ctx context.Context, d time.Duration) error {
	if len(s.hints) > 0 {
		return nil
	}
	s.mu.Lock()
	if s.follow {
		d = min(d, s.scan-time.Since(s.lastScan))
	}
	for _, at := range s.retry {
		d = min(d, time.Until(at))
	}
	s.mu.Unlock()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.kick:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scanAll reads every document with pending events (a collection scan on FerretDB v1).
func (s *Store) scanAll(ctx context.Context) ([]doc, error) {
	cur, err := s.coll.Find(ctx, bson.M{FieldCount: bson.M{"$gt": 0}}, options.Find().SetProjection(bson.M{FieldEvents: 1, FieldCount: 1}))
	if err != nil {
		return nil, fmt.Errorf("outbox: find pending: %w", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("outbox: find pending: %w", err)
	}
	return docs, nil
}

// Stats implements outbox.Operator with one scan of the documents with pending events.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	docs, err := s.scanAll(ctx)
	if err != nil {
		return outbox.Stats{}, err
	}
	var st outbox.Stats
	for _, d := range docs {
		for _, p := range d.Events {
			st.Pending++
			if !p.Parked.IsZero() {
				st.Parked++
			}
			if !p.At.IsZero() && (st.Oldest.IsZero() || p.At.Before(st.Oldest)) {
				st.Oldest = p.At
			}
		}
	}
	return st, nil
}

// Parked implements outbox.Operator with one scan of the documents with pending events.
func (s *Store) Parked(ctx context.Context, limit int) ([]outbox.Parked, error) {
	docs, err := s.scanAll(ctx)
	if err != nil {
		return nil, err
	}
	out := []outbox.Parked{}
	for _, d := range docs {
		for _, p := range d.Events {
			if !p.Parked.IsZero() {
				out = append(out, outbox.Parked{
					ID: p.ID, Aggregate: fmt.Sprint(d.ID), Type: p.Type, Attempts: p.Attempts,
					LastError: p.Error, ParkedAt: p.Parked.UTC(),
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b outbox.Parked) int { return a.ParkedAt.Compare(b.ParkedAt) })
	return out[:min(limit, len(out))], nil
}

// Rearm implements outbox.Operator.
func (s *Store) Rearm(ctx context.Context, id string) error {
	docs, err := s.scanAll(ctx)
	if err != nil {
		return err
	}
	for _, d := range docs {
		for _, p := range d.Events {
			if p.ID != id || p.Parked.IsZero() {
				continue
			}
			l, err := s.lockDoc(ctx, d.ID, true)
			if err != nil {
				return err
			}
			defer l.unlock()
			var cur doc
			if err := s.coll.FindOne(ctx, bson.M{"_id": d.ID}).Decode(&cur); err != nil {
				return fmt.Errorf("outbox rearm %s: %w", id, err)
			}
			for i := range cur.Events {
				if cur.Events[i].ID == id {
					cur.Events[i].Attempts, cur.Events[i].Next, cur.Events[i].Parked = 0, time.Time{}, time.Time{}
				}
			}
			if _, err := s.coll.UpdateOne(ctx, bson.M{"_id": d.ID}, bson.M{"$set": bson.M{FieldEvents: cur.Events}}); err != nil {
				return fmt.Errorf("outbox rearm %s: %w", id, err)
			}
			s.Hint(d.ID)
			return nil
		}
	}
	return outbox.ErrNotParked
}

// Prune implements outbox.Operator: published events are removed from their document at
// once, so there is nothing left to prune; it returns 0.
func (s *Store) Prune(context.Context, time.Duration, int) (int, error) { return 0, nil }
