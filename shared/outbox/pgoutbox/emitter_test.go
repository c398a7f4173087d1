package pgoutbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/events"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

// errCrash stands for the process dying at the crash point between commit and publish
// (crash points never fire inside a test binary; the hook panics instead).
var errCrash = errors.New("crash point: the process dies here")

// The Emitter against a real PostgreSQL schema and the test user's NATS stream: in outbox
// mode the change commits with its outbox row and nothing is published by the write path;
// in direct mode the change commits without an outbox row and the event is in the stream
// right after; a crash between the commit and the publish leaves the change committed and
// the event nowhere (lost); a failing change publishes nothing in either mode.
func TestEmitterModes(t *testing.T) {
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	ctx := context.Background()
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE things (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	nc := natstest.TestConn(t)
	stream, err := nc.JetStream().Stream(ctx, natstest.Stream(t, nc, "users"))
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		Committed, OutboxRows int
		Published             bool
		Err                   bool
	}
	cases := []struct {
		name  string
		mode  string
		crash bool
		fail  bool
		want  outcome
	}{
		{name: "outbox", mode: pgoutbox.ModeOutbox, want: outcome{Committed: 1, OutboxRows: 1}},
		{name: "direct", mode: pgoutbox.ModeDirect, want: outcome{Committed: 1, Published: true}},
		{name: "direct, crash before publish: lost", mode: pgoutbox.ModeDirect, crash: true, want: outcome{Committed: 1}},
		{name: "direct, failed change", mode: pgoutbox.ModeDirect, fail: true, want: outcome{Err: true}},
		{name: "outbox, failed change", mode: pgoutbox.ModeOutbox, fail: true, want: outcome{Err: true}},
		{name: "no mode set is outbox", want: outcome{Committed: 1, OutboxRows: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ := natstest.EventType(t, "users")
			ev, err := events.New(ctx, typ, typ, 1, map[string]string{"case": c.name})
			if err != nil {
				t.Fatal(err)
			}
			e := &pgoutbox.Emitter{Pub: natstest.Publisher{C: nc}}
			if c.mode != "" {
				e.Mode = pgoutbox.ModeOf(c.mode)
			}
			if c.crash {
				e.BeforePublish = func() { panic(errCrash) }
			}
			var got outcome
			func() {
				defer func() {
					if r := recover(); r != nil && r != errCrash {
						panic(r)
					}
				}()
				err = e.InTx(ctx, pool, func(tx pgx.Tx, add func(...events.Envelope) error) error {
					if _, err := tx.Exec(ctx, `INSERT INTO things VALUES ($1)`, typ); err != nil {
						return err
					}
					if err := add(ev); err != nil {
						return err
					}
					if c.fail {
						return errors.New("the change fails after its events were handed over")
					}
					return nil
				})
				got.Err = err != nil
			}()
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM things WHERE id = $1`, typ).Scan(&got.Committed); err != nil {
				t.Fatal(err)
			}
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE id = $1`, ev.ID).Scan(&got.OutboxRows); err != nil {
				t.Fatal(err)
			}
			msg, err := stream.GetLastMsgForSubject(ctx, natstest.Subject(typ))
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
			case err != nil:
				t.Fatal(err)
			default:
				got.Published = msg.Header.Get("Nats-Msg-Id") == ev.ID
			}
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
