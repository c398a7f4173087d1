// Package pgoutbox is the PostgreSQL outbox: events are inserted into an outbox table in
// the same transaction as the state change (Add) and forwarded by an outbox.Relay over
// Store.
//
// Everything works in the connection's current search_path, so each service (and each
// test schema) has its own outbox table. Order per aggregate follows the outbox's seq,
// which matches commit order as long as writers of one aggregate serialize on it (they
// update the aggregate's row in the same transaction, which they do).
package pgoutbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

// Schema creates the outbox table and its indexes; it is idempotent. Services may apply it
// with Migrate or copy it into their own migrations.
const Schema = `
CREATE TABLE IF NOT EXISTS outbox (
	id           uuid PRIMARY KEY,
	seq          bigserial NOT NULL,
	aggregate    text NOT NULL,
	type         text NOT NULL,
	envelope     jsonb NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_aggregate ON outbox (aggregate, seq) WHERE published_at IS NULL;
` + Upgrade

// Upgrade adds to an outbox table created by an earlier Schema the columns of the failure
// policy (outbox.Policy) and the index retention uses. It is idempotent, and Store applies
// it on first use, so services whose migrations copied the earlier Schema need no new
// migration.
const Upgrade = `
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS last_error text;
CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_held ON outbox (aggregate, seq)
	WHERE published_at IS NULL AND (parked_at IS NOT NULL OR next_attempt_at IS NOT NULL);
`

// Channel is the NOTIFY channel Add signals on; the payload is the schema, so a waiter
// ignores commits to other schemas' outboxes.
const Channel = "outbox"

// Migrate applies Schema in the current search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("migrate outbox: %w", err)
	}
	return nil
}

// Add inserts evs into the outbox inside the caller's transaction tx, and queues a
// notification that wakes waiting relays when tx commits. Nothing is visible to relays
// before the commit, and nothing is left if tx rolls back.
func Add(ctx context.Context, tx pgx.Tx, evs ...events.Envelope) error {
	if len(evs) == 0 {
		return nil
	}
	ids := make([]string, len(evs))
	aggs := make([]string, len(evs))
	types := make([]string, len(evs))
	envs := make([]string, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("outbox: encode event %s: %w", e.ID, err)
		}
		ids[i], aggs[i], types[i], envs[i] = e.ID, e.Subject, e.Type, string(b)
	}
	// One round trip: the data-modifying CTE always runs; ORDER BY ord keeps seq in the
	// caller's order.
	_, err := tx.Exec(ctx, `
WITH ins AS (
	INSERT INTO outbox (id, aggregate, type, envelope)
	SELECT u.id::uuid, u.agg, u.typ, u.env::jsonb
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(id, agg, typ, env, ord)
	ORDER BY u.ord
	RETURNING 1
)
SELECT pg_notify('`+Channel+`', current_schema()) FROM (SELECT count(*) FROM ins) c`, ids, aggs, types, envs)
	if err != nil {
		return fmt.Errorf("outbox: add %d events: %w", len(evs), err)
	}
	return nil
}

// Store drains the outbox table of a pool's search_path. It is safe for concurrent use,
// and several Stores (relays in several processes) may drain one table at once.
type Store struct {
	pool *pgxpool.Pool

	// listen is a semaphore guarding the listening connection; a channel so that a second
	// waiter can give up after its own timeout.
	listen   chan struct{}
	conn     *pgx.Conn
	schema   string
	closeMu  sync.Mutex
	isClosed bool

	mu       sync.Mutex
	policy   outbox.Policy
	upgraded bool
}

var _ outbox.Operator = (*Store)(nil)

// New returns a Store over the outbox table in pool's search_path, with
// outbox.DefaultPolicy.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, listen: make(chan struct{}, 1), policy: outbox.DefaultPolicy()}
}

// SetPolicy implements outbox.Operator.
func (s *Store) SetPolicy(p outbox.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// upgrade applies Upgrade once per Store.
func (s *Store) upgrade(ctx context.Context) (outbox.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.upgraded {
		if _, err := s.pool.Exec(ctx, Upgrade); err != nil {
			return s.policy, fmt.Errorf("outbox: upgrade table: %w", err)
		}
		s.upgraded = true
	}
	return s.policy, nil
}

// drainSelect reads up to $1 pending rows in seq order, leaving out aggregates held back by
// an earlier row that is parked or waiting for its retry time — if this transaction gets
// the outbox's drain lock (a transaction-level advisory lock keyed by the schema), else
// nothing. One drain at a time per outbox: relays of several instances take turns, so no
// row needs a row lock (FOR UPDATE wrote a lock record per row to the WAL, as many as the
// delete that follows) and no row needs the check that another relay holds an earlier row
// of its aggregate (a count per row). held is small (the aggregates blocked by a failed
// event, from the outbox_held index), so the candidates are read along outbox_pending in
// seq order and the scan stops at the limit, whatever the backlog.
const drainSelect = `
WITH lk AS MATERIALIZED (
	SELECT pg_try_advisory_xact_lock(` + drainLockClass + `, hashtext(current_schema())) AS ok
), held AS MATERIALIZED (
	SELECT aggregate, min(seq) AS seq FROM outbox
	WHERE published_at IS NULL AND (parked_at IS NOT NULL OR next_attempt_at IS NOT NULL)
	  AND (parked_at IS NOT NULL OR next_attempt_at > now())
	GROUP BY aggregate
)
SELECT o.id::text, o.aggregate, o.envelope::text, o.attempts,
	coalesce(o.envelope->>'id', ''), coalesce(o.envelope->>'type', ''),
	coalesce(o.envelope->>'traceparent', ''), coalesce(o.envelope->>'correlationid', '')
FROM outbox o
WHERE (SELECT ok FROM lk)
  AND published_at IS NULL AND parked_at IS NULL
  AND (next_attempt_at IS NULL OR next_attempt_at <= now())
  AND NOT EXISTS (SELECT 1 FROM held h WHERE h.aggregate = o.aggregate AND h.seq < o.seq)
ORDER BY seq
LIMIT $1`

// drainLockClass is the first key of the drain lock, the second being the schema's hash:
// "po" for Polyshop outbox.
const drainLockClass = "28783"

// Drain implements outbox.Store. In one transaction it takes the drain lock and reads the
// rows to hand out (drainSelect; none while another relay holds the lock), publishes them
// in order, skipping an aggregate's later rows after a failure, deletes the published rows
// and records the failures (outbox.Policy). If the relay dies before the commit, the rows
// stay pending and are published again.
//
// Two round trips per drain: BEGIN, SET LOCAL and the select go in one batch, the delete,
// the failures and COMMIT in another. Published rows are deleted rather than marked: an
// UPDATE of published_at writes a whole new row version (the envelope included) and new
// index entries to the WAL, a DELETE only a small record per row, and a published row was
// never read again but by Prune (as the Redis and Mongo adapters already do).
func (s *Store) Drain(ctx context.Context, limit int, publish func(context.Context, events.Envelope) error) (int, error) {
	policy, err := s.upgrade(ctx)
	if err != nil {
		return 0, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox drain: acquire: %w", err)
	}
	// A connection left inside the transaction (an error below) is closed by Release
	// rather than reused; the rollback ends it first when the server is still there.
	open := false
	defer func() {
		if open {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
		conn.Release()
	}()

	// Marking rows sent need not be durable at commit: a deletion lost in a crash only
	// publishes the rows again, which at-least-once delivery allows (the broker drops the
	// copies within its duplicate window, consumers' inboxes after it). It saves a WAL
	// flush per drain.
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(drainSelect, limit)
	open = true
	br := conn.SendBatch(ctx, b)
	type row struct {
		item     outbox.Item
		attempts int
	}
	var pending []row
	err = func() error {
		defer br.Close()
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			// The envelope's id, type and trace attributes, read by PostgreSQL from the
			// jsonb, spare the relay decoding the envelope.
			it := &r.item
			if err := rows.Scan(&it.ID, &it.Aggregate, &it.Envelope, &r.attempts, &it.EventID, &it.Type, &it.TraceParent, &it.CorrelationID); err != nil {
				rows.Close()
				return err
			}
			pending = append(pending, r)
		}
		return rows.Err()
	}()
	if err != nil {
		return 0, fmt.Errorf("outbox drain: select: %w", err)
	}
	if len(pending) == 0 {
		if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
			return 0, fmt.Errorf("outbox drain: commit: %w", err)
		}
		open = false
		return 0, nil
	}

	var sent []string
	var pub outbox.InOrder
	attempts := map[string]int{}
	items := make([]outbox.Item, len(pending))
	for i, r := range pending {
		attempts[r.item.ID] = r.attempts
		items[i] = r.item
	}
	ok, err := pub.PublishAll(ctx, publish, items)
	if err != nil {
		return 0, err
	}
	for i, r := range pending {
		if ok[i] {
			sent = append(sent, r.item.ID)
		}
	}
	b = &pgx.Batch{}
	if len(sent) > 0 {
		b.Queue(`DELETE FROM outbox WHERE id = ANY($1::uuid[])`, sent)
	}
	if fs := pub.Failures(); len(fs) > 0 {
		ids := make([]string, len(fs))
		delays := make([]float64, len(fs))
		park := make([]bool, len(fs))
		msgs := make([]string, len(fs))
		for i, f := range fs {
			n := attempts[f.ID] + 1
			ids[i], delays[i], park[i], msgs[i] = f.ID, policy.Delay(n).Seconds(), policy.Parks(n), f.Err.Error()
		}
		b.Queue(`
UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.msg,
	next_attempt_at = now() + make_interval(secs => f.delay),
	parked_at = CASE WHEN f.park THEN now() END
FROM unnest($1::uuid[], $2::float8[], $3::bool[], $4::text[]) AS f(id, delay, park, msg)
WHERE o.id = f.id`, ids, delays, park, msgs)
	}
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("outbox drain: delete sent, record failures, commit: %w", err)
	}
	open = false
	return len(sent), pub.Err()
}

// Wait implements outbox.Store: it LISTENs on Channel over a connection of its own (taken
// from the pool on first use and kept) and returns on a notification for this schema, after
// d, or when ctx ends. Concurrent callers share the connection; one that cannot get it
// within d just returns.
func (s *Store) Wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case s.listen <- struct{}{}:
		defer func() { <-s.listen }()
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := s.ensureListening(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		n, err := s.conn.WaitForNotification(wctx)
		switch {
		case err == nil && n.Payload == s.schema:
			return nil
		case err == nil:
			continue // another schema's outbox
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil:
			if s.conn.IsClosed() {
				s.dropConn()
			}
			return nil
		default:
			s.dropConn()
			return fmt.Errorf("outbox wait: %w", err)
		}
	}
}

func (s *Store) ensureListening(ctx context.Context) error {
	if s.conn != nil && !s.conn.IsClosed() {
		return nil
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("outbox wait: acquire: %w", err)
	}
	// Hijack: a LISTENing connection must not go back to the pool.
	conn := pc.Hijack()
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.schema); err != nil {
		conn.Close(ctx)
		return fmt.Errorf("outbox wait: current schema: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		conn.Close(ctx)
		return fmt.Errorf("outbox wait: listen: %w", err)
	}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.isClosed {
		conn.Close(ctx)
		return errors.New("outbox wait: store closed")
	}
	s.conn = conn
	return nil
}

func (s *Store) dropConn() {
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
}

// Stats implements outbox.Operator.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	if _, err := s.upgrade(ctx); err != nil {
		return outbox.Stats{}, err
	}
	var st outbox.Stats
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT count(*), min(created_at), count(*) FILTER (WHERE parked_at IS NOT NULL)
FROM outbox WHERE published_at IS NULL`).Scan(&st.Pending, &oldest, &st.Parked)
	if err != nil {
		return st, fmt.Errorf("outbox stats: %w", err)
	}
	if oldest != nil {
		st.Oldest = *oldest
	}
	return st, nil
}

// Parked implements outbox.Operator.
func (s *Store) Parked(ctx context.Context, limit int) ([]outbox.Parked, error) {
	if _, err := s.upgrade(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
SELECT id::text, aggregate, type, attempts, coalesce(last_error, ''), parked_at FROM outbox
WHERE published_at IS NULL AND parked_at IS NOT NULL ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox parked: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (outbox.Parked, error) {
		var p outbox.Parked
		err := r.Scan(&p.ID, &p.Aggregate, &p.Type, &p.Attempts, &p.LastError, &p.ParkedAt)
		p.ParkedAt = p.ParkedAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox parked: %w", err)
	}
	return out, nil
}

// Rearm implements outbox.Operator; it also wakes waiting relays.
func (s *Store) Rearm(ctx context.Context, id string) error {
	if _, err := s.upgrade(ctx); err != nil {
		return err
	}
	if err := uuid.Validate(id); err != nil {
		return outbox.ErrNotParked
	}
	var n int
	err := s.pool.QueryRow(ctx, `
WITH r AS (
	UPDATE outbox SET parked_at = NULL, next_attempt_at = NULL, attempts = 0
	WHERE id = $1::uuid AND published_at IS NULL AND parked_at IS NOT NULL
	RETURNING 1
)
SELECT count(*) FROM r, LATERAL (SELECT pg_notify('`+Channel+`', current_schema())) n`, id).Scan(&n)
	if err != nil {
		return fmt.Errorf("outbox rearm %s: %w", id, err)
	}
	if n == 0 {
		return outbox.ErrNotParked
	}
	return nil
}

// Prune implements outbox.Operator: it deletes rows published more than retention ago,
// batch rows per statement, until none is left, and returns how many it deleted. Drain
// deletes what it publishes, so only rows marked published by earlier versions (a table
// upgraded in place) are left for it.
func (s *Store) Prune(ctx context.Context, retention time.Duration, batch int) (int, error) {
	if _, err := s.upgrade(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `
DELETE FROM outbox WHERE id IN (
	SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => $1)
	ORDER BY published_at LIMIT $2
)`, retention.Seconds(), batch)
		if err != nil {
			return total, fmt.Errorf("outbox prune: %w", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

// Close closes the listening connection. Call it after the relay has stopped.
func (s *Store) Close() {
	s.closeMu.Lock()
	s.isClosed = true
	s.closeMu.Unlock()
	s.listen <- struct{}{}
	s.dropConn()
	<-s.listen
}
