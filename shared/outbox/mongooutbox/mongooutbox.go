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

// renewEvery runs renew every interval (each run bounded by interval, not cancelled with
// ctx) until the returned stop is called; stop returns once renew no longer runs.
func renewEvery(ctx context.Context, interval time.Duration, renew func(context.Context)) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
				renew(rctx)
				cancel()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
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
			stopRenewing := renewEvery(ctx, lockTTL/3, func(rctx context.Context) {
				_, _ = lc.UpdateOne(rctx, bson.M{"_id": id, "token": token}, bson.M{"$set": bson.M{"until": time.Now().Add(lockTTL)}})
			})
			return heldLock{
				unlock: func() {
					stopRenewing()
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
	queue    []queued          // what the last scan found and no drain has taken yet
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
	m := s.stripe(id)
	if wait {
		m.Lock()
	} else if !m.TryLock() {
		return heldLock{}, errLocked
	}
	return heldLock{unlock: m.Unlock, valid: func(context.Context) bool { return true }}, nil
}

// stripe is the in-process lock of document id (WithLocalLock).
func (s *Store) stripe(id any) *sync.Mutex {
	h := fnv.New32a()
	_, _ = fmt.Fprint(h, id)
	return &s.local.m[h.Sum32()%uint32(len(s.local.m))]
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

// queued is a document a scan found with pending events, not yet handed to a drain.
type queued struct {
	id any
	n  int // its pending events at the scan
}

// candidates returns ids of documents that may have events to hand out, about limit
// events' worth: those whose retry time has come, the hinted ones (WithFollowWrites), then
// those left over from the last scan; it scans only when none of these is left (and, when
// following writes, a scan is due). A scan reads every document with pending events (the
// whole collection on FerretDB v1), so its result serves the drains that follow until
// they have taken every document it found, instead of scanning again for each batch
// (drains reread each document under its lock anyway). Called with s.mu held.
func (s *Store) candidates(ctx context.Context, limit int) ([]any, error) {
	now := time.Now()
	var ids []any
	seen := map[any]bool{}
	events := 0
	add := func(id any, n int) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
			events += n
		}
	}
	for id, at := range s.retry {
		if !at.After(now) && len(ids) < limit {
			add(id, 1)
			delete(s.retry, id)
		}
	}
	hinted := false
	if s.follow {
	hints:
		for len(ids) < limit {
			select {
			case id := <-s.hints:
				add(id, 1)
				hinted = true
			default:
				break hints
			}
		}
	}
	take := func() {
		for len(s.queue) > 0 && len(ids) < limit && events < limit {
			add(s.queue[0].id, s.queue[0].n)
			s.queue = s.queue[1:]
		}
	}
	// Documents due for a retry do not hold the scan back: with no retry delay, one
	// failing document would otherwise be all a drain ever looks at.
	if hinted || len(s.queue) > 0 || (s.follow && now.Sub(s.lastScan) < s.scan) {
		take()
		return ids, nil
	}
	s.lastScan = now
	cur, err := s.coll.Find(ctx, pendingFilter(),
		options.Find().SetProjection(bson.M{"_id": 1, FieldEvents: 1}))
	if err != nil {
		return nil, fmt.Errorf("outbox drain: find pending: %w", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("outbox drain: find pending: %w", err)
	}
	for _, d := range docs {
		if len(d.Events) > 0 && d.Events[0].held(now) {
			if d.Events[0].Parked.IsZero() {
				s.retry[d.ID] = d.Events[0].Next
			}
			continue
		}
		s.queue = append(s.queue, queued{id: d.ID, n: len(d.Events)})
	}
	take()
	return ids, nil
}

// Drain implements outbox.Store, a batch of documents at a time, in a fixed number of
// round trips however many documents and events the batch holds:
//
//  1. it takes the outbox locks of the candidate documents (one insert of lock documents;
//     documents locked by a writer or another relay are left for the next drain);
//  2. it rereads the locked documents (lone _id reads, the filter FerretDB v1 pushes down,
//     issued concurrently);
//  3. it hands out up to limit events, spread over the documents (each document's oldest
//     first, a round of one event per document at a time, so the window holds as many
//     aggregates as the batch has documents), stopping at a document's first held event
//     (parked, or waiting for its retry time), and publishes them through the relay's
//     window (outbox.InOrder.PublishAll: in order per aggregate);
//  4. it checks its locks are still its own, and removes the published events of every
//     document and records the failures (outbox.Policy) in one unordered bulk write;
//  5. it releases the locks (one delete).
//
// If the relay dies before the removal, the events stay and are published again (a lock
// document expires after 10s). The removal is fenced: a relay whose lock is no longer its
// own (it stalled past the TTL, its renewals failing) does not write, and its events are
// published again.
func (s *Store) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.candidates(ctx, limit)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	l, err := s.lockDocs(ctx, ids)
	if err != nil {
		return 0, err
	}
	defer l.unlock()
	for _, id := range ids {
		if !l.held[id] {
			s.retry[id] = time.Time{} // locked by a writer or another relay: next drain
		}
	}
	docs, err := s.readDocs(ctx, l.ids)
	if err != nil {
		return 0, err
	}

	// Each document's pending events up to its first held one, document after document,
	// up to limit: every document touched costs a read and a rewrite of the whole
	// document on FerretDB v1, whatever the number of its events handed out.
	now := time.Now()
	taken := make([]int, len(docs)) // events handed out per document
	var items []outbox.Item
	var at []int // document of each item
	for i, d := range docs {
		for _, p := range d.Events {
			if len(items) >= limit {
				s.retry[d.ID] = time.Time{} // the limit cut it: look again next drain
				break
			}
			if p.held(now) {
				if p.Parked.IsZero() {
					s.retry[d.ID] = p.Next
				}
				break
			}
			items = append(items, outbox.Item{Aggregate: fmt.Sprint(d.ID), ID: p.ID, Envelope: p.Envelope})
			at = append(at, i)
			taken[i]++
		}
	}
	if len(items) == 0 {
		return 0, nil
	}

	var pub outbox.InOrder
	ok, err := pub.PublishAll(ctx, publish, items)
	if err != nil {
		return 0, err
	}
	// PublishAll publishes a prefix of each aggregate's items: the rest of an aggregate
	// stops at its first failure.
	sent := make([]int, len(docs)) // published prefix per document
	for j, i := range at {
		if ok[j] {
			sent[i]++
		}
	}
	// Failures are recorded on their elements in the same write that removes the document's
	// published events; the failed event is the first one left.
	failed := map[int]outbox.Failure{}
	for _, f := range pub.Failures() {
		for j, it := range items {
			if it.ID == f.ID {
				failed[at[j]] = f
				break
			}
		}
	}
	var models []mongo.WriteModel
	var written []int
	for i := range docs {
		f, fails := failed[i]
		if sent[i] == 0 && !fails {
			if taken[i] > 0 {
				s.retry[docs[i].ID] = time.Time{}
			}
			continue
		}
		d := docs[i]
		rest := slices.Clone(d.Events[sent[i]:])
		if fails && len(rest) > 0 && rest[0].ID == f.ID {
			p := &rest[0]
			p.Attempts++
			p.Error = f.Err.Error()
			p.Next = time.Now().Add(s.policy.Delay(p.Attempts)).UTC()
			if s.policy.Parks(p.Attempts) {
				p.Parked = time.Now().UTC()
			} else {
				s.retry[d.ID] = p.Next
			}
		} else if fails {
			s.retry[d.ID] = time.Time{}
		}
		filter := bson.M{"_id": d.ID}
		if s.guard {
			// The filter on the count guards against a writer that bypassed the lock.
			filter[FieldCount] = d.N
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).
			SetUpdate(bson.M{"$set": bson.M{FieldEvents: rest, FieldCount: d.N - sent[i]}}))
		written = append(written, i)
	}
	if len(models) == 0 || ctx.Err() != nil {
		return 0, pub.Err()
	}
	if !l.valid(ctx) {
		return 0, fmt.Errorf("outbox drain: lost the lock of %d documents while publishing; their events are sent again", len(written))
	}
	matched, err := s.bulkUpdate(ctx, models)
	if err != nil {
		return 0, fmt.Errorf("outbox drain: remove sent from %d documents: %w", len(models), err)
	}
	total := 0
	for _, i := range written {
		total += sent[i]
	}
	if matched != int64(len(models)) {
		for _, i := range written {
			s.retry[docs[i].ID] = time.Time{}
		}
		return 0, fmt.Errorf("outbox drain: %d of %d documents changed without their lock; their events are sent again", int64(len(models))-matched, len(models))
	}
	return total, pub.Err()
}

// MaxUpdatesPerCommand bounds the update statements of one bulk write. FerretDB v1 (the
// native stack's catalog server) runs every statement of an update command on a PostgreSQL
// connection of its own and keeps each one until the whole command ends (v1.24's update
// handler closes each statement's query at the end of the command, not of the statement),
// so one command of 50 statements took every connection of its pool (50) and waited for one
// more, forever: the catalog, its relay and every later client hung. Chunks of this size
// leave the pool room for the other commands running beside one drain. On MongoDB the
// chunks cost a few round trips per drain of hundreds of documents.
const MaxUpdatesPerCommand = 16

// bulkUpdate runs models as unordered bulk writes of at most MaxUpdatesPerCommand
// statements and returns how many documents their filters matched.
func (s *Store) bulkUpdate(ctx context.Context, models []mongo.WriteModel) (int64, error) {
	var matched int64
	for chunk := range slices.Chunk(models, MaxUpdatesPerCommand) {
		res, err := s.coll.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false))
		if err != nil {
			return matched, err
		}
		matched += res.MatchedCount
	}
	return matched, nil
}

// readDocs rereads the pending events of ids (held under their locks), a few lone _id
// reads at a time; documents that no longer exist are left out.
func (s *Store) readDocs(ctx context.Context, ids []any) ([]doc, error) {
	docs := make([]doc, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := s.coll.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{FieldEvents: 1, FieldCount: 1})).Decode(&docs[i])
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
			case err != nil:
				errs[i] = fmt.Errorf("outbox drain: read %v: %w", id, err)
			default:
				found[i] = true
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := docs[:0]
	for i := range docs {
		if found[i] {
			out = append(out, docs[i])
		}
	}
	return out, nil
}

// heldLocks is the outbox locks of the documents a drain holds.
type heldLocks struct {
	ids    []any        // locked, in the order asked
	held   map[any]bool // the same, as a set
	unlock func()
	// valid reports whether every lock is still this holder's, right before a write that
	// must not run without them (the fence against a holder that stalled past the TTL).
	valid func(ctx context.Context) bool
}

// lockDocs takes, without waiting, the outbox locks of those of ids no one else holds.
func (s *Store) lockDocs(ctx context.Context, ids []any) (heldLocks, error) {
	if s.local != nil {
		return s.lockLocal(ids), nil
	}
	lc := locks(s.coll)
	token := uuid.NewString()
	now := time.Now()
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = bson.M{"_id": id, "token": token, "until": now.Add(lockTTL)}
	}
	taken := make([]bool, len(ids))
	for i := range taken {
		taken[i] = true
	}
	_, err := lc.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil:
		var busy []any
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) || we.Index < 0 || we.Index >= len(ids) {
				s.releaseLocks(ctx, lc, ids, token)
				return heldLocks{}, fmt.Errorf("outbox: lock %v: %w", ids[max(we.Index, 0)%len(ids)], we)
			}
			taken[we.Index] = false
			busy = append(busy, ids[we.Index])
		}
		// A holder that died leaves an expired lock behind: clear it for the next drain.
		if _, err := lc.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": busy}, "until": bson.M{"$lt": now}}); err != nil {
			s.releaseLocks(ctx, lc, ids, token)
			return heldLocks{}, fmt.Errorf("outbox: clear expired locks: %w", err)
		}
	default:
		s.releaseLocks(ctx, lc, ids, token)
		return heldLocks{}, fmt.Errorf("outbox: lock %d documents: %w", len(ids), err)
	}
	h := heldLocks{held: map[any]bool{}}
	for i, id := range ids {
		if taken[i] {
			h.ids = append(h.ids, id)
			h.held[id] = true
		}
	}
	if len(h.ids) == 0 {
		h.unlock = func() {}
		h.valid = func(context.Context) bool { return true }
		return h, nil
	}
	// Renew every lockTTL/3 while held, so a slow drain keeps its locks.
	stopRenewing := renewEvery(ctx, lockTTL/3, func(rctx context.Context) {
		_, _ = lc.UpdateMany(rctx, bson.M{"_id": bson.M{"$in": h.ids}, "token": token}, bson.M{"$set": bson.M{"until": time.Now().Add(lockTTL)}})
	})
	h.unlock = func() {
		stopRenewing()
		s.releaseLocks(ctx, lc, h.ids, token)
	}
	h.valid = func(ctx context.Context) bool {
		cur, err := lc.Find(ctx, bson.M{"_id": bson.M{"$in": h.ids}})
		if err != nil {
			return false
		}
		var ls []struct {
			Token string    `bson:"token"`
			Until time.Time `bson:"until"`
		}
		if err := cur.All(ctx, &ls); err != nil || len(ls) != len(h.ids) {
			return false
		}
		for _, l := range ls {
			if l.Token != token || time.Until(l.Until) <= lockTTL/5 {
				return false
			}
		}
		return true
	}
	return h, nil
}

// releaseLocks deletes the lock documents of ids that carry token.
func (s *Store) releaseLocks(ctx context.Context, lc *mongo.Collection, ids []any, token string) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = lc.DeleteMany(uctx, bson.M{"_id": bson.M{"$in": ids}, "token": token})
}

// lockLocal takes the in-process locks of ids without waiting; documents sharing a lock
// stripe share the one taken.
func (s *Store) lockLocal(ids []any) heldLocks {
	h := heldLocks{held: map[any]bool{}, valid: func(context.Context) bool { return true }}
	stripes := map[*sync.Mutex]bool{}
	var mine []*sync.Mutex
	for _, id := range ids {
		m := s.stripe(id)
		got, tried := stripes[m]
		if !tried {
			got = m.TryLock()
			stripes[m] = got
			if got {
				mine = append(mine, m)
			}
		}
		if got {
			h.ids = append(h.ids, id)
			h.held[id] = true
		}
	}
	h.unlock = func() {
		for _, m := range mine {
			m.Unlock()
		}
	}
	return h
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
	if len(s.queue) > 0 {
		d = 0 // the last scan found more than the drains have taken
	}
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

// pendingFilter matches the documents with pending events. The $ne says the same as the $gt
// for a count, but FerretDB v1 passes an equality or $ne on a scalar down to PostgreSQL and
// evaluates $gt itself, on every document it has decoded: with $gt alone, a scan of the
// catalog's 11,000 products decoded all of them (seconds of CPU, every scan interval, and a
// multi-second stall of the relay's drains); with the $ne, PostgreSQL returns only the
// documents with events. int32 is the type the count is stored with (the $ne compares types
// too); MongoDB answers both from the count's index.
func pendingFilter() bson.M {
	return bson.M{FieldCount: bson.M{"$gt": 0, "$ne": int32(0)}}
}

// scanAll reads every document with pending events (one query; on FerretDB v1 PostgreSQL
// filters them, see pendingFilter).
func (s *Store) scanAll(ctx context.Context) ([]doc, error) {
	cur, err := s.coll.Find(ctx, pendingFilter(), options.Find().SetProjection(bson.M{FieldEvents: 1, FieldCount: 1}))
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
