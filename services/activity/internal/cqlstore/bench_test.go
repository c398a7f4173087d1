package cqlstore_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"polyshop/services/activity/internal/activity"
	"polyshop/services/activity/internal/activity/activitytest"
	"polyshop/services/activity/internal/cqlstore/cqltest"
	"polyshop/shared/events"
)

// benchWorkers is the concurrency of both write benchmarks, so that their throughputs
// compare: the consumer's default is 8 per stream, and three streams run at once.
const benchWorkers = 16

// parallel runs fn(0) … fn(n-1) on workers goroutines and fails b on the first error.
func parallel(b *testing.B, workers, n int, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// benchEvents returns n session events for 1000 fresh users spread over three months.
func benchEvents(b *testing.B, n int) []events.Envelope {
	users := make([]string, 1000)
	for i := range users {
		users[i] = activitytest.ID(b)
	}
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	envs := make([]events.Envelope, n)
	for i := range envs {
		envs[i] = activitytest.SessionStarted(b, users[i%len(users)], start.Add(time.Duration(i)*90*24*time.Hour/time.Duration(n)))
	}
	return envs
}

// BenchmarkProjection measures events/s through the projection's apply function
// (activity.Service.Apply) with the real store: decode, the in-memory check of known
// deleted users, the feed row (in one unlogged batch with the bucket-list row the first time
// this store sees the user's month), and the post-write tombstone read.
func BenchmarkProjection(b *testing.B) {
	st := cqltest.Store(b)
	svc := activity.NewService(st, cqltest.Logger(), activity.Options{})
	envs := benchEvents(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	parallel(b, benchWorkers, b.N, func(i int) error { return svc.Apply(ctx, envs[i]) })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawInsert is the baseline: one plain INSERT of the same feed row per event, at
// the same concurrency, with nothing else.
func BenchmarkRawInsert(b *testing.B) {
	st := cqltest.Store(b)
	envs := benchEvents(b, b.N)
	s := st.Session()
	ctx := context.Background()
	b.ResetTimer()
	parallel(b, benchWorkers, b.N, func(i int) error {
		e := envs[i]
		var p events.SessionStarted
		_ = e.Decode(&p)
		at := e.Time.Truncate(time.Millisecond)
		return s.Query(`INSERT INTO user_feed (user_id, bucket, occurred_at, event_id, event_type, subject, summary) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.UserID, activity.BucketOf(at), at, e.ID, e.Type, e.Subject, "Signed in").WithContext(ctx).Exec()
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProjectionVsRaw runs the two loops above in alternating chunks of chunk events
// (projection, raw, projection, …), timing each side separately, and reports both rates and
// their ratio. On a machine whose load moves by a factor of two within a minute (five people
// share two cores), running one loop after the other mostly measures the load drift;
// alternating in short chunks exposes both loops to the same load.
func BenchmarkProjectionVsRaw(b *testing.B) {
	const chunk = 250
	st := cqltest.Store(b)
	svc := activity.NewService(st, cqltest.Logger(), activity.Options{})
	s := st.Session()
	projEnvs, rawEnvs := benchEvents(b, b.N), benchEvents(b, b.N)
	ctx := context.Background()
	var projTime, rawTime time.Duration
	b.ResetTimer()
	for lo := 0; lo < b.N; lo += chunk {
		n := min(chunk, b.N-lo)
		t0 := time.Now()
		parallel(b, benchWorkers, n, func(i int) error { return svc.Apply(ctx, projEnvs[lo+i]) })
		t1 := time.Now()
		parallel(b, benchWorkers, n, func(i int) error {
			e := rawEnvs[lo+i]
			var p events.SessionStarted
			_ = e.Decode(&p)
			at := e.Time.Truncate(time.Millisecond)
			return s.Query(`INSERT INTO user_feed (user_id, bucket, occurred_at, event_id, event_type, subject, summary) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				p.UserID, activity.BucketOf(at), at, e.ID, e.Type, e.Subject, "Signed in").WithContext(ctx).Exec()
		})
		projTime += t1.Sub(t0)
		rawTime += time.Since(t1)
	}
	proj, raw := float64(b.N)/projTime.Seconds(), float64(b.N)/rawTime.Seconds()
	b.ReportMetric(proj, "proj-events/s")
	b.ReportMetric(raw, "raw-events/s")
	b.ReportMetric(proj/raw, "ratio")
}

// BenchmarkFeedRead measures the latency of one page (limit 20) of a user with 300 entries
// over three months: the first page, and a page whose cursor sits 5 entries before a
// bucket boundary (so it reads two partitions). It reports p50 and p99 in milliseconds.
func BenchmarkFeedRead(b *testing.B) {
	st := cqltest.Store(b)
	svc := activity.NewService(st, cqltest.Logger(), activity.Options{})
	ctx := context.Background()
	uid := activitytest.ID(b)
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	envs := make([]events.Envelope, 300)
	for i := range envs {
		envs[i] = activitytest.SessionStarted(b, uid, start.Add(time.Duration(i)*7*time.Hour))
	}
	parallel(b, benchWorkers, len(envs), func(i int) error { return svc.Apply(ctx, envs[i]) })

	// Find a cursor 5 entries before the newest bucket ends.
	all, err := st.UserFeed(ctx, uid, nil, 300)
	if err != nil || len(all) != 300 {
		b.Fatalf("seed: %d entries, %v", len(all), err)
	}
	cross := ""
	for i := 1; i < len(all); i++ {
		if activity.BucketOf(all[i].OccurredAt) != activity.BucketOf(all[i-1].OccurredAt) {
			cross = activity.CursorAfter(all[i-6]).Encode()
			break
		}
	}

	for _, bc := range []struct{ name, cursor string }{{"first_page", ""}, {"cross_bucket_page", cross}} {
		b.Run(bc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				p, err := svc.UserFeed(ctx, uid, "20", bc.cursor)
				lat = append(lat, time.Since(t0))
				if err != nil || len(p.Items) != 20 {
					b.Fatalf("page: %d items, %v", len(p.Items), err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			ms := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}
