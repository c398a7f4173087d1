package pgoutbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/outboxtest"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/pgtest"
)

func TestContract(t *testing.T) {
	outboxtest.Run(t, outboxtest.Harness{
		Owner: "users",
		New: func(t *testing.T) outboxtest.Fixture {
			pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
			ctx := context.Background()
			if err := pgoutbox.Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `CREATE TABLE aggregates (id text PRIMARY KEY, version bigint NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			return outboxtest.Fixture{
				NewStore: func() outbox.Store {
					s := pgoutbox.New(pool)
					t.Cleanup(s.Close)
					return s
				},
				// The state change locks the aggregate's row, as a real store does, so
				// commits of one aggregate serialize.
				Commit: func(ctx context.Context, evs ...events.Envelope) error {
					return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						last := evs[len(evs)-1]
						if _, err := tx.Exec(ctx, `INSERT INTO aggregates VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`, last.Subject, last.Sequence); err != nil {
							return err
						}
						return pgoutbox.Add(ctx, tx, evs...)
					})
				},
				WakesOnCommit: true,
				Footprint: func(ctx context.Context) (int, error) {
					var n int
					err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
					return n, err
				},
			}
		},
	})
}

// A table an earlier version drained holds rows marked published (published_at set). After
// the upgrade a drain hands out only the pending rows and deletes them; the rows marked
// published stay until Prune's retention removes them.
func TestDrainOnTableWithRowsMarkedPublished(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	typ := "polyshop.users.test_upgrade.v1"
	var evs []events.Envelope
	for seq := int64(1); seq <= 4; seq++ {
		e, err := events.New(ctx, typ, "u1", seq, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgoutbox.Add(ctx, tx, evs...) }); err != nil {
		t.Fatal(err)
	}
	// What the earlier drain left: the first two marked published.
	if _, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now() - interval '1 hour' WHERE id = ANY($1::uuid[])`,
		[]string{evs[0].ID, evs[1].ID}); err != nil {
		t.Fatal(err)
	}
	rows := func() []string {
		t.Helper()
		var ids []string
		r, err := pool.Query(ctx, `SELECT id::text FROM outbox ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id string
			if err := r.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	store := pgoutbox.New(pool)
	t.Cleanup(store.Close)
	var handed []string
	n, err := store.Drain(ctx, 10, func(_ context.Context, e events.Envelope) error {
		handed = append(handed, e.ID)
		return nil
	})
	steps := []struct {
		name      string
		got, want any
	}{
		{"drain count", []any{n, err}, []any{2, nil}},
		{"handed", handed, []string{evs[2].ID, evs[3].ID}},
		{"rows after drain", rows(), []string{evs[0].ID, evs[1].ID}},
	}
	if _, err := store.Prune(ctx, time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	steps = append(steps, struct {
		name      string
		got, want any
	}{"rows after prune", rows(), []string(nil)})
	for _, s := range steps {
		if diff := cmp.Diff(s.got, s.want); diff != "" {
			t.Errorf("%s (-got +want):\n%s", s.name, diff)
		}
	}
}

// Drains take turns: while one relay's drain is publishing, another relay's drain of the
// same outbox hands out nothing (it does not wait, and it cannot take a later event of an
// aggregate whose earlier one is being published); when the first has committed, the
// published rows are gone and nothing is handed out twice.
func TestDrainsTakeTurns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var evs []events.Envelope
	for seq := int64(1); seq <= 3; seq++ {
		e, err := events.New(ctx, "polyshop.users.test_turns.v1", "u1", seq, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	first, second := pgoutbox.New(pool), pgoutbox.New(pool)
	t.Cleanup(first.Close)
	t.Cleanup(second.Close)
	// Each store checks the table's shape on its first drain (DDL, which would wait for the
	// other's open transaction): let both do it on the empty table first.
	for _, s := range []*pgoutbox.Store{first, second} {
		if _, err := s.Drain(ctx, 10, func(context.Context, events.Envelope) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return pgoutbox.Add(ctx, tx, evs...) }); err != nil {
		t.Fatal(err)
	}
	publishing, release := make(chan struct{}), make(chan struct{})
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		once := false
		n, err := first.Drain(ctx, 10, func(context.Context, events.Envelope) error {
			if !once {
				once = true
				close(publishing)
				<-release
			}
			return nil
		})
		done <- result{n, err}
	}()
	<-publishing
	var handed []string
	publish := func(_ context.Context, e events.Envelope) error { handed = append(handed, e.ID); return nil }
	if n, err := second.Drain(ctx, 10, publish); n != 0 || err != nil || len(handed) != 0 {
		t.Errorf("second drain while the first publishes = %d, %v, handed %v; want 0, nil, nothing", n, err, handed)
	}
	close(release)
	if r := <-done; r.n != 3 || r.err != nil {
		t.Fatalf("first drain = %d, %v; want 3, nil", r.n, r.err)
	}
	if n, err := second.Drain(ctx, 10, publish); n != 0 || err != nil || len(handed) != 0 {
		t.Errorf("second drain after the first committed = %d, %v, handed %v; want 0, nil, nothing", n, err, handed)
	}
}
