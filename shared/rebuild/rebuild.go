// Package rebuild rebuilds a read model (CQRS) without depending on stream retention:
// snapshot + tail, as SPEC's "Reads across services" asks.
//
// For each source (one owner: its export and its stream) Run
//
//  1. notes the stream's last sequence N (0 when the stream is empty or missing);
//  2. pages through the owner's export — every aggregate with its version, deleted ones as
//     tombstones — and applies each page through the read model's versioned apply;
//  3. replays the stream's events on the read model's subjects from N+1 up to the stream's
//     last sequence taken when the tail starts, through the same versioned apply.
//
// Why it converges: an owner commits its state before its event reaches the stream (outbox),
// so every event at a sequence <= N is already reflected in the export read after N was
// noted; anything that changed during the export is either in the export already (at its
// newer version) or in the tail (or both: the versioned apply keeps the higher version,
// whatever the order). The export need not be a consistent snapshot (FerretDB has no
// multi-document transactions): each aggregate is judged on its own version. The rebuild
// never reads a sequence <= N, so events that retention removed (MaxAge, MaxMsgs, a purge)
// are not needed: the export holds what they held.
//
// What the read model must provide: an apply that is idempotent and versioned per
// aggregate (an older or equal version changes nothing; a snapshot record at the version
// the read model already has may be re-applied, since it is the same state), for both the
// export's records and the stream's events.
//
// Limits: the tail must still be in the stream while the rebuild runs; when the stream's
// first sequence has moved past N+1 (retention removed part of the tail during the
// rebuild) Tail fails with ErrTailGone and the rebuild must be run again (it then notes a
// newer N). Events that reach the stream after the tail's end are the live consumers'
// business (or a second Tail from the returned end).
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/events"
)

// ApplyFunc applies a batch of a stream's events through the read model's versioned apply.
type ApplyFunc func(ctx context.Context, batch []events.Envelope) error

// Source is one owner feeding a read model: its export and its stream.
type Source struct {
	// Name names the source in reports ("catalog", "inventory", "users").
	Name string
	// Stream is the owner's JetStream stream (CATALOG, …).
	Stream string
	// Subjects are the subjects of Stream the read model consumes (the tail's filter).
	Subjects []string
	// Snapshot applies the owner's whole export through the read model's versioned apply
	// and returns how many records it applied (see Snapshot for an Export).
	Snapshot func(ctx context.Context) (int, error)
	// Apply applies a batch of the stream's events through the same versioned apply.
	Apply ApplyFunc
}

// SourceReport says what Run did for one source.
type SourceReport struct {
	Source string `json:"source"`
	Stream string `json:"stream"`
	// FirstSequence is the stream's first sequence still held when the last sequence was
	// noted (0 when empty or missing): anything before it is gone, and not needed.
	FirstSequence uint64 `json:"streamFirstSequence"`
	// Noted is the stream's last sequence noted before the export was read.
	Noted uint64 `json:"notedSequence"`
	// Exported is how many export records were applied.
	Exported int `json:"exported"`
	// TailFrom and TailTo bound the tail replayed: Noted+1 up to the stream's last sequence
	// when the tail started (TailTo < TailFrom: nothing to replay).
	TailFrom uint64 `json:"tailFrom"`
	TailTo   uint64 `json:"tailTo"`
	// Replayed is how many of the tail's events (on Subjects) were applied.
	Replayed   int   `json:"replayed"`
	DurationMs int64 `json:"durationMs"`
}

// TailReport says what Tail replayed.
type TailReport struct {
	From uint64 `json:"from"`
	// To is the stream's last sequence when the tail started; nothing after it is applied.
	To uint64 `json:"to"`
	// Applied is how many events on the subjects were handed to the ApplyFunc.
	Applied int `json:"applied"`
}

// ErrTailGone means the stream no longer holds the start of the tail (retention removed
// it during the rebuild): run the rebuild again.
var ErrTailGone = errors.New("the stream no longer holds the start of the tail")

// Rebuilder runs the pattern against one JetStream connection. It is safe for concurrent
// use; each call creates its own ephemeral ordered consumer.
type Rebuilder struct {
	js    jetstream.JetStream
	batch int
	log   *slog.Logger
	// stallAfter bounds the wait for one message that the stream is known to hold; it is
	// an error, never an end condition.
	stallAfter time.Duration
}

// DefaultBatch is how many events Tail hands to an ApplyFunc at once.
const DefaultBatch = 500

// New returns a Rebuilder reading streams through js, handing events over in batches of
// batch (0: DefaultBatch).
func New(js jetstream.JetStream, batch int, log *slog.Logger) *Rebuilder {
	if batch <= 0 {
		batch = DefaultBatch
	}
	return &Rebuilder{js: js, batch: batch, log: log, stallAfter: 30 * time.Second}
}

// Run rebuilds from every source in turn (note, export, tail; see the package comment) and
// returns a report per source. It stops at the first error.
func (r *Rebuilder) Run(ctx context.Context, sources ...Source) ([]SourceReport, error) {
	out := make([]SourceReport, 0, len(sources))
	for _, s := range sources {
		rep, err := r.run(ctx, s)
		if err != nil {
			return out, fmt.Errorf("rebuild from %s: %w", s.Name, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

func (r *Rebuilder) run(ctx context.Context, s Source) (SourceReport, error) {
	start := time.Now()
	rep := SourceReport{Source: s.Name, Stream: s.Stream}
	first, last, err := r.Position(ctx, s.Stream)
	if err != nil {
		return rep, err
	}
	rep.FirstSequence, rep.Noted = first, last
	n, err := s.Snapshot(ctx)
	if err != nil {
		return rep, fmt.Errorf("export: %w", err)
	}
	rep.Exported = n
	t, err := r.Tail(ctx, s.Stream, s.Subjects, last+1, s.Apply)
	rep.TailFrom, rep.TailTo, rep.Replayed = t.From, t.To, t.Applied
	if err != nil {
		return rep, err
	}
	rep.DurationMs = time.Since(start).Milliseconds()
	r.log.InfoContext(ctx, "rebuild: source done", "source", s.Name, "stream", s.Stream,
		"first_seq", first, "noted_seq", last, "exported", n, "tail_to", t.To, "replayed", t.Applied)
	return rep, nil
}

// Position returns the stream's first and last sequence (0, 0 when the stream does not
// exist: its owner has not created it yet, so it holds nothing).
func (r *Rebuilder) Position(ctx context.Context, stream string) (first, last uint64, err error) {
	st, err := r.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s info: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return 0, info.State.LastSeq, nil
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// Tail hands the events on subjects of stream with sequences from..To to fn in stream
// order, in batches, where To is the stream's last sequence when Tail starts: it ends
// there, not after a pause in deliveries, so events published meanwhile neither prolong it
// nor are applied by it. A stream that does not exist holds nothing (no error). When the
// stream's first sequence is past from, part of the tail is gone: ErrTailGone (unless
// from is 1: a stream whose beginning was removed by retention before the first note,
// which the export covered). Malformed messages are logged and skipped.
func (r *Rebuilder) Tail(ctx context.Context, stream string, subjects []string, from uint64, fn ApplyFunc) (TailReport, error) {
	if from == 0 {
		from = 1
	}
	rep := TailReport{From: from, To: from - 1}
	first, last, err := r.Position(ctx, stream)
	if err != nil {
		return rep, err
	}
	rep.To = max(last, from-1)
	if last < from {
		return rep, nil
	}
	if first > from && from > 1 {
		return rep, fmt.Errorf("%w: %s holds %d..%d, the tail starts at %d", ErrTailGone, stream, first, last, from)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		InactiveThreshold: time.Minute,
	}
	cons, err := r.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return rep, fmt.Errorf("ordered consumer on %s: %w", stream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("ordered consumer info on %s: %w", stream, err)
	}
	if ci.NumPending == 0 {
		return rep, nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(r.batch))
	if err != nil {
		return rep, fmt.Errorf("tail %s: %w", stream, err)
	}
	defer it.Stop()

	batch := make([]events.Envelope, 0, r.batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := fn(ctx, batch); err != nil {
			return err
		}
		rep.Applied += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		// The consumer reported pending messages, so one is coming: a long silence is a
		// fault (an error), not the end of the tail.
		nctx, cancel := context.WithTimeout(ctx, r.stallAfter)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			return rep, fmt.Errorf("tail %s at %d..%d: %w", stream, from, rep.To, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return rep, fmt.Errorf("tail %s metadata: %w", stream, err)
		}
		seq := md.Sequence.Stream
		if seq > rep.To {
			break // published after the tail started: not this tail's
		}
		e, err := events.Parse(msg.Data())
		if err != nil {
			r.log.WarnContext(ctx, "rebuild: skipping malformed message", "stream", stream, "seq", seq, "err", err)
		} else {
			batch = append(batch, e)
		}
		if len(batch) >= r.batch {
			if err := flush(); err != nil {
				return rep, err
			}
		}
		// NumPending counts matching messages after this one, up to now; 0 means this was
		// the last matching one (whatever its sequence), seq == To the last of the tail.
		if seq == rep.To || md.NumPending == 0 {
			break
		}
	}
	return rep, flush()
}
