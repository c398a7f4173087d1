package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/testenv"
)

// TestEveryEngineAnswersEveryWorkload loads a small data set into each engine with the
// harness's own credentials (the bench database, keyspace, key prefix and indices: the same
// names a ./scripts/bench run uses, so do not run both at once) and runs each workload a
// few times: every answer must be right (each implementation checks its result's size), and
// exactly the workloads that an engine cannot do natively say n/a.
func TestEveryEngineAnswersEveryWorkload(t *testing.T) {
	d := NewDataset(3, 2000, 10)
	cfg := config{concurrency: 4, getenv: testenv.Getenv}
	tests := []struct {
		engine string
		na     []string // workloads that must be n/a
		maybe  []string // n/a or not, by the engine's version or distribution
	}{
		{engine: "pg"},
		{engine: "redis", na: []string{"fulltext", "groupby"}},
		{engine: "cassandra", maybe: []string{"fulltext"}},
		{engine: "es", maybe: []string{"counter"}},
		{engine: "mongo", maybe: []string{"fulltext"}},
	}
	for _, tt := range tests {
		t.Run(tt.engine, func(t *testing.T) {
			if tt.engine == "mongo" {
				// The harness's FerretDB runs only while ./scripts/bench does.
				u, _ := url.Parse(testenv.Getenv("BENCH_MONGODB_URI"))
				if c, err := net.DialTimeout("tcp", u.Host, time.Second); err != nil {
					t.Skipf("no FerretDB of the harness on %s (./scripts/bench starts one for its run)", u.Host)
				} else {
					c.Close()
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			e, err := connect(ctx, cfg, tt.engine)
			testenv.Require(t, tt.engine, err)
			defer e.Close()
			if err := e.Load(ctx, d); err != nil {
				t.Fatalf("load: %v", err)
			}
			var na []string
			for _, w := range Workloads {
				a := &args{r: rand.New(rand.NewPCG(1, 2)), d: d}
				for range 3 {
					err := w.op(ctx, e, a)
					var n notApplicable
					if errors.As(err, &n) {
						if !slices.Contains(na, w.Key) {
							na = append(na, w.Key)
						}
						continue
					}
					if err != nil && !errors.Is(err, errConflict) {
						t.Errorf("%s: %v", w.Title, err)
					}
				}
			}
			var must []string
			for _, k := range na {
				if !slices.Contains(tt.maybe, k) {
					must = append(must, k)
				}
			}
			if diff := cmp.Diff(must, tt.na); diff != "" {
				t.Errorf("n/a workloads (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDatasetIsTheSameForTheSameSeed(t *testing.T) {
	a, b := NewDataset(9, 300, 4), NewDataset(9, 300, 4)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two data sets of one seed differ:\n%s", diff)
	}
	if c := NewDataset(10, 300, 4); cmp.Equal(a.Items, c.Items) {
		t.Error("another seed gave the same items")
	}
	cats := map[string]int{}
	for _, it := range a.Items {
		cats[it.Category]++
	}
	if len(cats) != a.Categories {
		t.Errorf("%d categories used, want %d", len(cats), a.Categories)
	}
}
