package cqlstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/activity/internal/activity"
	"polyshop/services/activity/internal/activity/activitytest"
	"polyshop/services/activity/internal/cqlstore"
	"polyshop/services/activity/internal/cqlstore/cqltest"
	"polyshop/services/activity/migrations"
	"polyshop/shared/events"
)

func newService(t *testing.T, st activity.Store) *activity.Service {
	t.Helper()
	return activity.NewService(st, cqltest.Logger(), activity.Options{})
}

func apply(t *testing.T, svc *activity.Service, envs ...events.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := svc.Apply(context.Background(), e); err != nil {
			t.Fatalf("apply %s %s: %v", e.Type, e.ID, err)
		}
	}
}

// rawCount counts rows of a user's partition directly, bypassing the paging code.
func rawCount(t *testing.T, st *cqlstore.Store, userID string, bucket int) int {
	t.Helper()
	var n int
	if err := st.Session().Query(`SELECT COUNT(*) FROM user_feed WHERE user_id = ? AND bucket = ?`, userID, bucket).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// readAll pages through the whole feed with the given limit and returns every item and the
// number of pages.
func readAll(t *testing.T, svc *activity.Service, userID string, limit string) ([]activity.Entry, int) {
	t.Helper()
	var all []activity.Entry
	cursor := ""
	for pages := 1; ; pages++ {
		p, err := svc.UserFeed(context.Background(), userID, limit, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			return all, pages
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		cursor = p.Next
	}
}

func entryOf(e events.Envelope, summary string) activity.Entry {
	return activity.Entry{EventID: e.ID, Type: e.Type, Subject: e.Subject, Summary: summary, OccurredAt: e.Time.Truncate(time.Millisecond)}
}

func TestDuplicateDeliveryWritesOneRow(t *testing.T) {
	st := cqltest.Store(t)
	svc := newService(t, st)
	uid := activitytest.ID(t)
	at := time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC)
	e := activitytest.SessionStarted(t, uid, at)

	// Sequential and concurrent redeliveries of the same event.
	apply(t, svc, e, e)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := svc.Apply(context.Background(), e); err != nil {
				t.Errorf("concurrent apply: %v", err)
			}
		})
	}
	wg.Wait()

	if n := rawCount(t, st, uid, 202610); n != 1 {
		t.Errorf("rows in partition = %d, want 1", n)
	}
	got, _ := readAll(t, svc, uid, "")
	if diff := cmp.Diff(got, []activity.Entry{entryOf(e, "Signed in")}); diff != "" {
		t.Errorf("feed (-got +want):\n%s", diff)
	}
}

func TestPagingAcrossBuckets(t *testing.T) {
	st := cqltest.Store(t)
	svc := newService(t, st)
	uid := activitytest.ID(t)

	// 4 months with a gap (no September), month boundaries to the millisecond, and several
	// events in one millisecond (ordered by event id).
	var envs []events.Envelope
	var want []activity.Entry
	add := func(e events.Envelope, summary string) {
		envs = append(envs, e)
		want = append(want, entryOf(e, summary))
	}
	add(activitytest.UserRegistered(t, uid, time.Date(2026, 7, 31, 23, 59, 59, 999e6, time.UTC)), "Account created")
	for d := 1; d <= 5; d++ {
		add(activitytest.SessionStarted(t, uid, time.Date(2026, 8, d, 8, 0, 0, 0, time.UTC)), "Signed in")
	}
	add(activitytest.UserAddressChanged(t, uid, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)), "Address changed (Berlin, DE)")
	tie := time.Date(2026, 10, 15, 9, 30, 0, 250e6, time.UTC)
	for range 4 {
		add(activitytest.SessionStarted(t, uid, tie), "Signed in")
	}
	for d := 1; d <= 6; d++ {
		add(activitytest.SessionStarted(t, uid, time.Date(2026, 11, d, 18, 0, 0, 0, time.UTC)), "Signed in")
	}
	slices.SortFunc(want, func(a, b activity.Entry) int {
		if activity.Less(a, b) {
			return -1
		}
		return 1
	})
	// Arrival order does not matter: apply shuffled.
	rand.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
	apply(t, svc, envs...)

	for _, limit := range []string{"1", "3", "4", "5", "16", "17", "100"} {
		t.Run("limit="+limit, func(t *testing.T) {
			got, pages := readAll(t, svc, uid, limit)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("all pages (-got +want):\n%s", diff)
			}
			n, _ := activity.ParseLimit(limit)
			if wantPages := max(1, (len(want)+n-1)/n); pages != wantPages {
				t.Errorf("pages = %d, want %d (the last page must carry no cursor)", pages, wantPages)
			}
		})
	}
}

func TestUserWithoutEntries(t *testing.T) {
	svc := newService(t, cqltest.Store(t))
	p, err := svc.UserFeed(context.Background(), activitytest.ID(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, activity.Page{Items: []activity.Entry{}}); diff != "" {
		t.Errorf("page (-got +want):\n%s", diff)
	}
}

func TestDeletionErasesAndLaterEventsDoNotResurrect(t *testing.T) {
	st := cqltest.Store(t)
	svc := newService(t, st)
	uid, other := activitytest.ID(t), activitytest.ID(t)
	months := []time.Time{
		time.Date(2026, 8, 10, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC),
	}
	for _, m := range months {
		apply(t, svc, activitytest.SessionStarted(t, uid, m), activitytest.SessionStarted(t, other, m))
	}
	del := activitytest.UserDeleted(t, uid, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	apply(t, svc, del)

	assertGone := func(t *testing.T) {
		t.Helper()
		if got, _ := readAll(t, svc, uid, "5"); len(got) != 0 {
			t.Errorf("feed after deletion has %d items, want 0", len(got))
		}
		for _, m := range append(months, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			if n := rawCount(t, st, uid, activity.BucketOf(m)); n != 0 {
				t.Errorf("bucket %d still holds %d rows", activity.BucketOf(m), n)
			}
		}
	}
	assertGone(t)

	// A redelivered deletion, then late events of the user: an older one, one after the
	// deletion in a new month, and a duplicate of an erased one.
	apply(t, svc, del,
		activitytest.UserAddressChanged(t, uid, months[0].Add(time.Hour)),
		activitytest.SessionStarted(t, uid, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
	)
	assertGone(t)

	// The other user is untouched.
	if got, _ := readAll(t, svc, other, ""); len(got) != len(months) {
		t.Errorf("other user's feed has %d items, want %d", len(got), len(months))
	}
}

// bucketRows counts the user's bucket-list rows directly.
func bucketRows(t *testing.T, st *cqlstore.Store, userID string) int {
	t.Helper()
	var n int
	if err := st.Session().Query(`SELECT COUNT(*) FROM user_buckets WHERE user_id = ?`, userID).Scan(&n); err != nil {
		t.Fatalf("count buckets: %v", err)
	}
	return n
}

// TestLateEventsAfterDeletionDoNotResurrect applies a deletion through one service
// instance and late events of the user through either the same instance (which remembers
// the deletion and drops them unwritten) or a second instance with its own store and
// caches, which never saw the deletion: it writes, finds the tombstone after the write and
// must erase again, including when it had recorded the user's bucket-list row before the
// deletion (so its write skips that row). The feed must stay empty in every case, late
// events handled one by one or eight at once.
func TestLateEventsAfterDeletionDoNotResurrect(t *testing.T) {
	nov := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	dec := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		sameAsDel  bool // late events through the instance that handled the deletion
		warmBucket bool // the late instance wrote the user's November entry before the deletion
		concurrent bool
	}{
		{name: "same instance", sameAsDel: true},
		{name: "other instance", sameAsDel: false},
		{name: "other instance, bucket row cached", warmBucket: true},
		{name: "other instance, bucket row cached, concurrent", warmBucket: true, concurrent: true},
		{name: "same instance, concurrent", sameAsDel: true, concurrent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stA, stB := cqltest.Store(t), cqltest.Store(t)
			a, b := newService(t, stA), newService(t, stB)
			late := b
			if tc.sameAsDel {
				late = a
			}
			uid := activitytest.ID(t)
			first := activitytest.SessionStarted(t, uid, nov)
			if tc.warmBucket {
				apply(t, b, first)
			} else {
				apply(t, a, first)
			}
			apply(t, a, activitytest.UserDeleted(t, uid, nov.Add(48*time.Hour)))

			envs := []events.Envelope{
				first, // redelivered
				activitytest.UserAddressChanged(t, uid, nov.Add(time.Hour)),    // older, same month
				activitytest.SessionStarted(t, uid, nov.Add(72*time.Hour)),     // after the deletion
				activitytest.SessionStarted(t, uid, dec),                       // a month never written
				activitytest.UserAddressChanged(t, uid, dec.Add(time.Minute)),  // the same month again
				activitytest.SessionStarted(t, uid, nov.Add(-40*24*time.Hour)), // an older month
			}
			if tc.concurrent {
				var wg sync.WaitGroup
				errs := make([]error, len(envs))
				for i, e := range envs {
					wg.Go(func() { errs[i] = late.Apply(context.Background(), e) })
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("apply: %v", err)
				}
			} else {
				apply(t, late, envs...)
			}

			if got, _ := readAll(t, late, uid, "5"); len(got) != 0 {
				t.Errorf("feed after late events has %d items, want 0: %v", len(got), got)
			}
			for _, at := range []time.Time{nov, dec, nov.Add(-40 * 24 * time.Hour)} {
				if n := rawCount(t, stA, uid, activity.BucketOf(at)); n != 0 {
					t.Errorf("bucket %d holds %d rows, want 0", activity.BucketOf(at), n)
				}
			}
			if n := bucketRows(t, stA, uid); n != 0 {
				t.Errorf("user_buckets holds %d rows, want 0", n)
			}
		})
	}
}

// racingStore runs a deletion of the user right between the projection's first tombstone
// check and its write: the interleaving that a check-before-write alone gets wrong.
type racingStore struct {
	activity.Store
	once   sync.Once
	delete func() error
}

func (r *racingStore) PutUserEntry(ctx context.Context, userID string, e activity.Entry) error {
	var err error
	r.once.Do(func() { err = r.delete() })
	if err != nil {
		return err
	}
	return r.Store.PutUserEntry(ctx, userID, e)
}

func TestDeletionRacingAnEventStillErases(t *testing.T) {
	st := cqltest.Store(t)
	plain := newService(t, st)
	uid := activitytest.ID(t)
	at := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	rs := &racingStore{Store: st, delete: func() error {
		return plain.Apply(context.Background(), activitytest.UserDeleted(t, uid, at))
	}}
	racing := newService(t, rs)
	apply(t, racing, activitytest.SessionStarted(t, uid, at.Add(time.Minute)))

	if n := rawCount(t, st, uid, 202611); n != 0 {
		t.Errorf("the racing event left %d rows, want 0", n)
	}
	deleted, err := st.UserDeleted(context.Background(), uid)
	if err != nil || !deleted {
		t.Errorf("UserDeleted = %v, %v; want true", deleted, err)
	}
}

func TestRecentGlobal(t *testing.T) {
	st := cqltest.Store(t)
	// A random day far in the future, so that no other test or running service writes to
	// the same global buckets.
	day := time.Date(2100+rand.IntN(900), time.Month(1+rand.IntN(12)), 1+rand.IntN(28), 12, 0, 0, 0, time.UTC)
	svc := activity.NewService(st, cqltest.Logger(), activity.Options{Now: func() time.Time { return day }, RecentDays: 3})

	var want []activity.Entry
	for i, at := range []time.Time{
		day.Add(-1 * time.Hour), day.Add(-2 * time.Hour), day.Add(-2*time.Hour + time.Millisecond),
		day.AddDate(0, 0, -1), day.AddDate(0, 0, -2).Add(time.Hour),
	} {
		e := activitytest.ProductCreated(t, "P"+string(rune('A'+i)), at)
		apply(t, svc, e, e)
		want = append(want, entryOf(e, "New product: P"+string(rune('A'+i))+" (test) at 12.99 EUR"))
	}
	// Out of the 3-day window: never returned.
	apply(t, svc, activitytest.ProductCreated(t, "old", day.AddDate(0, 0, -3)))
	slices.SortFunc(want, func(a, b activity.Entry) int {
		if activity.Less(a, b) {
			return -1
		}
		return 1
	})

	for _, tc := range []struct {
		limit string
		want  []activity.Entry
	}{{"", want}, {"2", want[:2]}, {"4", want[:4]}} {
		p, err := svc.Recent(context.Background(), tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p.Items, tc.want); diff != "" {
			t.Errorf("limit %q (-got +want):\n%s", tc.limit, diff)
		}
	}
}

func TestMigrateConcurrentStarts(t *testing.T) {
	stores := []*cqlstore.Store{cqltest.Store(t), cqltest.Store(t), cqltest.Store(t)}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, st := range stores {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs[i] = cqlstore.Migrate(ctx, st.Session(), migrations.FS, cqltest.Logger())
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	var n int
	if err := stores[0].Session().Query(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	files, _ := migrations.FS.ReadDir(".")
	cql := 0
	for _, f := range files {
		if len(f.Name()) > 4 && f.Name()[len(f.Name())-4:] == ".cql" {
			cql++
		}
	}
	if n != cql {
		t.Errorf("schema_migrations has %d rows, want %d (one per file)", n, cql)
	}
}

func TestStatements(t *testing.T) {
	got := cqlstore.Statements("-- comment\nCREATE TABLE a (\n  x int PRIMARY KEY\n) WITH comment = 'a;b';\n\n  -- another\nCREATE TABLE b (y int PRIMARY KEY);\nDROP TABLE c")
	want := []string{
		"CREATE TABLE a (\n  x int PRIMARY KEY\n) WITH comment = 'a;b'",
		"CREATE TABLE b (y int PRIMARY KEY)",
		"DROP TABLE c",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Statements (-got +want):\n%s", diff)
	}
}
