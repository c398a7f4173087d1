package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"
)

// cassandraEngine: Cassandra through gocql, in the keyspace bench. Tables are designed per
// query, as Cassandra asks: items by id; items_by_category (partition = category) for the
// secondary query and the aggregation; events with partition key = the partition and
// clustering seq DESC, so the newest 20 are the first 20 rows of one partition on disk; a
// counter table. The conditional update is a lightweight transaction (UPDATE ... IF, Paxos).
// Full text uses a storage-attached index (SAI) with the standard analyzer, when this
// Cassandra has one.
type cassandraEngine struct {
	s       *gocql.Session
	textErr error
}

func newCassandra(hosts, user, password, keyspace string, conns int) (*cassandraEngine, error) {
	c := gocql.NewCluster(strings.Split(hosts, ",")...)
	c.Authenticator = gocql.PasswordAuthenticator{Username: user, Password: password}
	c.Keyspace = keyspace
	c.Consistency = gocql.One
	c.Timeout = 20 * time.Second
	c.ConnectTimeout = 10 * time.Second
	c.DisableInitialHostLookup = true
	c.NumConns = max(1, conns/8)
	s, err := c.CreateSession()
	if err != nil {
		return nil, err
	}
	return &cassandraEngine{s: s}, nil
}

func (e *cassandraEngine) Name() string { return "Cassandra" }
func (e *cassandraEngine) Close()       { e.s.Close() }

func (e *cassandraEngine) Version(ctx context.Context) (string, error) {
	var v string
	err := e.s.Query("SELECT release_version FROM system.local").WithContext(ctx).Scan(&v)
	return "Cassandra " + v, err
}

func (e *cassandraEngine) Load(ctx context.Context, d *Dataset) error {
	for _, q := range []string{
		"DROP TABLE IF EXISTS items", "DROP TABLE IF EXISTS items_by_category",
		"DROP TABLE IF EXISTS events", "DROP TABLE IF EXISTS counters",
		`CREATE TABLE items (id text PRIMARY KEY, category text, name text, description text, price int, version int)`,
		`CREATE TABLE items_by_category (category text, id text, name text, price int, PRIMARY KEY (category, id))`,
		`CREATE TABLE events (partition text, seq bigint, kind text, payload text, PRIMARY KEY (partition, seq))
			WITH CLUSTERING ORDER BY (seq DESC)`,
		`CREATE TABLE counters (id text PRIMARY KEY, n counter)`,
	} {
		if err := e.s.Query(q).WithContext(ctx).Exec(); err != nil {
			return err
		}
	}
	// Before the data, so that every write indexes itself (a later CREATE INDEX builds in
	// the background).
	e.textErr = e.s.Query(`CREATE CUSTOM INDEX items_description ON items (description) USING 'StorageAttachedIndex'
		WITH OPTIONS = {'index_analyzer': 'standard'}`).WithContext(ctx).Exec()

	work := make(chan *gocql.Batch)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 16 {
		wg.Go(func() {
			for b := range work {
				if err := e.s.ExecuteBatch(b); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	// Unlogged batches of rows of one partition each: one write per partition.
	byCategory := map[string][]Item{}
	for _, it := range d.Items {
		byCategory[it.Category] = append(byCategory[it.Category], it)
		b := e.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		b.Query("INSERT INTO items (id, category, name, description, price, version) VALUES (?, ?, ?, ?, ?, 0)",
			it.ID, it.Category, it.Name, it.Description, it.Price)
		work <- b
	}
	for c, items := range byCategory {
		for len(items) > 0 {
			n := min(len(items), 100)
			b := e.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
			for _, it := range items[:n] {
				b.Query("INSERT INTO items_by_category (category, id, name, price) VALUES (?, ?, ?, ?)", c, it.ID, it.Name, it.Price)
			}
			work <- b
			items = items[n:]
		}
	}
	_ = d.Events(func(_ string, es []Event) error {
		b := e.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		for _, ev := range es {
			b.Query("INSERT INTO events (partition, seq, kind, payload) VALUES (?, ?, ?, ?)", ev.Partition, ev.Seq, ev.Kind, ev.Payload)
		}
		work <- b
		return nil
	})
	close(work)
	wg.Wait()
	return firstErr
}

func (e *cassandraEngine) PointRead(ctx context.Context, id string) error {
	var it Item
	return e.s.Query("SELECT id, category, name, description, price FROM items WHERE id = ?", id).WithContext(ctx).
		Scan(&it.ID, &it.Category, &it.Name, &it.Description, &it.Price)
}

// BatchRead asks for the 100 partitions in parallel: an IN over partition keys would make
// one coordinator wait for them all, which Cassandra's documentation advises against.
func (e *cassandraEngine) BatchRead(ctx context.Context, ids []string) error {
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() { errs <- e.PointRead(ctx, id) }()
	}
	var first error
	for range ids {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (e *cassandraEngine) NewestPage(ctx context.Context, partition string) error {
	iter := e.s.Query("SELECT seq, kind, payload FROM events WHERE partition = ? LIMIT 20", partition).WithContext(ctx).Iter()
	return expectIter("page", iter, 20)
}

// BySecondary reads one partition of the table kept for this query (the writer inserts
// every item twice: into items and into items_by_category).
func (e *cassandraEngine) BySecondary(ctx context.Context, category string) error {
	iter := e.s.Query("SELECT id, name, price FROM items_by_category WHERE category = ? LIMIT 20", category).WithContext(ctx).Iter()
	return expectIter("secondary", iter, 20)
}

func (e *cassandraEngine) Insert(ctx context.Context, ev Event) error {
	return e.s.Query("INSERT INTO events (partition, seq, kind, payload) VALUES (?, ?, ?, ?)",
		ev.Partition, ev.Seq, ev.Kind, ev.Payload).WithContext(ctx).Exec()
}

// ConditionalUpdate is a lightweight transaction: Paxos rounds among the replicas (here one
// node, but the protocol's round trips and its serial read remain).
func (e *cassandraEngine) ConditionalUpdate(ctx context.Context, id string) error {
	var price, version int
	if err := e.s.Query("SELECT price, version FROM items WHERE id = ?", id).WithContext(ctx).Scan(&price, &version); err != nil {
		return err
	}
	var current int
	applied, err := e.s.Query("UPDATE items SET price = ?, version = ? WHERE id = ? IF version = ?",
		price+1, version+1, id, version).WithContext(ctx).ScanCAS(&current)
	if err == nil && !applied {
		return errConflict
	}
	return err
}

func (e *cassandraEngine) Increment(ctx context.Context, counter string) error {
	return e.s.Query("UPDATE counters SET n = n + 1 WHERE id = ?", counter).WithContext(ctx).Exec()
}

func (e *cassandraEngine) FullText(ctx context.Context, word string) error {
	if e.textErr != nil {
		return na("no analyzed SAI index here (" + shortErr(e.textErr) + ")")
	}
	iter := e.s.Query("SELECT id, name FROM items WHERE description = ? LIMIT 20", word).WithContext(ctx).Iter()
	return expectIter("full text", iter, 20)
}

// GroupBy may group by partition key only, so it reads items_by_category: every partition,
// that is the whole table, on every call.
func (e *cassandraEngine) GroupBy(ctx context.Context) error {
	iter := e.s.Query("SELECT category, count(*), sum(price) FROM items_by_category GROUP BY category").WithContext(ctx).PageSize(1000).Iter()
	return expectIter("groups", iter, 20)
}

// expectIter reads every row of iter and checks how many there were.
func expectIter(what string, iter *gocql.Iter, want int) error {
	n, sc := 0, iter.Scanner()
	for sc.Next() {
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return expect(what, n, want)
}

var _ Engine = (*cassandraEngine)(nil)
