package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Run is everything a run of the harness produced.
type Run struct {
	Mode, Date, Machine, Go string
	Concurrency             int
	Warmup, Duration        string
	Items, Partitions       int
	Seed                    uint64
	LoadBefore, LoadAfter   string            // /proc/loadavg at the start and the end
	Versions                map[string]string // engine → version
	Unavailable             map[string]string `json:",omitempty"` // engine → why it was skipped
	Engines                 []string
	Results                 []Result
}

func (r *Run) result(engine, workload string) (Result, bool) {
	for _, x := range r.Results {
		if x.Engine == engine && x.Workload == workload {
			return x, true
		}
	}
	return Result{}, false
}

// writeMarkdown writes the run's tables: throughput, latency, then every figure in full.
func writeMarkdown(w io.Writer, r *Run) {
	fmt.Fprintf(w, "# Access-pattern harness: %s run\n\n", r.Mode)
	fmt.Fprintf(w, "- date: %s\n- machine: %s\n- %s; concurrency %d per cell (closed loop), warm-up %s then %s measured per cell\n",
		r.Date, r.Machine, r.Go, r.Concurrency, r.Warmup, r.Duration)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) at the start: %s; at the end: %s (other work on the same cores shows in every figure)\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "- data: %d items in 20 categories, %d partitions of 50 events, 1,000 counters (seed %d)\n", r.Items, r.Partitions, r.Seed)
	fmt.Fprintln(w, "- engines:")
	for _, e := range r.Engines {
		fmt.Fprintf(w, "  - %s: %s\n", e, r.Versions[e])
	}
	for e, why := range r.Unavailable {
		fmt.Fprintf(w, "  - %s: not measured (%s)\n", e, why)
	}
	fmt.Fprintln(w, "\nHow to read it, and why the engines differ: [README.md](../../README.md).")

	var notes []string
	note := func(res Result) string {
		notes = append(notes, fmt.Sprintf("%s, %s: %s", res.Engine, title(res.Workload), res.NA))
		return fmt.Sprintf("n/a [%d]", len(notes))
	}
	header := func(what string) {
		fmt.Fprintf(w, "\n## %s\n\n| workload |", what)
		for _, e := range r.Engines {
			fmt.Fprintf(w, " %s |", e)
		}
		fmt.Fprint(w, "\n|---|")
		for range r.Engines {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprintln(w)
	}
	header(fmt.Sprintf("Throughput, operations per second at concurrency %d (higher is better)", r.Concurrency))
	for _, wl := range Workloads {
		fmt.Fprintf(w, "| %s |", wl.Title)
		for _, e := range r.Engines {
			res, ok := r.result(e, wl.Key)
			switch {
			case !ok:
				fmt.Fprint(w, " – |")
			case res.NA != "":
				fmt.Fprintf(w, " %s |", note(res))
			case res.Ops == 0:
				fmt.Fprint(w, " none finished |")
			default:
				fmt.Fprintf(w, " %s%s |", thousands(res.OpsPerSec), errMark(res))
			}
		}
		fmt.Fprintln(w)
	}
	header("Latency p50 / p99 / p99.9, milliseconds (lower is better)")
	for _, wl := range Workloads {
		fmt.Fprintf(w, "| %s |", wl.Title)
		for _, e := range r.Engines {
			res, ok := r.result(e, wl.Key)
			switch {
			case !ok:
				fmt.Fprint(w, " – |")
			case res.NA != "":
				fmt.Fprint(w, " n/a |")
			case res.Ops == 0:
				fmt.Fprint(w, " none finished |")
			case res.Ops < 10:
				fmt.Fprintf(w, " %s (%d ops) |", msStr(res.P50), res.Ops)
			default:
				fmt.Fprintf(w, " %s / %s / %s |", msStr(res.P50), msStr(res.P99), msStr(res.P999))
			}
		}
		fmt.Fprintln(w)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNot applicable (the engine cannot do it natively; nothing is emulated):")
		fmt.Fprintln(w)
		for i, n := range notes {
			fmt.Fprintf(w, "%d. %s\n", i+1, n)
		}
	}
	fmt.Fprintln(w, "\n## Charts\n\n![throughput](throughput.svg)\n\n![p99](p99.svg)")
	fmt.Fprintln(w, "\nLatency by percentile, per workload (HdrHistogram):")
	fmt.Fprintln(w)
	for _, wl := range Workloads {
		fmt.Fprintf(w, "- [%s](latency-%s.svg)\n", wl.Title, wl.Key)
	}
	fmt.Fprintln(w, "\n## Every figure\n\n| engine | workload | ops | errors | conflicts | ops/s | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range r.Results {
		if res.NA != "" {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s |\n", res.Engine, title(res.Workload), res.Ops, res.Errors,
			res.Conflicts, thousands(res.OpsPerSec), msStr(res.P50), msStr(res.P99), msStr(res.P999), msStr(res.Max))
	}
	var errs []string
	for _, res := range r.Results {
		if res.FirstError != "" {
			errs = append(errs, fmt.Sprintf("- %s, %s: %d errors, first: `%s`", res.Engine, title(res.Workload), res.Errors, res.FirstError))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nErrors (the marked cells above):\n\n%s\n", strings.Join(errs, "\n"))
	}
}

func errMark(res Result) string {
	if res.Errors > 0 {
		return " (errors!)"
	}
	return ""
}

func title(key string) string {
	for _, w := range Workloads {
		if w.Key == key {
			return w.Title
		}
	}
	return key
}

func thousands(f float64) string {
	if f < 10 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	s := strconv.FormatFloat(math.Round(f), 'f', 0, 64)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func msStr(ms float64) string {
	switch {
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64)
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	default:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	}
}

// Colours and glyphs of the engines in every chart (colour-blind friendly: Okabe-Ito).
var engineStyle = map[string]struct {
	c     color.RGBA
	shape draw.GlyphDrawer
}{
	"PostgreSQL":    {color.RGBA{0, 114, 178, 255}, draw.CircleGlyph{}},
	"MongoDB API":   {color.RGBA{0, 158, 115, 255}, draw.BoxGlyph{}},
	"Redis":         {color.RGBA{213, 94, 0, 255}, draw.TriangleGlyph{}},
	"Cassandra":     {color.RGBA{204, 121, 167, 255}, draw.PyramidGlyph{}},
	"Elasticsearch": {color.RGBA{230, 159, 0, 255}, draw.CrossGlyph{}},
}

// writeCharts writes throughput.svg and p99.svg (one dot per engine and workload, log
// scale) and latency-<workload>.svg (latency by percentile, one line per engine).
func writeCharts(dir string, r *Run) error {
	dots := func(file, ylabel string, value func(Result) float64) error {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s (%s run, concurrency %d)", ylabel, r.Mode, r.Concurrency)
		p.Y.Label.Text = ylabel
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		var ticks []plot.Tick
		for i, wl := range Workloads {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: wl.Key})
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Min, p.X.Max = -0.6, float64(len(Workloads))-0.4
		p.Add(plotter.NewGrid())
		top := 0.0
		for j, e := range r.Engines {
			var xy plotter.XYs
			for i, wl := range Workloads {
				if res, ok := r.result(e, wl.Key); ok && res.NA == "" && res.Ops > 0 {
					xy = append(xy, plotter.XY{X: float64(i) + 0.12*(float64(j)-float64(len(r.Engines)-1)/2), Y: value(res)})
					top = max(top, value(res))
				}
			}
			if len(xy) == 0 {
				continue
			}
			s, err := plotter.NewScatter(xy)
			if err != nil {
				return err
			}
			st := engineStyle[e]
			s.GlyphStyle = draw.GlyphStyle{Color: st.c, Radius: vg.Points(3.5), Shape: st.shape}
			p.Add(s)
			p.Legend.Add(e, s)
		}
		p.Legend.Top, p.Legend.Left = true, true
		p.Y.Max = top * 30 // a log decade and more of room for the legend
		return p.Save(9*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, file))
	}
	if err := dots("throughput.svg", "operations per second", func(x Result) float64 { return x.OpsPerSec }); err != nil {
		return err
	}
	if err := dots("p99.svg", "p99 latency (ms)", func(x Result) float64 { return x.P99 }); err != nil {
		return err
	}
	for _, wl := range Workloads {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: latency by percentile (%s run)", wl.Title, r.Mode)
		p.X.Label.Text = "percentile"
		p.Y.Label.Text = "latency (ms)"
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		// x = -log10(1 - q): 90% at 1, 99% at 2, 99.9% at 3, so the tail gets the room.
		p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0%"}, {Value: nines(50), Label: "50%"}, {Value: 1, Label: "90%"},
			{Value: 2, Label: "99%"}, {Value: 3, Label: "99.9%"}, {Value: 4, Label: "99.99%"}})
		p.Add(plotter.NewGrid())
		any, top := false, 0.0
		for _, e := range r.Engines {
			res, ok := r.result(e, wl.Key)
			if !ok || res.NA != "" || len(res.Percentiles) == 0 {
				continue
			}
			var xy plotter.XYs
			for _, q := range res.Percentiles {
				xy = append(xy, plotter.XY{X: nines(q.Q), Y: max(q.Ms, 0.001)})
				top = max(top, q.Ms)
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return err
			}
			st := engineStyle[e]
			l.Color, l.Width = st.c, vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(e, l)
			any = true
		}
		if !any {
			continue
		}
		p.Legend.Top, p.Legend.Left = true, true
		p.X.Min, p.X.Max, p.Y.Max = 0, 4.25, top*30
		if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, "latency-"+wl.Key+".svg")); err != nil {
			return err
		}
	}
	return nil
}

func nines(q float64) float64 { return -math.Log10(1 - q/100) }
