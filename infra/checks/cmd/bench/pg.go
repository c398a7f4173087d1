package main

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgEngine: PostgreSQL through pgx/v5. One table per kind of record; B-tree indexes on the
// key, on (partition, seq) for the feed and on category; a GIN index on a generated
// tsvector for full text. Every workload is one SQL statement (the conditional update two:
// read, then UPDATE ... WHERE version = $read).
type pgEngine struct{ pool *pgxpool.Pool }

func newPG(ctx context.Context, url string, conns int) (*pgEngine, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &pgEngine{pool}, nil
}

func (e *pgEngine) Name() string { return "PostgreSQL" }
func (e *pgEngine) Close()       { e.pool.Close() }

func (e *pgEngine) Version(ctx context.Context) (string, error) {
	var v string
	err := e.pool.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return "PostgreSQL " + v, err
}

func (e *pgEngine) Load(ctx context.Context, d *Dataset) error {
	_, err := e.pool.Exec(ctx, `
DROP TABLE IF EXISTS items, events, counters;
CREATE TABLE items (
	id text PRIMARY KEY, category text NOT NULL, name text NOT NULL, description text NOT NULL,
	price int NOT NULL, version int NOT NULL DEFAULT 0,
	tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', description)) STORED);
CREATE INDEX items_category ON items (category);
CREATE INDEX items_tsv ON items USING gin (tsv);
CREATE TABLE events (partition text, seq bigint, kind text NOT NULL, payload text NOT NULL,
	PRIMARY KEY (partition, seq));
CREATE TABLE counters (id text PRIMARY KEY, n bigint NOT NULL);`)
	if err != nil {
		return err
	}
	rows := make([][]any, len(d.Items))
	for i, it := range d.Items {
		rows[i] = []any{it.ID, it.Category, it.Name, it.Description, it.Price}
	}
	if _, err := e.pool.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "category", "name", "description", "price"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	var events [][]any
	_ = d.Events(func(_ string, es []Event) error {
		for _, ev := range es {
			events = append(events, []any{ev.Partition, ev.Seq, ev.Kind, ev.Payload})
		}
		return nil
	})
	if _, err := e.pool.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"partition", "seq", "kind", "payload"}, pgx.CopyFromRows(events)); err != nil {
		return err
	}
	counters := make([][]any, 0, d.Counters)
	for _, id := range d.CounterIDs() {
		counters = append(counters, []any{id, 0})
	}
	if _, err := e.pool.CopyFrom(ctx, pgx.Identifier{"counters"}, []string{"id", "n"}, pgx.CopyFromRows(counters)); err != nil {
		return err
	}
	for _, t := range []string{"items", "events", "counters"} {
		if _, err := e.pool.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			return err
		}
	}
	return nil
}

func (e *pgEngine) PointRead(ctx context.Context, id string) error {
	var it Item
	return e.pool.QueryRow(ctx, "SELECT id, category, name, description, price FROM items WHERE id = $1", id).
		Scan(&it.ID, &it.Category, &it.Name, &it.Description, &it.Price)
}

func (e *pgEngine) BatchRead(ctx context.Context, ids []string) error {
	rows, _ := e.pool.Query(ctx, "SELECT id, category, name, description, price FROM items WHERE id = ANY($1)", ids)
	n, err := countRows(rows)
	if err != nil {
		return err
	}
	return expect("batch", n, distinct(ids))
}

func (e *pgEngine) NewestPage(ctx context.Context, partition string) error {
	rows, _ := e.pool.Query(ctx, "SELECT seq, kind, payload FROM events WHERE partition = $1 ORDER BY seq DESC LIMIT 20", partition)
	n, err := countRows(rows)
	if err != nil {
		return err
	}
	return expect("page", n, 20)
}

func (e *pgEngine) BySecondary(ctx context.Context, category string) error {
	rows, _ := e.pool.Query(ctx, "SELECT id, name, price FROM items WHERE category = $1 LIMIT 20", category)
	n, err := countRows(rows)
	if err != nil {
		return err
	}
	return expect("secondary", n, 20)
}

func (e *pgEngine) Insert(ctx context.Context, ev Event) error {
	_, err := e.pool.Exec(ctx, "INSERT INTO events (partition, seq, kind, payload) VALUES ($1, $2, $3, $4)",
		ev.Partition, ev.Seq, ev.Kind, ev.Payload)
	return err
}

func (e *pgEngine) ConditionalUpdate(ctx context.Context, id string) error {
	var price, version int
	if err := e.pool.QueryRow(ctx, "SELECT price, version FROM items WHERE id = $1", id).Scan(&price, &version); err != nil {
		return err
	}
	tag, err := e.pool.Exec(ctx, "UPDATE items SET price = $2, version = version + 1 WHERE id = $1 AND version = $3",
		id, price+1, version)
	if err == nil && tag.RowsAffected() == 0 {
		return errConflict
	}
	return err
}

func (e *pgEngine) Increment(ctx context.Context, counter string) error {
	_, err := e.pool.Exec(ctx, "UPDATE counters SET n = n + 1 WHERE id = $1", counter)
	return err
}

func (e *pgEngine) FullText(ctx context.Context, word string) error {
	rows, _ := e.pool.Query(ctx, "SELECT id, name FROM items WHERE tsv @@ to_tsquery('simple', $1) LIMIT 20", word)
	n, err := countRows(rows)
	if err != nil {
		return err
	}
	return expect("full text", n, 20)
}

func (e *pgEngine) GroupBy(ctx context.Context) error {
	rows, _ := e.pool.Query(ctx, "SELECT category, count(*), sum(price) FROM items GROUP BY category")
	n, err := countRows(rows)
	if err != nil {
		return err
	}
	return expect("groups", n, 20)
}

// countRows reads every row and returns how many there were.
func countRows(rows pgx.Rows) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// distinct is the number of different keys in ids (a batch of random keys may repeat one).
func distinct(ids []string) int {
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		seen[id] = struct{}{}
	}
	return len(seen)
}

var _ Engine = (*pgEngine)(nil)
