package labs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"
)

// Lab 08: access patterns. A copy of activity's feed table (partition = user and month)
// is loaded into the bench keyspace with the bench credentials; the learner asks it a
// question it was not designed for (every event about one product), sees Cassandra refuse
// it, measures what ALLOW FILTERING costs, and creates a table keyed for the new query.

func init() {
	Register(8, Funcs{Start: start08, Verify: verify08, Solve: solve08, Reset: reset08})
}

const (
	lab08Users    = 400
	lab08PerUser  = 15
	lab08Products = 40
	lab08Subject  = "product:7"
	lab08Feed     = "lab08_user_feed"
	lab08ByTable  = "lab08_feed_by_subject"
)

type answers08 struct {
	Refusal     string  `json:"refusal"`
	FilteringMs float64 `json:"filteringMs"`
	TableMs     float64 `json:"tableMs"`
}

const answers08Template = `{
  "refusal": "",
  "filteringMs": 0,
  "tableMs": 0
}
`

func (e *Env) benchCassandra() (*gocql.Session, error) {
	return Cassandra(e.Getenv("BENCH_CASSANDRA_HOSTS"), e.Getenv("BENCH_CASSANDRA_USERNAME"),
		e.Getenv("BENCH_CASSANDRA_PASSWORD"), e.Getenv("BENCH_CASSANDRA_KEYSPACE"))
}

func reset08(ctx context.Context, e *Env) error {
	cs, err := e.benchCassandra()
	if err != nil {
		return fmt.Errorf("bench keyspace: %w", err)
	}
	defer cs.Close()
	for _, t := range []string{lab08Feed, lab08ByTable} {
		if err := cs.Query("DROP TABLE IF EXISTS " + t).WithContext(ctx).Exec(); err != nil {
			return err
		}
	}
	return nil
}

func start08(ctx context.Context, e *Env) error {
	cs, err := e.benchCassandra()
	if err != nil {
		return fmt.Errorf("bench keyspace: %w", err)
	}
	defer cs.Close()
	// The same design as activity's user_feed (services/activity/migrations/0001_feeds.cql).
	err = cs.Query(`CREATE TABLE ` + lab08Feed + ` (
		user_id text, bucket int, occurred_at timestamp, event_id text, event_type text, subject text, summary text,
		PRIMARY KEY ((user_id, bucket), occurred_at, event_id)
	) WITH CLUSTERING ORDER BY (occurred_at DESC, event_id DESC)`).WithContext(ctx).Exec()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	bucket := now.Year()*100 + int(now.Month())
	types := []string{"orders.order_placed", "orders.order_confirmed", "catalog.product_viewed", "orders.order_cancelled"}
	work := make(chan int)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 16 {
		wg.Go(func() {
			for u := range work {
				b := cs.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
				for i := range lab08PerUser {
					p := rand.IntN(lab08Products)
					b.Query(`INSERT INTO `+lab08Feed+` (user_id, bucket, occurred_at, event_id, event_type, subject, summary) VALUES (?, ?, ?, ?, ?, ?, ?)`,
						fmt.Sprintf("user-%04d", u), bucket, now.Add(-time.Duration(i)*time.Minute), fmt.Sprintf("ev-%04d-%02d", u, i),
						types[rand.IntN(len(types))], fmt.Sprintf("product:%d", p), fmt.Sprintf("something about product %d", p))
				}
				if err := cs.ExecuteBatch(b); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
			}
		})
	}
	for u := range lab08Users {
		work <- u
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	if err := os.MkdirAll(e.StateDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(e.Path("answers.json"), []byte(answers08Template), 0o644); err != nil {
		return err
	}
	e.Logf("bench keyspace: %s with %d users × %d events (bucket %d); answers file %s", lab08Feed, lab08Users, lab08PerUser, bucket, e.Path("answers.json"))
	return nil
}

// filteredCount runs the query the feed was not designed for, with ALLOW FILTERING.
func filteredCount(ctx context.Context, cs *gocql.Session) (int, time.Duration, error) {
	t0 := time.Now()
	iter := cs.Query(`SELECT event_id FROM `+lab08Feed+` WHERE subject = ? ALLOW FILTERING`, lab08Subject).WithContext(ctx).PageSize(5000).Iter()
	n := 0
	var id string
	for iter.Scan(&id) {
		n++
	}
	return n, time.Since(t0), iter.Close()
}

func verify08(ctx context.Context, e *Env) ([]string, error) {
	b, err := os.ReadFile(e.Path("answers.json"))
	if err != nil {
		return []string{"lab 08 is not started (./scripts/lab start 8)"}, nil
	}
	var a answers08
	if err := json.Unmarshal(b, &a); err != nil {
		return []string{fmt.Sprintf("%s is not valid JSON: %v", e.Path("answers.json"), err)}, nil
	}
	cs, err := e.benchCassandra()
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	var fails []string
	if !strings.Contains(a.Refusal, "ALLOW FILTERING") {
		fails = append(fails, fmt.Sprintf("refusal: paste what Cassandra answers to SELECT * FROM %s WHERE subject = '%s' (cqlsh with the bench credentials, keyspace bench)", lab08Feed, lab08Subject))
	}
	if a.FilteringMs <= 0 || a.TableMs <= 0 {
		fails = append(fails, "filteringMs / tableMs: the time of the query WITH ALLOW FILTERING on the feed and of the same question on your new table (cqlsh: TRACING ON, or ./scripts/bench's code)")
	}
	// The new table: partition key starting with subject.
	var pk []string
	iter := cs.Query(`SELECT column_name, position FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND kind = 'partition_key' ALLOW FILTERING`,
		e.Getenv("BENCH_CASSANDRA_KEYSPACE"), lab08ByTable).WithContext(ctx).Iter()
	var col string
	var pos int
	cols := map[int]string{}
	for iter.Scan(&col, &pos) {
		cols[pos] = col
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	for i := range len(cols) {
		pk = append(pk, cols[i])
	}
	if len(pk) == 0 {
		fails = append(fails, fmt.Sprintf("no table %s in the bench keyspace: create one whose partition key answers \"every event about one product\"", lab08ByTable))
		return fails, nil
	}
	if pk[0] != "subject" {
		fails = append(fails, fmt.Sprintf("%s's partition key is (%s): the query gives a subject, so the partition key must start with it", lab08ByTable, strings.Join(pk, ", ")))
		return fails, nil
	}
	want, _, err := filteredCount(ctx, cs)
	if err != nil {
		return nil, err
	}
	q := `SELECT count(*) FROM ` + lab08ByTable + ` WHERE subject = ?`
	args := []any{lab08Subject}
	if len(pk) > 1 { // e.g. (subject, bucket)
		q += ` AND ` + pk[1] + ` = ?`
		now := time.Now().UTC()
		args = append(args, now.Year()*100+int(now.Month()))
	}
	var got int
	if err := cs.Query(q, args...).WithContext(ctx).Scan(&got); err != nil {
		fails = append(fails, fmt.Sprintf("%s cannot answer the question: %v", lab08ByTable, err))
	} else if got != want {
		fails = append(fails, fmt.Sprintf("%s holds %d rows for %s, the feed %d: copy the feed's rows into it (every row, keyed by subject)", lab08ByTable, got, lab08Subject, want))
	}
	return fails, nil
}

func solve08(ctx context.Context, e *Env) error {
	cs, err := e.benchCassandra()
	if err != nil {
		return err
	}
	defer cs.Close()
	var a answers08
	err = cs.Query(`SELECT * FROM `+lab08Feed+` WHERE subject = ?`, lab08Subject).WithContext(ctx).Exec()
	if err == nil {
		return errors.New("cassandra answered a query without the partition key: expected a refusal")
	}
	a.Refusal = err.Error()
	_, took, err := filteredCount(ctx, cs)
	if err != nil {
		return err
	}
	a.FilteringMs = float64(took.Microseconds()) / 1000
	err = cs.Query(`CREATE TABLE IF NOT EXISTS ` + lab08ByTable + ` (
		subject text, occurred_at timestamp, event_id text, user_id text, event_type text, summary text,
		PRIMARY KEY ((subject), occurred_at, event_id)
	) WITH CLUSTERING ORDER BY (occurred_at DESC, event_id DESC)`).WithContext(ctx).Exec()
	if err != nil {
		return err
	}
	// Copy every row (in the platform this would be a second write per event, at write time).
	iter := cs.Query(`SELECT user_id, occurred_at, event_id, event_type, subject, summary FROM ` + lab08Feed).WithContext(ctx).PageSize(2000).Iter()
	type row struct {
		user, id, typ, subject, summary string
		at                              time.Time
	}
	rows := make(chan row)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 16 {
		wg.Go(func() {
			for r := range rows {
				err := cs.Query(`INSERT INTO `+lab08ByTable+` (subject, occurred_at, event_id, user_id, event_type, summary) VALUES (?, ?, ?, ?, ?, ?)`,
					r.subject, r.at, r.id, r.user, r.typ, r.summary).WithContext(ctx).Exec()
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
			}
		})
	}
	var r row
	for iter.Scan(&r.user, &r.at, &r.id, &r.typ, &r.subject, &r.summary) {
		rows <- r
	}
	close(rows)
	wg.Wait()
	if err := iter.Close(); err != nil {
		return err
	}
	if first != nil {
		return first
	}
	t0 := time.Now()
	var n int
	if err := cs.Query(`SELECT count(*) FROM `+lab08ByTable+` WHERE subject = ?`, lab08Subject).WithContext(ctx).Scan(&n); err != nil {
		return err
	}
	a.TableMs = float64(time.Since(t0).Microseconds()) / 1000
	e.Logf("ALLOW FILTERING %.1f ms, %s %.1f ms (%d rows)", a.FilteringMs, lab08ByTable, a.TableMs, n)
	b, _ := json.MarshalIndent(a, "", "  ")
	return os.WriteFile(e.Path("answers.json"), append(b, '\n'), 0o644)
}
