// Package pgmigrate applies a service's embedded SQL migrations at start: each *.sql file
// once, in lexical order, recorded in schema_migrations in the current search_path.
//
// Name files so that lexical order is the intended order (0001_init.sql, 0002_…). A file
// is applied in its own transaction together with its schema_migrations row, so a failing
// file leaves nothing behind and is retried at the next start. Instances starting at once
// serialize on a transaction-level advisory lock keyed by the schema, so each file runs
// exactly once. Applied files must never be edited; add a new one instead.
package pgmigrate

import (
	"context"
	"fmt"
	"io/fs"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Apply applies the *.sql files at the top level of fsys that schema_migrations does not
// list yet, and returns the first error. It is safe to call from several processes at once.
func Apply(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return apply(ctx, tx, name, string(body)) }); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, tx pgx.Tx, name, body string) error {
	// The lock is taken before creating schema_migrations too: concurrent CREATE TABLE IF
	// NOT EXISTS can still fail with a unique violation in pg_type.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('pgmigrate:' || current_schema(), 0))`); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    text PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var done bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, name).Scan(&done); err != nil {
		return fmt.Errorf("check applied: %w", err)
	}
	if done {
		return nil
	}
	// The simple protocol allows several statements in one file.
	if _, err := tx.Exec(ctx, body, pgx.QueryExecModeSimpleProtocol); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, name); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}
