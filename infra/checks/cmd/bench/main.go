// Command bench is Polyshop's access-pattern harness: the same nine logical workloads (point
// read, batch read of 100 keys, newest 20 of a partition, query by a secondary attribute,
// insert, conditional update, counter increment, full-text query, group-by aggregation) on
// each engine of the platform, with the project's own drivers, at a fixed concurrency.
//
//	bench [-mode quick|full] [-concurrency 8] [-engines pg,mongo,redis,cassandra,es] [-workloads point,page,...]
//
// quick loads 5,000 items and measures each cell 1.2 s (the whole run stays under two
// minutes); full loads 50,000 items and measures 10 s per cell. Results go to
// <-results>/<mode>/: README.md (tables), results.json, and SVG charts. Each engine's
// implementation is one file (pg.go, mongo.go, redis.go, cassandra.go, elastic.go) behind
// the Engine interface of workload.go; README.md next to this file reads the figures.
//
// bench uses credentials of its own (BENCH_* in infra/local.env: a PostgreSQL role and
// database, a Redis ACL user for bench:* keys, a Cassandra role and keyspace, an
// Elasticsearch user for bench-* indices, a FerretDB database), never a service's. It drops
// and reloads its own data on every run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"polyshop/shared/testenv"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	mode              string
	concurrency       int
	warmup, duration  time.Duration
	items, partitions int
	seed              uint64
	engines           []string
	workloads         []string
	results           string
	getenv            func(string) string
}

var allEngines = []string{"pg", "mongo", "redis", "cassandra", "es"}

func main() {
	var (
		cfg                config
		engines, workloads string
	)
	flag.StringVar(&cfg.mode, "mode", "quick", "quick (5,000 items, 1.2 s a cell, under 2 minutes) or full (50,000 items, 10 s a cell)")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "operations in flight per cell (workers, each in a closed loop)")
	flag.DurationVar(&cfg.duration, "duration", 0, "measured time per cell (default by mode)")
	flag.IntVar(&cfg.items, "items", 0, "items loaded (default by mode)")
	flag.Uint64Var(&cfg.seed, "seed", 15, "seed of the data set and of the keys asked for")
	flag.StringVar(&engines, "engines", strings.Join(allEngines, ","), "engines to measure")
	flag.StringVar(&workloads, "workloads", "", "workloads to measure (default all: point,batch,page,secondary,insert,cas,counter,fulltext,groupby)")
	flag.StringVar(&cfg.results, "results", "results", "folder of the results; a run writes <results>/<mode>/")
	render := flag.String("render", "", "write README.md and the charts again from this results.json (no measuring), next to it")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	switch cfg.mode {
	case "quick":
		cfg.warmup, cfg.partitions = 200*time.Millisecond, 100
		cfg.duration = orDefault(cfg.duration, 1200*time.Millisecond)
		cfg.items = orDefault(cfg.items, 5000)
	case "full":
		cfg.warmup, cfg.partitions = 2*time.Second, 1000
		cfg.duration = orDefault(cfg.duration, 10*time.Second)
		cfg.items = orDefault(cfg.items, 50000)
	default:
		fmt.Fprintln(os.Stderr, "bench: -mode must be quick or full")
		os.Exit(2)
	}
	cfg.engines = strings.Split(engines, ",")
	for _, e := range cfg.engines {
		if !slices.Contains(allEngines, e) {
			fmt.Fprintf(os.Stderr, "bench: unknown engine %q (known: %s)\n", e, strings.Join(allEngines, ","))
			os.Exit(2)
		}
	}
	if workloads != "" {
		cfg.workloads = strings.Split(workloads, ",")
	}
	cfg.getenv = os.Getenv
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// connect opens one engine with the harness's own credentials.
func connect(ctx context.Context, cfg config, name string) (Engine, error) {
	var missing []string
	env := func(k string) string {
		v := cfg.getenv(k)
		if v == "" {
			missing = append(missing, k)
		}
		return v
	}
	for _, k := range map[string][]string{
		"pg": {"BENCH_DATABASE_URL"}, "mongo": {"BENCH_MONGODB_URI", "BENCH_MONGODB_DATABASE"}, "redis": {"BENCH_REDIS_URL"},
		"cassandra": {"BENCH_CASSANDRA_HOSTS", "BENCH_CASSANDRA_USERNAME", "BENCH_CASSANDRA_PASSWORD", "BENCH_CASSANDRA_KEYSPACE"},
		"es":        {"BENCH_ELASTICSEARCH_URL", "BENCH_ELASTICSEARCH_USERNAME", "BENCH_ELASTICSEARCH_PASSWORD"},
	}[name] {
		env(k)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not set (./scripts/bench reads infra/local.env)", strings.Join(missing, ", "))
	}
	conns := cfg.concurrency + 2
	switch name {
	case "pg":
		return newPG(ctx, env("BENCH_DATABASE_URL"), conns)
	case "mongo":
		return newMongo(ctx, env("BENCH_MONGODB_URI"), env("BENCH_MONGODB_DATABASE"), cfg.getenv("BENCH_FERRETDB_VERSION"), conns)
	case "redis":
		return newRedis(ctx, env("BENCH_REDIS_URL"), conns)
	case "cassandra":
		return newCassandra(env("BENCH_CASSANDRA_HOSTS"), env("BENCH_CASSANDRA_USERNAME"), env("BENCH_CASSANDRA_PASSWORD"),
			env("BENCH_CASSANDRA_KEYSPACE"), conns)
	case "es":
		return newElastic(env("BENCH_ELASTICSEARCH_URL"), env("BENCH_ELASTICSEARCH_USERNAME"), env("BENCH_ELASTICSEARCH_PASSWORD"), conns)
	}
	return nil, fmt.Errorf("unknown engine %s", name)
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	t0 := time.Now()
	d := NewDataset(cfg.seed, cfg.items, cfg.partitions)
	r := &Run{Mode: cfg.mode, Date: t0.UTC().Format("2006-01-02 15:04 MST"), Machine: testenv.Machine(), Go: runtime.Version(),
		Concurrency: cfg.concurrency, Warmup: cfg.warmup.String(), Duration: cfg.duration.String(),
		Items: cfg.items, Partitions: cfg.partitions, Seed: cfg.seed, Versions: map[string]string{}, Unavailable: map[string]string{}}
	r.LoadBefore = testenv.LoadAvg()
	fmt.Fprintf(out, "bench: %s mode, %d items, %d partitions, concurrency %d, %s per cell\n", cfg.mode, cfg.items, cfg.partitions, cfg.concurrency, cfg.duration)
	for _, name := range cfg.engines {
		if ctx.Err() != nil {
			break
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		e, err := connect(cctx, cfg, name)
		cancel()
		if err != nil {
			fmt.Fprintf(out, "%-13s unavailable: %v\n", name, err)
			r.Unavailable[name] = shortErr(err)
			continue
		}
		if v, err := e.Version(ctx); err == nil {
			r.Versions[e.Name()] = v
		} else {
			r.Versions[e.Name()] = "version unknown: " + shortErr(err)
		}
		tl := time.Now()
		if err := e.Load(ctx, d); err != nil {
			e.Close()
			fmt.Fprintf(out, "%-13s load failed: %v\n", e.Name(), err)
			r.Unavailable[e.Name()] = "load failed: " + shortErr(err)
			continue
		}
		r.Engines = append(r.Engines, e.Name())
		fmt.Fprintf(out, "%-13s %s; loaded in %s\n", e.Name(), r.Versions[e.Name()], time.Since(tl).Round(10*time.Millisecond))
		for _, w := range Workloads {
			if len(cfg.workloads) > 0 && !slices.Contains(cfg.workloads, w.Key) || ctx.Err() != nil {
				continue
			}
			res := measure(ctx, e, w, d, cfg.concurrency, cfg.warmup, cfg.duration, cfg.seed)
			r.Results = append(r.Results, res)
			if res.NA != "" {
				fmt.Fprintf(out, "  %-30s n/a: %s\n", w.Title, res.NA)
				continue
			}
			fmt.Fprintf(out, "  %-30s %9s ops/s  p50 %7s  p99 %7s  p99.9 %7s ms", w.Title, thousands(res.OpsPerSec), msStr(res.P50), msStr(res.P99), msStr(res.P999))
			if res.Errors > 0 {
				fmt.Fprintf(out, "  %d errors: %s", res.Errors, res.FirstError)
			}
			fmt.Fprintln(out)
		}
		e.Close()
	}
	if len(r.Results) == 0 {
		return fmt.Errorf("no engine could be measured")
	}
	r.LoadAfter = testenv.LoadAvg()
	dir := filepath.Join(cfg.results, cfg.mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := write(dir, r); err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: done in %s; results in %s\n", time.Since(t0).Round(time.Second), dir)
	return ctx.Err()
}

// rerender writes the report of a results.json again (after a change of the report's form).
func rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return write(filepath.Dir(path), &r)
}

// write writes README.md, results.json and the charts of r into dir.
func write(dir string, r *Run) error {
	f, err := os.Create(filepath.Join(dir, "README.md"))
	if err != nil {
		return err
	}
	writeMarkdown(f, r)
	if err := f.Close(); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeCharts(dir, r); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	return nil
}
