// Package replay reads a stream (CATALOG, INVENTORY) from a given sequence with an ordered, ephemeral
// JetStream consumer (no durable state, no acks), for rebuilding the search index.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
)

// Source implements search.Source on a JetStream stream.
type Source struct {
	js       jetstream.JetStream
	stream   string
	subjects []string
	batch    int
	log      *slog.Logger
}

var _ search.Source = (*Source)(nil)

// New returns a Source reading subjects of stream in batches of batch events.
func New(js jetstream.JetStream, stream string, subjects []string, batch int, log *slog.Logger) *Source {
	if batch <= 0 {
		batch = 500
	}
	return &Source{js: js, stream: stream, subjects: subjects, batch: batch, log: log}
}

// Name implements search.Source: the stream's name.
func (s *Source) Name() string { return s.stream }

// Replay implements search.Source. It stops when the consumer reports nothing pending after
// the stream's last sequence at the start of the call has been reached. A stream that does
// not exist (yet: its owner creates it) holds nothing to replay: no error.
func (s *Source) Replay(ctx context.Context, from uint64, fn func(context.Context, []events.Envelope) error) (int, uint64, error) {
	if from == 0 {
		from = 1
	}
	st, err := s.js.Stream(ctx, s.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.log.InfoContext(ctx, "replay: stream does not exist yet; nothing to replay", "stream", s.stream)
		return 0, from - 1, nil
	}
	if err != nil {
		return 0, from - 1, fmt.Errorf("stream %s: %w", s.stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, from - 1, fmt.Errorf("stream %s info: %w", s.stream, err)
	}
	target := info.State.LastSeq
	if target < from {
		return 0, from - 1, nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    s.subjects,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		InactiveThreshold: time.Minute,
	}
	if from <= 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverAllPolicy, 0
	}
	cons, err := s.js.OrderedConsumer(ctx, s.stream, cfg)
	if err != nil {
		return 0, from - 1, fmt.Errorf("ordered consumer on %s: %w", s.stream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, from - 1, fmt.Errorf("ordered consumer info: %w", err)
	}
	if ci.NumPending == 0 {
		return 0, from - 1, nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.batch))
	if err != nil {
		return 0, from - 1, fmt.Errorf("replay %s: %w", s.stream, err)
	}
	defer it.Stop()

	var (
		n       int
		last    = from - 1
		batch   []events.Envelope
		pending uint64 = ci.NumPending
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := fn(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for pending > 0 {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, last, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				// Nothing more arrived: whatever matched the filter up to target is read.
				break
			}
			return n, last, fmt.Errorf("replay %s: %w", s.stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, last, fmt.Errorf("replay metadata: %w", err)
		}
		last, pending = md.Sequence.Stream, md.NumPending
		e, err := events.Parse(msg.Data())
		if err != nil {
			s.log.WarnContext(ctx, "replay: skipping malformed message", "seq", last, "err", err)
		} else {
			batch = append(batch, e)
		}
		if len(batch) >= s.batch || pending == 0 {
			if err := flush(); err != nil {
				return n, last, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, last, err
	}
	return n, last, nil
}
