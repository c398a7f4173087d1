package pgoutbox_test

import (
	"context"
	"testing"

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
