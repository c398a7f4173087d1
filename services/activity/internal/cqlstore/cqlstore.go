// Package cqlstore is the Cassandra adapter of the activity feeds (activity.Store), built on
// github.com/gocql/gocql, plus the start-up schema migration of the activity keyspace.
//
// The service's role may use its own keyspace only; the keyspace itself (replication) is
// created by the bring-up scripts, the tables by Migrate. Every statement runs at the
// session's consistency level (Config.Consistency, LOCAL_QUORUM by default) and is marked
// idempotent, so gocql may retry it on a timeout: every write here is an upsert or a delete
// keyed by values taken from the event.
package cqlstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"polyshop/services/activity/internal/activity"
)

// GlobalShards is how many partitions one day of the global feed is spread over. Readers
// query every shard of a day, so changing it needs a new table (or reading both layouts
// for RecentDays), not just a new constant.
const GlobalShards = 4

// Config says how to reach the keyspace.
type Config struct {
	// Hosts are contact points, "host" or "host:port".
	Hosts []string
	// Username and Password authenticate the service's role.
	Username, Password string
	// Keyspace is the service's keyspace, created beforehand by the bring-up scripts.
	Keyspace string
	// Consistency of every read and write ("LOCAL_QUORUM", "ONE", …).
	Consistency string
	// LocalDC, when set, routes queries to that data center's replicas first.
	LocalDC string
	// Timeout bounds one request; ConnectTimeout one connection attempt.
	Timeout, ConnectTimeout time.Duration
}

// Store implements activity.Store on Cassandra. It is safe for concurrent use.
type Store struct {
	s *gocql.Session

	mu       sync.Mutex
	recorded map[userBucket]struct{} // bucket-list rows this Store has written
}

type userBucket struct {
	user   string
	bucket int
}

// maxRecorded bounds Store.recorded (about 100 bytes an entry). Forgetting costs one
// redundant upsert of a bucket-list row, nothing else.
const maxRecorded = 100_000

var _ activity.Store = (*Store)(nil)

// Open connects to the keyspace, retrying until ctx ends (the node may still be starting),
// and returns the store. Close it when done.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	cons, err := gocql.ParseConsistencyWrapper(cfg.Consistency)
	if err != nil {
		return nil, fmt.Errorf("cassandra consistency: %w", err)
	}
	c := gocql.NewCluster(cfg.Hosts...)
	c.Keyspace = cfg.Keyspace
	c.Consistency = cons
	c.SerialConsistency = gocql.LocalSerial
	c.Authenticator = gocql.PasswordAuthenticator{Username: cfg.Username, Password: cfg.Password}
	c.Timeout = cfg.Timeout
	c.ConnectTimeout = cfg.ConnectTimeout
	c.DefaultIdempotence = true
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 2}
	c.Logger = stdLogger{log: log.With("component", "gocql")}
	if cfg.LocalDC != "" {
		c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.DCAwareRoundRobinPolicy(cfg.LocalDC))
	} else {
		c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	}
	for attempt := 1; ; attempt++ {
		s, err := c.CreateSession()
		if err == nil {
			return &Store{s: s, recorded: make(map[userBucket]struct{})}, nil
		}
		log.WarnContext(ctx, "cassandra not reachable yet", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to cassandra %v keyspace %s: %w", cfg.Hosts, cfg.Keyspace, err)
		case <-time.After(time.Second):
		}
	}
}

// Session returns the underlying session (migrations, benchmarks).
func (st *Store) Session() *gocql.Session { return st.s }

// Close closes the session.
func (st *Store) Close() { st.s.Close() }

// Ping runs a trivial query.
func (st *Store) Ping(ctx context.Context) error {
	var v string
	if err := st.s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Scan(&v); err != nil {
		return fmt.Errorf("cassandra ping: %w", err)
	}
	return nil
}

const insertUserFeed = `INSERT INTO user_feed (user_id, bucket, occurred_at, event_id, event_type, subject, summary) VALUES (?, ?, ?, ?, ?, ?, ?)`

// PutUserEntry writes the bucket-list row and the feed row in one unlogged batch: one round
// trip, two different partitions. The batch is not atomic, but both statements are upserts
// of values taken from the event, and a failure is returned, so the redelivery rewrites both.
//
// A user's bucket list changes once a month, so the Store remembers the (user, bucket) rows
// it has written and then writes the feed row alone. That is safe because a bucket-list row
// is only ever removed by EraseUserFeed, which runs for deleted users only (and forgets what
// it erased): for a user who is not deleted, a row written once is still there. For a user
// deleted by another process, the entry written without its bucket row is erased anyway by
// the projection's post-write tombstone check, which names the entry's bucket explicitly.
func (st *Store) PutUserEntry(ctx context.Context, userID string, e activity.Entry) error {
	bucket := activity.BucketOf(e.OccurredAt)
	key := userBucket{userID, bucket}
	st.mu.Lock()
	_, known := st.recorded[key]
	st.mu.Unlock()
	if known {
		err := st.s.Query(insertUserFeed, userID, bucket, e.OccurredAt, e.EventID, e.Type, e.Subject, e.Summary).WithContext(ctx).Exec()
		if err != nil {
			return fmt.Errorf("insert user_feed: %w", err)
		}
		return nil
	}
	b := st.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	b.Query(`INSERT INTO user_buckets (user_id, bucket) VALUES (?, ?)`, userID, bucket)
	b.Query(insertUserFeed, userID, bucket, e.OccurredAt, e.EventID, e.Type, e.Subject, e.Summary)
	if err := st.s.ExecuteBatch(b); err != nil {
		return fmt.Errorf("insert user_feed: %w", err)
	}
	st.mu.Lock()
	if len(st.recorded) >= maxRecorded {
		clear(st.recorded)
	}
	st.recorded[key] = struct{}{}
	st.mu.Unlock()
	return nil
}

// UserFeed walks the user's buckets newest first, reading from each only what is still
// missing; the first bucket is read from the cursor position on.
func (st *Store) UserFeed(ctx context.Context, userID string, after *activity.Cursor, n int) ([]activity.Entry, error) {
	var buckets []int
	var err error
	if after != nil {
		buckets, err = st.scanInts(ctx, `SELECT bucket FROM user_buckets WHERE user_id = ? AND bucket <= ?`, userID, after.Bucket)
	} else {
		buckets, err = st.scanInts(ctx, `SELECT bucket FROM user_buckets WHERE user_id = ?`, userID)
	}
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	const cols = `SELECT occurred_at, event_id, event_type, subject, summary FROM user_feed WHERE user_id = ? AND bucket = ?`
	var out []activity.Entry
	for _, b := range buckets {
		var q *gocql.Query
		if after != nil && b == after.Bucket {
			q = st.s.Query(cols+` AND (occurred_at, event_id) < (?, ?) LIMIT ?`, userID, b, after.OccurredAt, after.EventID, n-len(out))
		} else {
			q = st.s.Query(cols+` LIMIT ?`, userID, b, n-len(out))
		}
		out, err = scanEntries(q.WithContext(ctx), out)
		if err != nil {
			return nil, fmt.Errorf("read bucket %d: %w", b, err)
		}
		if len(out) >= n {
			break
		}
	}
	return out, nil
}

// UserDeleted reads the tombstone.
func (st *Store) UserDeleted(ctx context.Context, userID string) (bool, error) {
	var at time.Time
	err := st.s.Query(`SELECT deleted_at FROM deleted_users WHERE user_id = ?`, userID).WithContext(ctx).Scan(&at)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read deleted_users: %w", err)
	}
	return true, nil
}

// MarkUserDeleted upserts the tombstone.
func (st *Store) MarkUserDeleted(ctx context.Context, userID string, deletedAt time.Time) error {
	err := st.s.Query(`INSERT INTO deleted_users (user_id, deleted_at) VALUES (?, ?)`, userID, deletedAt).WithContext(ctx).Exec()
	if err != nil {
		return fmt.Errorf("insert deleted_users: %w", err)
	}
	return nil
}

// EraseUserFeed deletes whole partitions (one partition tombstone per bucket), then the
// bucket list. The bucket list goes last so that a failure half-way leaves it in place
// for the retry.
func (st *Store) EraseUserFeed(ctx context.Context, userID string, extraBuckets ...int) error {
	buckets, err := st.scanInts(ctx, `SELECT bucket FROM user_buckets WHERE user_id = ?`, userID)
	if err != nil {
		return fmt.Errorf("list buckets: %w", err)
	}
	buckets = append(buckets, extraBuckets...)
	slices.Sort(buckets)
	buckets = slices.Compact(buckets)
	// Forget what is erased, so that this Store rewrites those bucket rows if it writes for
	// the user again (tidiness only: the user is deleted, and the projection erases every
	// later entry of a deleted user naming its bucket).
	st.mu.Lock()
	for _, b := range buckets {
		delete(st.recorded, userBucket{userID, b})
	}
	st.mu.Unlock()
	for _, b := range buckets {
		if err := st.s.Query(`DELETE FROM user_feed WHERE user_id = ? AND bucket = ?`, userID, b).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("delete bucket %d: %w", b, err)
		}
	}
	if err := st.s.Query(`DELETE FROM user_buckets WHERE user_id = ?`, userID).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("delete user_buckets: %w", err)
	}
	return nil
}

// ShardOf returns the global feed shard of an event id.
func ShardOf(eventID string) int {
	h := fnv.New32a()
	h.Write([]byte(eventID))
	return int(h.Sum32() % GlobalShards)
}

// PutGlobalEntry upserts the row of e in its day and shard.
func (st *Store) PutGlobalEntry(ctx context.Context, e activity.Entry) error {
	err := st.s.Query(`INSERT INTO global_feed (bucket, shard, occurred_at, event_id, event_type, subject, summary) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		activity.DayOf(e.OccurredAt), ShardOf(e.EventID), e.OccurredAt, e.EventID, e.Type, e.Subject, e.Summary).WithContext(ctx).Exec()
	if err != nil {
		return fmt.Errorf("insert global_feed: %w", err)
	}
	return nil
}

// RecentGlobal reads day by day, newest first, all shards of a day in parallel, and stops
// as soon as n entries are found. Every entry of a day is older than every entry of the
// next day, so merging only has to sort within a day.
func (st *Store) RecentGlobal(ctx context.Context, from time.Time, days, n int) ([]activity.Entry, error) {
	var out []activity.Entry
	for d := 0; d < days && len(out) < n; d++ {
		day := activity.DayOf(from.AddDate(0, 0, -d))
		var (
			wg      sync.WaitGroup
			results [GlobalShards][]activity.Entry
			errs    [GlobalShards]error
		)
		want := n - len(out)
		for shard := range GlobalShards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := st.s.Query(`SELECT occurred_at, event_id, event_type, subject, summary FROM global_feed WHERE bucket = ? AND shard = ? LIMIT ?`,
					day, shard, want).WithContext(ctx)
				results[shard], errs[shard] = scanEntries(q, nil)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("read global feed day %d: %w", day, err)
		}
		var dayEntries []activity.Entry
		for _, r := range results {
			dayEntries = append(dayEntries, r...)
		}
		slices.SortFunc(dayEntries, compareEntries)
		out = append(out, dayEntries...)
	}
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

func compareEntries(a, b activity.Entry) int {
	switch {
	case activity.Less(a, b):
		return -1
	case activity.Less(b, a):
		return 1
	}
	return 0
}

func (st *Store) scanInts(ctx context.Context, stmt string, args ...any) ([]int, error) {
	iter := st.s.Query(stmt, args...).WithContext(ctx).Iter()
	var out []int
	var v int
	for iter.Scan(&v) {
		out = append(out, v)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func scanEntries(q *gocql.Query, out []activity.Entry) ([]activity.Entry, error) {
	iter := q.Iter()
	var e activity.Entry
	for iter.Scan(&e.OccurredAt, &e.EventID, &e.Type, &e.Subject, &e.Summary) {
		e.OccurredAt = e.OccurredAt.UTC()
		out = append(out, e)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// stdLogger sends gocql's own log lines (reconnects, schema events) to slog.
type stdLogger struct{ log *slog.Logger }

func (l stdLogger) Print(v ...any)                 { l.log.Warn(fmt.Sprint(v...)) }
func (l stdLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l stdLogger) Println(v ...any)               { l.log.Warn(fmt.Sprintln(v...)) }
