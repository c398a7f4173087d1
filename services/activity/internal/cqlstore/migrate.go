package cqlstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
)

// Lease settings of the migration lock.
const (
	lockName = "migrate"
	// lockTTL bounds how long a crashed migrator blocks the others; applying the files takes
	// seconds, so a live migrator never outlives it.
	lockTTL = 120 * time.Second
)

// Migrate applies the *.cql files of fsys that schema_migrations does not list yet, in
// file-name order, and records each.
//
// Cassandra DDL is not transactional, and two nodes creating the same table at once can
// disagree on its schema id (Cassandra before 5.1 has no cluster-wide schema lock). So:
//
//  1. The two bookkeeping tables are created with IF NOT EXISTS, and then Migrate waits for
//     schema agreement (every node on the same schema version). Only the very first start of
//     a fresh keyspace can race here, on two tiny identical tables.
//  2. A lease is taken with a lightweight transaction (INSERT … IF NOT EXISTS USING TTL) in
//     schema_lock, so concurrent starts apply the files one after another: the others wait
//     for the lease, then find the files recorded and skip them.
//  3. Each statement is idempotent (IF NOT EXISTS), and after each one Migrate waits for
//     schema agreement before the next, so a crash between a statement and the file's
//     record only means the file runs again, harmlessly.
//
// A recorded file whose checksum changed is an error: applied files must not be edited.
func Migrate(ctx context.Context, s *gocql.Session, fsys fs.FS, log *slog.Logger) error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, checksum text, applied_at timestamp)`,
		`CREATE TABLE IF NOT EXISTS schema_lock (name text PRIMARY KEY, owner text, acquired_at timestamp)`,
	} {
		if err := s.Query(stmt).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("migrate: bookkeeping table: %w", err)
		}
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("migrate: schema agreement: %w", err)
	}
	owner := uuid.NewString()
	if err := acquire(ctx, s, owner, log); err != nil {
		return err
	}
	defer func() {
		// Released with a fresh context: a cancelled start must not keep others waiting
		// for the TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var got string
		if _, err := s.Query(`DELETE FROM schema_lock WHERE name = ? IF owner = ?`, lockName, owner).
			WithContext(rctx).ScanCAS(&got); err != nil {
			log.WarnContext(ctx, "migrate: release lock (it expires by itself)", "err", err)
		}
	}()

	applied := map[string]string{}
	iter := s.Query(`SELECT version, checksum FROM schema_migrations`).WithContext(ctx).Iter()
	var version, sum string
	for iter.Scan(&version, &sum) {
		applied[version] = sum
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}

	names, err := fs.Glob(fsys, "*.cql")
	if err != nil {
		return fmt.Errorf("migrate: list files: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("migrate: read %s: %w", name, err)
		}
		h := sha256.Sum256(body)
		checksum := hex.EncodeToString(h[:])
		version := strings.TrimSuffix(path.Base(name), ".cql")
		if prev, ok := applied[version]; ok {
			if prev != checksum {
				return fmt.Errorf("migrate: %s was changed after it was applied (checksum %s, recorded %s); add a new file instead", name, checksum[:12], prev[:min(12, len(prev))])
			}
			continue
		}
		for i, stmt := range Statements(string(body)) {
			if err := s.Query(stmt).WithContext(ctx).Exec(); err != nil {
				return fmt.Errorf("migrate: %s statement %d: %w", name, i+1, err)
			}
			if err := s.AwaitSchemaAgreement(ctx); err != nil {
				return fmt.Errorf("migrate: %s statement %d: schema agreement: %w", name, i+1, err)
			}
		}
		if err := s.Query(`INSERT INTO schema_migrations (version, checksum, applied_at) VALUES (?, ?, ?)`,
			version, checksum, time.Now()).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("migrate: record %s: %w", name, err)
		}
		log.InfoContext(ctx, "migration applied", "version", version)
	}
	return nil
}

func acquire(ctx context.Context, s *gocql.Session, owner string, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		// MapScanCAS: when the insert is not applied, Cassandra returns the existing row's
		// columns in its own order.
		existing := map[string]any{}
		applied, err := s.Query(`INSERT INTO schema_lock (name, owner, acquired_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL `+
			fmt.Sprint(int(lockTTL.Seconds())), lockName, owner, time.Now()).
			WithContext(ctx).MapScanCAS(existing)
		if err != nil {
			return fmt.Errorf("migrate: take lock: %w", err)
		}
		if applied {
			return nil
		}
		if attempt == 1 {
			log.InfoContext(ctx, "migrate: waiting for another instance's schema lock", "holder", existing["owner"], "since", existing["acquired_at"])
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migrate: waiting for schema lock held by %v: %w", existing["owner"], ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Statements splits a CQL file into statements: lines starting with "--" (after spaces)
// are dropped, and a statement ends with a line ending in ";". Semicolons inside a line
// (such as in a string literal) are left alone.
func Statements(body string) []string {
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
		if strings.HasSuffix(line, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}
