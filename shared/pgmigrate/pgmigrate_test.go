package pgmigrate_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/shared/pgmigrate"
	"polyshop/shared/testenv/pgtest"
)

func applied(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestApply(t *testing.T) {
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	ctx := context.Background()
	fsys := fstest.MapFS{
		"0002_items.sql": {Data: []byte(`CREATE TABLE items (id int PRIMARY KEY, owner int REFERENCES owners(id));
INSERT INTO items VALUES (1, 1);`)},
		"0001_owners.sql": {Data: []byte(`CREATE TABLE owners (id int PRIMARY KEY); INSERT INTO owners VALUES (1);`)},
		"README.md":       {Data: []byte(`not a migration`)},
	}
	// Several starts at once: each file must run exactly once (a second run would fail on
	// CREATE TABLE / duplicate INSERT).
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pgmigrate.Apply(ctx, pool, fsys)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply #%d: %v", i, err)
		}
	}
	got := applied(t, ctx, pool)
	if diff := cmp.Diff(got, []string{"0001_owners.sql", "0002_items.sql"}); diff != "" {
		t.Errorf("schema_migrations (-got +want):\n%s", diff)
	}

	// A failing file rolls back entirely and stops; earlier files stay applied.
	fsys["0003_bad.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE bad (id int); SELECT no_such_column FROM owners;`)}
	fsys["0004_after.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE after (id int);`)}
	if err := pgmigrate.Apply(ctx, pool, fsys); err == nil {
		t.Fatal("Apply with a broken migration succeeded")
	}
	var bad bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('bad') IS NOT NULL`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad {
		t.Error("table from the failed migration exists")
	}
	if diff := cmp.Diff(applied(t, ctx, pool), []string{"0001_owners.sql", "0002_items.sql"}); diff != "" {
		t.Errorf("after failure (-got +want):\n%s", diff)
	}

	// Fixed: the rest applies.
	fsys["0003_bad.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE bad (id int);`)}
	if err := pgmigrate.Apply(ctx, pool, fsys); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(applied(t, ctx, pool), []string{"0001_owners.sql", "0002_items.sql", "0003_bad.sql", "0004_after.sql"}); diff != "" {
		t.Errorf("after fix (-got +want):\n%s", diff)
	}
}
