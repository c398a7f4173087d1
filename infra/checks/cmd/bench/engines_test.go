package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
			cfg := cfg
			if tt.engine == "mongo" {
				// The harness's FerretDB runs only while ./scripts/bench does; otherwise the
				// test runs one of its own the same way, on a free port.
				cfg.getenv = benchFerretDB(t)
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

// benchFerretDB returns a getenv whose BENCH_MONGODB_URI reaches the harness's FerretDB:
// the one ./scripts/bench runs when it is up, else one this test starts from the stack's
// build (.polyshop/bin/ferretdb) over the bench role's PostgreSQL database, stopped at the
// end of the test.
func benchFerretDB(t *testing.T) func(string) string {
	t.Helper()
	u, err := url.Parse(testenv.Getenv("BENCH_MONGODB_URI"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		return testenv.Getenv
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".polyshop", "bin", "ferretdb")
	if _, err := os.Stat(bin); err != nil {
		testenv.Require(t, "ferretdb", err) // ./scripts/stack up builds it
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pg := fmt.Sprintf("postgres://127.0.0.1:%s/bench?sslmode=disable", testenv.Getenv("POLYSHOP_PG_PORT"))
	cmd := exec.Command(bin, "serve", "-listen", addr, "-postgresql-url", pg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test's FerretDB did not listen on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	u.Host = addr
	uri := u.String()
	return func(k string) string {
		if k == "BENCH_MONGODB_URI" {
			return uri
		}
		return testenv.Getenv(k)
	}
}
