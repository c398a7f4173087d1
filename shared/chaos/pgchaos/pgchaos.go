// Package pgchaos keeps a service's chaos switches (package chaos) in its own PostgreSQL
// database, in table chaos_switches of the current search_path, and reads the state of
// its pgoutbox outbox for operators.
package pgchaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/shared/chaos"
)

// Schema creates the switches table; it is idempotent.
const Schema = `
CREATE TABLE IF NOT EXISTS chaos_switches (
	id         int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
	state      jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO chaos_switches (id, state) VALUES (1, '{}') ON CONFLICT (id) DO NOTHING;
`

// Store implements chaos.Store on a pgx pool.
type Store struct{ pool *pgxpool.Pool }

var _ chaos.Store = (*Store)(nil)

// New applies Schema (serialized with other instances by an advisory lock) and returns
// the store.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('pgchaos:' || current_schema(), 0))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, Schema, pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate chaos_switches: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Load implements chaos.Store.
func (s *Store) Load(ctx context.Context) (chaos.State, error) {
	var raw []byte
	var st chaos.State
	err := s.pool.QueryRow(ctx, `SELECT state FROM chaos_switches WHERE id = 1`).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(raw, &st)
}

// Update implements chaos.Store.
func (s *Store) Update(ctx context.Context, fn func(*chaos.State)) (chaos.State, error) {
	var st chaos.State
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var raw []byte
		if err := tx.QueryRow(ctx, `SELECT state FROM chaos_switches WHERE id = 1 FOR UPDATE`).Scan(&raw); err != nil {
			return err
		}
		st = chaos.State{}
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		fn(&st)
		out, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE chaos_switches SET state = $1, updated_at = now() WHERE id = 1`, out)
		return err
	})
	return st, err
}

// OutboxStats returns a chaos.OutboxFunc reading the pgoutbox table "outbox" of pool's
// search_path.
func OutboxStats(pool *pgxpool.Pool) chaos.OutboxFunc {
	return func(ctx context.Context) (chaos.OutboxStats, error) {
		var st chaos.OutboxStats
		var age *float64
		err := pool.QueryRow(ctx, `SELECT count(*), min(created_at), EXTRACT(EPOCH FROM now() - min(created_at))::float8
			FROM outbox WHERE published_at IS NULL`).Scan(&st.Pending, &st.OldestPendingAt, &age)
		if err != nil {
			return st, fmt.Errorf("outbox stats: %w", err)
		}
		if age != nil {
			st.OldestPendingAgeSeconds = *age
		}
		if st.OldestPendingAt != nil {
			t := st.OldestPendingAt.UTC().Truncate(time.Millisecond)
			st.OldestPendingAt = &t
		}
		return st, nil
	}
}
