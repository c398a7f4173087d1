package pgchaos_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/chaos"
	"polyshop/shared/chaos/pgchaos"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/pgtest"
)

func TestStoreRoundTripAndConcurrentUpdates(t *testing.T) {
	pool, _ := pgtest.Schema(t, "ORDERS_DATABASE_URL")
	ctx := context.Background()
	s, err := pgchaos.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgchaos.New(ctx, pool); err != nil { // a second instance starting
		t.Fatal(err)
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, chaos.State{}); diff != "" {
		t.Errorf("fresh state (-got +want):\n%s", diff)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(ctx, func(st *chaos.State) {
				if st.Fired == nil {
					st.Fired = map[string]int64{}
				}
				st.Fired["orders.relay.after_publish"]++
				st.CrashPoints = map[string]float64{"orders.consumer.before_ack": 0.5}
				st.Duplicates = 3
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := chaos.State{CrashPoints: map[string]float64{"orders.consumer.before_ack": 0.5}, Duplicates: 3,
		Fired: map[string]int64{"orders.relay.after_publish": 20}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("after 20 concurrent updates (-got +want):\n%s", diff)
	}
}

func TestOutboxStats(t *testing.T) {
	pool, _ := pgtest.Schema(t, "ORDERS_DATABASE_URL")
	ctx := context.Background()
	if err := pgoutbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	stats := pgchaos.OutboxStats(pool)
	st, err := stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, chaos.OutboxStats{}); diff != "" {
		t.Errorf("empty outbox (-got +want):\n%s", diff)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (id, aggregate, type, envelope, created_at) VALUES
		(gen_random_uuid(), 'a', 't', '{}', now() - interval '1 hour'),
		(gen_random_uuid(), 'a', 't', '{}', now()),
		(gen_random_uuid(), 'b', 't', '{}', now() - interval '2 hours')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE aggregate = 'b'`); err != nil {
		t.Fatal(err)
	}
	st, err = stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 2 || st.OldestPendingAt == nil || st.OldestPendingAgeSeconds < 3500 || st.OldestPendingAgeSeconds > 3700 {
		t.Errorf("stats %+v, want 2 pending, the oldest about an hour old (the published one left out)", st)
	}
}

// A pattern switch is stored in the service's database: a new store object and Switches
// on the same schema (a restart) read it back.
func TestPatternSurvivesRestart(t *testing.T) {
	pool, _ := pgtest.Schema(t, "ORDERS_DATABASE_URL")
	ctx := context.Background()
	getenv := func(string) string { return "" }
	s1, err := pgchaos.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := chaos.New(ctx, "orders", getenv, s1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Set(ctx, chaos.Patch{Patterns: map[string]string{chaos.PatternOrdersAddressCopy: chaos.CopySync}}); err != nil {
		t.Fatal(err)
	}
	s2, err := pgchaos.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	again, err := chaos.New(ctx, "orders", getenv, s2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Pattern(chaos.PatternOrdersAddressCopy); got != chaos.CopySync {
		t.Errorf("after a restart %q, want sync", got)
	}
	if _, err := again.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s1.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Patterns != nil {
		t.Errorf("stored patterns after Clear %v, want none", st.Patterns)
	}
}
