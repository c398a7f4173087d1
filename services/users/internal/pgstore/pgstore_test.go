package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/users/internal/pgstore"
	"polyshop/services/users/internal/users"
	"polyshop/shared/chaos"
	"polyshop/shared/events"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

func newStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	// Applying twice is a no-op.
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	return pgstore.New(pool), pool
}

func newUser(t *testing.T, email string) (users.User, events.Envelope) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := users.User{ID: uuid.Must(uuid.NewV7()).String(), Email: email, Name: "Ann", Role: users.RoleCustomer,
		PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA", CreatedAt: now, UpdatedAt: now, Version: 1}
	ev, err := events.New(context.Background(), events.TypeUserRegistered, u.ID, 1,
		events.UserRegistered{UserID: u.ID, Email: email, Name: "Ann", Role: "customer", RegisteredAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return u, ev
}

type outboxRow struct {
	ID, Aggregate, Type string
}

func outboxRows(t *testing.T, pool *pgxpool.Pool) []outboxRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id::text, aggregate, type FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.Aggregate, &r.Type); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestCreateGet(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	u, ev := newUser(t, "ann@example.com")
	if err := s.Create(ctx, u, ev); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, u); diff != "" {
		t.Errorf("Get (-got +want):\n%s", diff)
	}
	got, err = s.GetByEmail(ctx, "ANN@example.com")
	if err != nil || got.ID != u.ID {
		t.Errorf("GetByEmail case-insensitive = %v, %v; want %s", got.ID, err, u.ID)
	}
	if _, err := s.Get(ctx, uuid.NewString()); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("Get unknown = %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff(outboxRows(t, pool), []outboxRow{{ev.ID, u.ID, events.TypeUserRegistered}}); diff != "" {
		t.Errorf("outbox (-got +want):\n%s", diff)
	}
}

func TestCreateDuplicateEmailWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	u, ev := newUser(t, "ann@example.com")
	if err := s.Create(ctx, u, ev); err != nil {
		t.Fatal(err)
	}
	dup, dupEv := newUser(t, "Ann@Example.com")
	if err := s.Create(ctx, dup, dupEv); !errors.Is(err, users.ErrEmailTaken) {
		t.Fatalf("Create duplicate = %v, want ErrEmailTaken", err)
	}
	if _, err := s.Get(ctx, dup.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("duplicate row exists: %v", err)
	}
	if got := len(outboxRows(t, pool)); got != 1 {
		t.Errorf("outbox has %d rows, want only the first user's event", got)
	}
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	u, ev := newUser(t, "ann@example.com")
	if err := s.Create(ctx, u, ev); err != nil {
		t.Fatal(err)
	}
	addr := users.Address{Street: "1 Main St", City: "Berlin", PostalCode: "10115", Country: "DE"}
	var changed events.Envelope
	got, err := s.Update(ctx, u.ID, func(u *users.User) ([]events.Envelope, error) {
		u.Address = &addr
		u.Version++
		var err error
		changed, err = events.New(ctx, events.TypeUserAddressChanged, u.ID, u.Version,
			events.UserAddressChanged{UserID: u.ID, Address: addr, ChangedAt: time.Now()})
		return []events.Envelope{changed}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.Get(ctx, u.ID)
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Errorf("stored vs returned (-stored +returned):\n%s", diff)
	}
	if stored.Version != 2 || stored.Address == nil || *stored.Address != addr {
		t.Errorf("stored = %+v, want version 2 with the address", stored)
	}

	t.Run("failing closure writes nothing", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.Update(ctx, u.ID, func(u *users.User) ([]events.Envelope, error) {
			u.Name = "changed"
			return nil, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v, want boom", err)
		}
		after, _ := s.Get(ctx, u.ID)
		if after.Name != "Ann" {
			t.Errorf("name = %q after failed update", after.Name)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		_, err := s.Update(ctx, uuid.NewString(), func(*users.User) ([]events.Envelope, error) { return nil, nil })
		if !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Update unknown = %v, want ErrNotFound", err)
		}
	})
	want := []outboxRow{{ev.ID, u.ID, events.TypeUserRegistered}, {changed.ID, u.ID, events.TypeUserAddressChanged}}
	if diff := cmp.Diff(outboxRows(t, pool), want); diff != "" {
		t.Errorf("outbox (-got +want):\n%s", diff)
	}
}

func TestDeletedUserFreesEmail(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	u, ev := newUser(t, "ann@example.com")
	if err := s.Create(ctx, u, ev); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(ctx, u.ID, func(u *users.User) ([]events.Envelope, error) {
		now := time.Now().UTC()
		u.Email, u.Name, u.PasswordHash, u.DeletedAt = "", "", "", &now
		u.Version++
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("Get deleted = %v, want ErrNotFound", err)
	}
	if _, err := s.GetByEmail(ctx, "ann@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetByEmail deleted = %v, want ErrNotFound", err)
	}
	again, ev2 := newUser(t, "ann@example.com")
	if err := s.Create(ctx, again, ev2); err != nil {
		t.Errorf("re-sign-up with a deleted account's email = %v, want success", err)
	}
	// The deleted row can still be locked and seen by Update (for an idempotent delete).
	_, err = s.Update(ctx, u.ID, func(u *users.User) ([]events.Envelope, error) {
		if !u.Deleted() || u.Email != "" {
			t.Errorf("Update sees %+v, want the scrubbed deleted row", u)
		}
		return nil, nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestConcurrentUpdatesSerialize(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	u, ev := newUser(t, "ann@example.com")
	if err := s.Create(ctx, u, ev); err != nil {
		t.Fatal(err)
	}
	const n = 10
	errc := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Update(ctx, u.ID, func(u *users.User) ([]events.Envelope, error) {
				u.Version++
				return nil, nil
			})
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Get(ctx, u.ID)
	if got.Version != 1+n {
		t.Errorf("version = %d after %d concurrent increments, want %d", got.Version, n, 1+n)
	}
}

// errCrash stands for the process dying at users.direct.before_publish (crash points never
// fire in a test binary; the hook panics instead).
var errCrash = errors.New("crash point users.direct.before_publish")

// The pattern switch users.publish on the real store: outbox mode writes the outbox row in
// the user's transaction; direct mode commits the user without one and publishes itself
// (here into the tests' NATS namespace); a crash between that commit and the publish
// leaves the user registered and users.registered nowhere — the lost event of lab 02.
func TestPublishModes(t *testing.T) {
	nc := natstest.TestConn(t)
	ctx := context.Background()
	stream, err := nc.JetStream().Stream(ctx, natstest.Stream(t, nc, "users"))
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		UserStored bool
		OutboxRows int
		Published  bool
	}
	cases := []struct {
		name  string
		mode  string
		crash bool
		want  outcome
	}{
		{"outbox", chaos.PublishOutbox, false, outcome{UserStored: true, OutboxRows: 1}},
		{"direct", chaos.PublishDirect, false, outcome{UserStored: true, Published: true}},
		{"direct, crash between commit and publish", chaos.PublishDirect, true, outcome{UserStored: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plain, pool := newStore(t)
			e := &pgoutbox.Emitter{Mode: pgoutbox.ModeOf(c.mode), Pub: natstest.Publisher{C: nc}}
			if c.crash {
				e.BeforePublish = func() { panic(errCrash) }
			}
			s := plain.WithEmitter(e)
			u, ev := newUser(t, testenv.UniqueName(t, "pub")+"@example.com")
			func() {
				defer func() {
					if r := recover(); r != nil && r != errCrash {
						panic(r)
					}
				}()
				if err := s.Create(ctx, u, ev); err != nil {
					t.Fatal(err)
				}
			}()
			var got outcome
			_, err := plain.Get(ctx, u.ID)
			got.UserStored = err == nil
			got.OutboxRows = len(outboxRows(t, pool))
			msg, err := stream.GetLastMsgForSubject(ctx, natstest.Subject(events.TypeUserRegistered))
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.Fatal(err)
			}
			got.Published = err == nil && msg.Header.Get("Nats-Msg-Id") == ev.ID
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
