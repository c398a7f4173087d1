package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Engine is one datastore's version of the nine workloads. Each implementation lives in a
// file of its own (pg.go, mongo.go, redis.go, cassandra.go, elastic.go) and is meant to be
// read side by side with the others: the same logical question, asked the way that engine's
// Go driver asks it.
//
// The methods are called from many goroutines at once (the harness's fixed concurrency).
// Each checks what it got back (a point read that finds nothing is an error, a page must
// hold 20 events), so a fast wrong answer cannot pass for a fast right one. A workload the
// engine cannot answer natively returns an error made with na(reason), and the harness
// prints "n/a" with that reason instead of a figure.
type Engine interface {
	// Name is the engine as the tables show it.
	Name() string
	// Version is the server's version (and what it is, where that is not obvious).
	Version(ctx context.Context) (string, error)
	// Load drops whatever an earlier run left and loads d: items, their counters and the
	// events of every partition.
	Load(ctx context.Context, d *Dataset) error

	// PointRead reads one item by its key.
	PointRead(ctx context.Context, id string) error
	// BatchRead reads 100 items by their keys, in one request where the engine can.
	BatchRead(ctx context.Context, ids []string) error
	// NewestPage reads the 20 newest events of one partition (a user's feed), newest first.
	NewestPage(ctx context.Context, partition string) error
	// BySecondary reads 20 items of one category: a query on an attribute that is not the key.
	BySecondary(ctx context.Context, category string) error
	// Insert adds one event to a partition.
	Insert(ctx context.Context, e Event) error
	// ConditionalUpdate reads an item and changes its price only if nobody changed the item
	// in between (optimistic concurrency: compare the version read, then write).
	ConditionalUpdate(ctx context.Context, id string) error
	// Increment adds one to a counter, atomically, without reading it first.
	Increment(ctx context.Context, counter string) error
	// FullText finds 20 items whose description contains a word.
	FullText(ctx context.Context, word string) error
	// GroupBy counts the items and sums their prices per category.
	GroupBy(ctx context.Context) error

	// Close releases the engine's connections.
	Close()
}

// Workload names one access pattern; the harness runs each on every engine.
type Workload struct {
	Key, Title string
	// op runs the workload once on e with arguments drawn from r.
	op func(ctx context.Context, e Engine, a *args) error
}

// args draws a workload's arguments; one per worker (rand.Rand is not safe to share).
type args struct {
	r      *rand.Rand
	d      *Dataset
	worker int
	seq    int64
}

func (a *args) item() string      { return a.d.Items[a.r.IntN(len(a.d.Items))].ID }
func (a *args) partition() string { return partitionID(a.r.IntN(a.d.Partitions)) }
func (a *args) category() string  { return categoryID(a.r.IntN(a.d.Categories)) }
func (a *args) counter() string   { return fmt.Sprintf("k%04d", a.r.IntN(a.d.Counters)) }
func (a *args) word() string      { return a.d.Words[a.r.IntN(len(a.d.Words))] }

func (a *args) ids(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = a.item()
	}
	return ids
}

// event is a new event in a random partition; its sequence number is unique across workers
// and above every loaded one, so it becomes the partition's newest.
func (a *args) event() Event {
	a.seq++
	return Event{Partition: a.partition(), Seq: int64(a.d.EventsPerPartition) + int64(a.worker)<<32 + a.seq,
		Kind: "bench_inserted", Payload: `{"by":"bench"}`}
}

// Workloads, in the order of the tables.
var Workloads = []Workload{
	{"point", "point read by key", func(ctx context.Context, e Engine, a *args) error { return e.PointRead(ctx, a.item()) }},
	{"batch", "batch read of 100 keys", func(ctx context.Context, e Engine, a *args) error { return e.BatchRead(ctx, a.ids(100)) }},
	{"page", "newest 20 in a partition", func(ctx context.Context, e Engine, a *args) error { return e.NewestPage(ctx, a.partition()) }},
	{"secondary", "query by a secondary attribute", func(ctx context.Context, e Engine, a *args) error { return e.BySecondary(ctx, a.category()) }},
	{"insert", "insert", func(ctx context.Context, e Engine, a *args) error { return e.Insert(ctx, a.event()) }},
	{"cas", "conditional update", func(ctx context.Context, e Engine, a *args) error { return e.ConditionalUpdate(ctx, a.item()) }},
	{"counter", "counter increment", func(ctx context.Context, e Engine, a *args) error { return e.Increment(ctx, a.counter()) }},
	{"fulltext", "full-text query", func(ctx context.Context, e Engine, a *args) error { return e.FullText(ctx, a.word()) }},
	{"groupby", "group-by aggregation", func(ctx context.Context, e Engine, _ *args) error { return e.GroupBy(ctx) }},
}

// notApplicable is the error of a workload an engine cannot answer natively.
type notApplicable struct{ reason string }

func (n notApplicable) Error() string { return "n/a: " + n.reason }

// na says that the engine cannot answer this workload natively, and why.
func na(reason string) error { return notApplicable{reason} }

// errConflict is a conditional update that lost to a concurrent writer: a correct answer
// (the harness counts it apart), not a failure.
var errConflict = errors.New("conditional update lost to a concurrent writer")

// expect checks a result's size.
func expect(what string, got, want int) error {
	if got != want {
		return fmt.Errorf("%s: got %d, want %d", what, got, want)
	}
	return nil
}

// Dataset is what every engine loads: the same items, counters and events, generated from a
// seed so that every engine (and every run) holds identical data.
type Dataset struct {
	Items              []Item
	Categories         int
	Counters           int
	Partitions         int
	EventsPerPartition int
	Words              []string
}

// Item is a product-like record.
type Item struct {
	ID, Category, Name, Description string
	Price                           int // minor units
}

// Event is an entry of a partition's feed; Seq orders a partition (higher is newer).
type Event struct {
	Partition     string
	Seq           int64
	Kind, Payload string
}

func partitionID(i int) string { return fmt.Sprintf("u%05d", i) }
func categoryID(i int) string  { return fmt.Sprintf("c%02d", i) }

// NewDataset generates items items, in 20 categories, 1,000 counters and partitions
// partitions of 50 events each. Descriptions are 12 words from a vocabulary of 400
// pronounceable made-up words, so each word is in about 3% of the items.
func NewDataset(seed uint64, items, partitions int) *Dataset {
	r := rand.New(rand.NewPCG(seed, 15))
	d := &Dataset{Categories: 20, Counters: 1000, Partitions: partitions, EventsPerPartition: 50}
	syll := []string{"ka", "lo", "mi", "ru", "te", "sa", "vo", "ne", "pi", "du", "ga", "ze", "fo", "bi", "xu", "ha", "jo", "we", "qi", "ny"}
	seen := map[string]bool{}
	for len(d.Words) < 400 {
		w := syll[r.IntN(len(syll))] + syll[r.IntN(len(syll))] + syll[r.IntN(len(syll))]
		if !seen[w] {
			seen[w] = true
			d.Words = append(d.Words, w)
		}
	}
	for i := range items {
		words := make([]string, 12)
		for j := range words {
			words[j] = d.Words[r.IntN(len(d.Words))]
		}
		d.Items = append(d.Items, Item{
			ID:          fmt.Sprintf("i%07d", i),
			Category:    categoryID(r.IntN(d.Categories)),
			Name:        strings.Join(words[:2], " "),
			Description: strings.Join(words, " "),
			Price:       100 + r.IntN(100000),
		})
	}
	return d
}

// Events returns every partition's loaded events, calling fn once per partition.
func (d *Dataset) Events(fn func(partition string, events []Event) error) error {
	for p := range d.Partitions {
		id := partitionID(p)
		events := make([]Event, d.EventsPerPartition)
		for s := range events {
			events[s] = Event{Partition: id, Seq: int64(s), Kind: "loaded", Payload: fmt.Sprintf(`{"n":%d}`, s)}
		}
		if err := fn(id, events); err != nil {
			return err
		}
	}
	return nil
}

// CounterIDs are the counters' keys.
func (d *Dataset) CounterIDs() []string {
	ids := make([]string, d.Counters)
	for i := range ids {
		ids[i] = fmt.Sprintf("k%04d", i)
	}
	return ids
}
