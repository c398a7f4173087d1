package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is one workload measured on one engine.
type Result struct {
	Engine, Workload string
	NA               string  `json:",omitempty"` // why the engine cannot run it natively
	Ops              int64   // operations that answered correctly, conflicts included
	Errors           int64   // operations that failed (FirstError tells one)
	Conflicts        int64   // conditional updates that lost to a concurrent writer
	Seconds          float64 // the measured window
	OpsPerSec        float64
	P50, P99, P999   float64 // milliseconds
	Max              float64
	FirstError       string     `json:",omitempty"`
	Percentiles      []Quantile `json:",omitempty"` // the latency curve, for the charts
}

// Quantile is a point of a latency distribution.
type Quantile struct{ Q, Ms float64 }

// chartQuantiles are the points of the latency curves.
var chartQuantiles = []float64{0, 10, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.99}

// measure runs w on e with conc workers for warmup (not recorded), then for dur, each worker
// issuing one operation after the other (a closed loop: a fixed concurrency); a worker that
// has recorded nothing by then goes on until it has one (at most max(dur, 3 s) longer). Latencies go
// into one HdrHistogram per worker (microseconds, 3 significant digits), merged at the end.
func measure(ctx context.Context, e Engine, w Workload, d *Dataset, conc int, warmup, dur time.Duration, seed uint64) Result {
	res := Result{Engine: e.Name(), Workload: w.Key}
	probe := &args{r: rand.New(rand.NewPCG(seed, 0)), d: d, worker: conc}
	if err := w.op(ctx, e, probe); err != nil {
		var n notApplicable
		if errors.As(err, &n) {
			res.NA = n.reason
			return res
		}
		if !errors.Is(err, errConflict) {
			res.Errors, res.FirstError = 1, shortErr(err)
		}
	}
	var (
		mu      sync.Mutex
		total   = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		wg      sync.WaitGroup
		start   = time.Now()
		measure = start.Add(warmup)
		end     = measure.Add(dur)
		// A worker whose operations are slower than the window records one anyway, within
		// this hard limit, so that a slow cell shows its latency rather than nothing.
		hardEnd = end.Add(max(dur, 3*time.Second))
	)
	// Every cell is bounded in time: an operation still running well after the hard limit
	// is cancelled (and counted as an error).
	ctx, cancel := context.WithDeadline(ctx, hardEnd.Add(max(dur, 5*time.Second)))
	defer cancel()
	for i := range conc {
		wg.Go(func() {
			h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
			a := &args{r: rand.New(rand.NewPCG(seed, uint64(i)+1)), d: d, worker: i}
			var ops, errs, conflicts int64
			var first string
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(end) && (ops+errs > 0 || t0.After(hardEnd)) {
					break
				}
				err := w.op(ctx, e, a)
				took := time.Since(t0)
				if t0.Before(measure) {
					continue
				}
				switch {
				case err == nil || errors.Is(err, errConflict):
					ops++
					if err != nil {
						conflicts++
					}
					_ = h.RecordValue(max(1, took.Microseconds()))
				default:
					errs++
					if first == "" {
						first = shortErr(err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total.Merge(h)
			res.Ops += ops
			res.Errors += errs
			res.Conflicts += conflicts
			if res.FirstError == "" {
				res.FirstError = first
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(measure).Seconds() // operations started before end count, so up to their answer
	if res.Seconds > 0 {
		res.OpsPerSec = float64(res.Ops) / res.Seconds
	}
	if res.Ops == 0 && res.Errors == 0 {
		res.FirstError = fmt.Sprintf("no operation finished within %s (each took longer)", dur+max(dur, 3*time.Second))
	}
	ms := func(q float64) float64 { return float64(total.ValueAtQuantile(q)) / 1000 }
	res.P50, res.P99, res.P999, res.Max = ms(50), ms(99), ms(99.9), float64(total.Max())/1000
	if res.Ops > 0 {
		for _, q := range chartQuantiles {
			res.Percentiles = append(res.Percentiles, Quantile{q, ms(q)})
		}
	}
	return res
}
