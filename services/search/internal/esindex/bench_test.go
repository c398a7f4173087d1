package esindex_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"polyshop/services/search/internal/esindex"
	"polyshop/services/search/internal/esindex/estest"
	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
)

// BenchmarkWrites compares the read-change-write of Apply with the previous scheme (a blind
// write with version_type=external) for the live consumer (one event per call) and the
// rebuild (batches of 500). Each op is a product update of an existing document.
func BenchmarkWrites(b *testing.B) {
	x := estest.New(b)
	ctx := context.Background()
	const docs = 500
	ids := make([]string, docs)
	ops := make([]search.Op, docs)
	for i := range ids {
		ids[i] = uuid.NewString()
		e, err := events.New(ctx, events.TypeProductCreated, ids[i], 1, events.ProductCreated{ProductID: ids[i],
			Name: fmt.Sprintf("Kettle %d", i), Category: "kettle", Price: events.Money{Amount: 1000, Currency: "EUR"}})
		if err != nil {
			b.Fatal(err)
		}
		if ops[i], err = search.OpFor(e); err != nil {
			b.Fatal(err)
		}
	}
	if err := x.Apply(ctx, "", ops); err != nil {
		b.Fatal(err)
	}
	version := int64(1)
	next := func(i int) search.Op {
		op := ops[i%docs]
		op.Version = version + 1 + int64(i/docs)
		return op
	}
	external := func(b *testing.B, batch []search.Op) {
		var body []byte
		for _, op := range batch {
			meta, _ := json.Marshal(map[string]any{"index": map[string]any{"_index": x.Alias(), "_id": op.ID, "version": op.Version, "version_type": "external"}})
			doc, _ := json.Marshal(op.Doc)
			body = append(append(append(append(body, meta...), '\n'), doc...), '\n')
		}
		if err := esindex.Do(ctx, x, "POST", "/_bulk", body); err != nil {
			b.Fatal(err)
		}
	}
	for _, size := range []int{1, 500} {
		b.Run("external-version/batch="+strconv.Itoa(size), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				batch := make([]search.Op, size)
				for j := range batch {
					batch[j] = next(i*size + j)
				}
				external(b, batch)
			}
			version += int64(b.N*size/docs + 2)
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "docs/s")
		})
		b.Run("get-compare-write/batch="+strconv.Itoa(size), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				batch := make([]search.Op, size)
				for j := range batch {
					batch[j] = next(i*size + j)
				}
				if err := x.Apply(ctx, "", batch); err != nil {
					b.Fatal(err)
				}
			}
			version += int64(b.N*size/docs + 2)
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
