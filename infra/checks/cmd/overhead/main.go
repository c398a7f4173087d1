// Command overhead reports what a service's own work adds to an HTTP answer: for a few
// representative reads it measures the service route next to GET /healthz of the same
// process — the same listener, mutual TLS, shared middleware chain (request id, tracing,
// metrics, access log), admin and chaos wrappers — which does nothing but write
// {"status":"ok"}. The difference is the service (routing, handler, JSON, the store); the
// no-op is what any route costs on that stack, so a service-over-raw ratio can be read
// against it instead of against a bare driver call.
//
//	overhead [-window 4s] [-rounds 3] [-concurrency 4] [-out FILE]
//
// Each read runs -rounds rounds of two windows, the route and the no-op, in alternating
// order (route, no-op, no-op, route, …) so that drift in the machine's load falls on both;
// -concurrency workers each in a closed loop (one request after the other, one keep-alive
// connection each). Latencies of 2xx answers go into HdrHistogram; other answers are
// counted apart. Reads only, at low concurrency: it is safe next to a running platform but
// its figures then carry that platform's noise (the load averages are recorded beside them).
//
// It talks to the internal services as the operator (gwclient.OperatorClient: mutual TLS
// when POLYSHOP_TLS=on) at <SVC>_HTTP_ADDR. Ids come from the services themselves: a product
// from catalog's listing, a user from users' export.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"polyshop/infra/checks/internal/gwclient"
	"polyshop/shared/testenv"
)

// target is one read measured against its service's no-op.
type target struct {
	service, route string
	path           func(ids) string
}

type ids struct{ product, user string }

var targets = []target{
	{"users", "GET /users/{id}", func(i ids) string { return "/users/" + i.user }},
	{"catalog", "GET /products/{id}", func(i ids) string { return "/products/" + i.product }},
	{"inventory", "GET /stock/{productId}", func(i ids) string { return "/stock/" + i.product }},
	{"activity", "GET /users/{id}/activity?limit=20", func(i ids) string { return "/users/" + i.user + "/activity?limit=20" }},
}

var defaultAddr = map[string]string{"users": "127.0.0.1:8081", "catalog": "127.0.0.1:8083",
	"inventory": "127.0.0.1:8084", "activity": "127.0.0.1:8087"}

// result is one side (route or no-op) of one read, over every round.
type result struct {
	hist     *hdrhistogram.Histogram
	ok       int64
	other    map[int]int64
	failures int64
	elapsed  time.Duration
}

func newResult() *result {
	return &result{hist: hdrhistogram.New(1, 60_000_000, 3), other: map[int]int64{}}
}

func (r *result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }
func (r *result) p(q float64) float64 {
	return float64(r.hist.ValueAtQuantile(q)) / 1000
}

func main() {
	window := flag.Duration("window", 4*time.Second, "length of one measured window")
	rounds := flag.Int("rounds", 3, "rounds of (route, no-op) windows per read")
	conc := flag.Int("concurrency", 4, "closed-loop workers")
	out := flag.String("out", "", "also write the report (markdown) to this file")
	flag.Parse()

	client := gwclient.MustOperatorClient(nil, 10*time.Second)
	if t, ok := client.Transport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, *conc) // one keep-alive connection per worker
	}
	base := map[string]string{}
	for svc, addr := range defaultAddr {
		base[svc] = gwclient.InternalURL(nil, svc, addr)
	}
	ctx := context.Background()
	var id ids
	var err error
	if id.product, err = firstID(ctx, client, base["catalog"]+"/products?limit=1", "id"); err != nil {
		fail(err)
	}
	if id.user, err = firstID(ctx, client, base["users"]+"/export/addresses?limit=1", "userId"); err != nil {
		fail(err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Service route vs HTTP no-op on the same server\n\n")
	fmt.Fprintf(&b, "`go run ./cmd/overhead -window %s -rounds %d -concurrency %d` (infra/checks), %s.\n\n",
		*window, *rounds, *conc, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s. Load averages (1, 5, 15 min) before: %s.\n\n", testenv.Machine(), testenv.LoadAvg())
	fmt.Fprintf(&b, "No-op: `GET /healthz` of the same process (same listener, mutual TLS, middleware chain, access log). "+
		"Latencies in ms of 2xx answers; rates in answers/s; \"adds\" is route p50 − no-op p50.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| service\t route\t route p50\t p99\t rate\t no-op p50\t p99\t rate\t p50 ratio\t adds (ms)\t rate ratio\t not 2xx\t load after |")
	fmt.Fprintln(tw, "|---\t---\t---:\t---:\t---:\t---:\t---:\t---:\t---:\t---:\t---:\t---\t--- |")
	for _, t := range targets {
		route, noop := newResult(), newResult()
		for i := range *rounds {
			order := []*result{route, noop}
			paths := []string{t.path(id), "/healthz"}
			if i%2 == 1 {
				order[0], order[1], paths[0], paths[1] = order[1], order[0], paths[1], paths[0]
			}
			for k := range order {
				measure(ctx, client, base[t.service]+paths[k], *conc, *window, order[k])
			}
		}
		fmt.Fprintf(tw, "| %s\t `%s`\t %.2f\t %.2f\t %.0f\t %.2f\t %.2f\t %.0f\t %.1f×\t %.2f\t %.2f\t %s\t %s |\n",
			t.service, t.route, route.p(50), route.p(99), route.rate(), noop.p(50), noop.p(99), noop.rate(),
			route.p(50)/noop.p(50), route.p(50)-noop.p(50), route.rate()/noop.rate(), others(route, noop), testenv.LoadAvg())
	}
	tw.Flush()
	fmt.Print(b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			fail(err)
		}
	}
}

// measure runs conc closed-loop workers on url for d, adding to r.
func measure(ctx context.Context, client *http.Client, url string, conc int, d time.Duration, r *result) {
	var mu sync.Mutex
	var ok, failures atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				us := time.Since(t0).Microseconds()
				mu.Lock()
				if resp.StatusCode/100 == 2 {
					_ = r.hist.RecordValue(us)
					ok.Add(1)
				} else {
					r.other[resp.StatusCode]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.elapsed += time.Since(start)
	r.ok += ok.Load()
	r.failures += failures.Load()
}

// others lists the answers that were not 2xx, and transport failures, of both sides.
func others(route, noop *result) string {
	var parts []string
	for _, side := range []struct {
		name string
		r    *result
	}{{"route", route}, {"no-op", noop}} {
		name, r := side.name, side.r
		for code, n := range r.other {
			parts = append(parts, fmt.Sprintf("%s %d×%d", name, code, n))
		}
		if r.failures > 0 {
			parts = append(parts, fmt.Sprintf("%s failed×%d", name, r.failures))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// firstID reads field of the first item of a listing ({"items": [...]}).
func firstID(ctx context.Context, client *http.Client, url, field string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || len(page.Items) == 0 {
		return "", fmt.Errorf("%s: status %d, %d items: nothing to read", url, resp.StatusCode, len(page.Items))
	}
	v, _ := page.Items[0][field].(string)
	if v == "" {
		return "", fmt.Errorf("%s: first item has no %s", url, field)
	}
	return v, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "overhead:", err)
	os.Exit(1)
}
