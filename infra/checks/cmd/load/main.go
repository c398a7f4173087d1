// Command load is Polyshop's open-model load generator: user journeys through the public
// gateway at a constant arrival rate, whatever the platform's speed (each journey starts at
// its intended time; its first request's latency counts from that time, as wrk2 does, so a
// slow server cannot hide queueing by slowing the load down: no coordinated omission).
//
//	load [--rate 20] [--duration 30s] [--seed 1] [--mix browse=50,search=30,login=10,order=10] [--gateway http://127.0.0.1:8080]
//
// Journeys: browse (GET /api/products?category=&limit=20, then up to --pages more pages by
// cursor), search (GET /api/search with a word of a product's name and a category facet),
// login (POST /api/sessions), order (POST /api/orders with an Idempotency-Key, then GET
// /api/orders/{id} every --poll until CONFIRMED or CANCELLED). Within a journey a step is
// sent when the previous one answered (a person waits for the page) and its latency counts
// from then; the journey's first step, and the journey as a whole, count from the intended
// start. It reports per step: answers, p50/p99/p99.9/max of the 2xx answers (HdrHistogram),
// and every status seen; and the achieved rate.
//
// Bounded: --rate × --duration journeys at most, at most --max-inflight at once (an arrival
// waits for a slot, and that wait is in its latency), every request under --timeout, and
// after --duration at most --drain for journeys still running; then it stops. Only loopback
// targets. It signs up its own customers (--users, with an address) when the mix has login
// or order journeys, and reuses those of earlier runs (--state); products come from the
// catalog.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

type config struct {
	gateway                   string
	rate                      float64
	duration, drain, timeout  time.Duration
	poll, pollMax             time.Duration
	seed                      uint64
	mix                       mix
	users, pages, maxInflight int
	state                     string
}

func main() {
	var (
		cfg config
		m   string
	)
	def := "http://127.0.0.1:8080"
	if a := os.Getenv("GATEWAY_HTTP_ADDR"); a != "" {
		def = "http://" + a
	}
	flag.StringVar(&cfg.gateway, "gateway", def, "the gateway's base URL (loopback only)")
	flag.Float64Var(&cfg.rate, "rate", 20, "journeys started per second (constant arrival rate)")
	flag.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long journeys are started")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the journeys' choices (mix, categories, words, products)")
	flag.StringVar(&m, "mix", "browse=50,search=30,login=10,order=10", "journey weights")
	flag.IntVar(&cfg.users, "users", 8, "customers signed up for login and order journeys")
	flag.StringVar(&cfg.state, "state", "", "file listing the customers signed up by earlier runs, reused (none: sign up anew)")
	flag.IntVar(&cfg.pages, "pages", 2, "pages a browse journey follows after the first")
	flag.IntVar(&cfg.maxInflight, "max-inflight", 500, "journeys running at once at most")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one request")
	flag.DurationVar(&cfg.drain, "drain", 30*time.Second, "how long journeys may still run after --duration")
	flag.DurationVar(&cfg.poll, "poll", 200*time.Millisecond, "interval of an order's status polls")
	flag.DurationVar(&cfg.pollMax, "poll-max", 20*time.Second, "how long an order is polled at most")
	flag.Parse()
	var err error
	if cfg.mix, err = parseMix(m); err == nil {
		err = checkLoopback(cfg.gateway)
	}
	if err == nil && (cfg.rate <= 0 || cfg.rate > 5000 || cfg.duration <= 0 || cfg.duration > time.Hour) {
		err = errors.New("--rate must be in (0, 5000] and --duration in (0, 1h]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// client is a small client of the public API that records each request as a step.
type client struct {
	base string
	hc   *http.Client
	rec  *recorder
}

// do sends one request (in as JSON when not nil), decodes a 2xx answer into out, and
// records it as step, its latency counted from from (zero: from its own send).
func (c *client) do(ctx context.Context, step string, from time.Time, method, path, token string, hdr map[string]string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if from.IsZero() {
		from = time.Now()
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if c.rec != nil && step != "" {
			c.rec.observe(step, from, time.Now(), 0, err)
		}
		return 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if c.rec != nil && step != "" {
		c.rec.observe(step, from, time.Now(), resp.StatusCode, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil && err == nil {
		err = json.Unmarshal(b, out)
	}
	return resp.StatusCode, err
}

type product struct{ ID, Name, Category string }

type customer struct{ email, password, token string }

// world is what the journeys draw from.
type world struct {
	products   []product
	categories []string
	words      []string
	customers  []customer
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	c := &client{base: strings.TrimRight(cfg.gateway, "/"), hc: &http.Client{Timeout: cfg.timeout,
		Transport: &http.Transport{MaxIdleConns: cfg.maxInflight, MaxIdleConnsPerHost: cfg.maxInflight, IdleConnTimeout: 30 * time.Second}}}
	w, err := setup(ctx, c, cfg, out)
	if err != nil {
		return err
	}
	n := int(cfg.rate * cfg.duration.Seconds())
	fmt.Fprintf(out, "load: %s, %.0f journeys/s for %s (%d journeys), mix %s, seed %d, %d products in %d categories, %d customers\n",
		c.base, cfg.rate, cfg.duration, n, mixString(cfg.mix), cfg.seed, len(w.products), len(w.categories), len(w.customers))

	rec := newRecorder()
	c.rec = rec
	// Journeys may run until the end of the drain, then are cancelled (their steps count
	// as cancelled, and not-started arrivals as "not sent").
	jctx, cancel := context.WithTimeout(ctx, cfg.duration+cfg.drain+time.Second)
	defer cancel()
	slots := make(chan struct{}, cfg.maxInflight)
	var (
		wg       sync.WaitGroup
		finished atomic.Int64
	)
	start := time.Now().Add(100 * time.Millisecond)
	launched := dispatch(ctx, realClock{}, start, cfg.rate, n, func(i int, due time.Time) {
		r := mrand.New(mrand.NewPCG(cfg.seed, uint64(i)))
		name := cfg.mix.pick(r)
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
			case <-jctx.Done():
				rec.count("journey "+name, "not sent")
				return
			}
			defer func() { <-slots }()
			if journey(jctx, c, cfg, w, r, name, due) {
				rec.observe("journey "+name, due, time.Now(), 200, nil)
			} else {
				rec.count("journey "+name, "failed")
			}
			finished.Add(1)
		})
	})
	sent := time.Since(start)
	wg.Wait()
	elapsed := time.Since(start)
	report(out, cfg, rec, launched, n, sent, elapsed, finished.Load())
	return ctx.Err()
}

// journey runs one journey; the first step's latency counts from due. It reports whether
// every step answered 2xx (and an order ended CONFIRMED or CANCELLED).
func journey(ctx context.Context, c *client, cfg config, w *world, r *mrand.Rand, name string, due time.Time) bool {
	switch name {
	case "browse":
		path := "/api/products?limit=20&category=" + url.QueryEscape(w.categories[r.IntN(len(w.categories))])
		var page struct{ NextCursor string }
		if _, err := c.do(ctx, "browse: first page", due, "GET", path, "", nil, nil, &page); err != nil {
			return false
		}
		for p := 0; p < cfg.pages && page.NextCursor != ""; p++ {
			next := path + "&cursor=" + url.QueryEscape(page.NextCursor)
			page.NextCursor = ""
			if _, err := c.do(ctx, "browse: next page", time.Time{}, "GET", next, "", nil, nil, &page); err != nil {
				return false
			}
		}
		return true
	case "search":
		q := url.Values{"q": {w.words[r.IntN(len(w.words))]}, "category": {w.categories[r.IntN(len(w.categories))]}, "limit": {"20"}}
		_, err := c.do(ctx, "search", due, "GET", "/api/search?"+q.Encode(), "", nil, nil, nil)
		return err == nil
	case "login":
		cu := w.customers[r.IntN(len(w.customers))]
		_, err := c.do(ctx, "login", due, "POST", "/api/sessions", "", nil, map[string]string{"email": cu.email, "password": cu.password}, nil)
		return err == nil
	case "order":
		cu := w.customers[r.IntN(len(w.customers))]
		p := w.products[r.IntN(len(w.products))]
		var o struct{ ID, Status string }
		_, err := c.do(ctx, "order: place", due, "POST", "/api/orders", cu.token, map[string]string{"Idempotency-Key": "load-" + randomHex()},
			map[string]any{"items": []map[string]any{{"productId": p.ID, "quantity": 1}}}, &o)
		if err != nil {
			return false
		}
		placed := time.Now()
		for time.Since(placed) < cfg.pollMax {
			if o.Status == "CONFIRMED" || o.Status == "CANCELLED" {
				c.rec.observe("order: placed → "+o.Status, due, time.Now(), 200, nil)
				return true
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(cfg.poll):
			}
			// A 5xx or a timeout is recorded and the next poll tries again, as a customer's
			// page would; anything else (401, 404) ends the journey.
			if st, err := c.do(ctx, "order: poll", time.Time{}, "GET", "/api/orders/"+o.ID, cu.token, nil, nil, &o); err != nil && st != 0 && st < 500 {
				return false
			}
		}
		c.rec.count("order: placed → CONFIRMED", "still PENDING")
		return false
	}
	return false
}

// setup reads products and categories from the catalog and signs up the customers.
func setup(ctx context.Context, c *client, cfg config, out io.Writer) (*world, error) {
	w := &world{}
	seenCat, seenWord := map[string]bool{}, map[string]bool{}
	cursor := ""
	for page := 0; page < 10; page++ {
		var p struct {
			Items      []product
			NextCursor string
		}
		path := "/api/products?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if _, err := c.do(ctx, "", time.Time{}, "GET", path, "", nil, nil, &p); err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		for _, pr := range p.Items {
			w.products = append(w.products, pr)
			if !seenCat[pr.Category] {
				seenCat[pr.Category] = true
				w.categories = append(w.categories, pr.Category)
			}
			for _, word := range strings.Fields(strings.ToLower(pr.Name)) {
				if len(word) > 3 && !seenWord[word] {
					seenWord[word] = true
					w.words = append(w.words, word)
				}
			}
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(w.products) == 0 {
		return nil, errors.New("the catalog has no products (./scripts/up seeds some)")
	}
	sort.Strings(w.categories)
	sort.Strings(w.words)
	if !cfg.mix.has("login") && !cfg.mix.has("order") {
		return w, nil
	}
	// Customers of earlier runs are reused (users throttles sign-ups per client address, so
	// a tool that signed up new ones on every run would soon be refused).
	const password = "load generator pass phrase 1"
	var saved []string
	if b, err := os.ReadFile(cfg.state); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	for _, email := range saved {
		if len(w.customers) == cfg.users {
			break
		}
		var s struct{ Token string }
		if err := retry(ctx, func() (int, error) {
			return c.do(ctx, "", time.Time{}, "POST", "/api/sessions", "", nil, map[string]string{"email": email, "password": password}, &s)
		}); err == nil {
			w.customers = append(w.customers, customer{email: email, password: password, token: s.Token})
		}
	}
	reused := len(w.customers)
	run := randomHex()
	for i := reused; i < cfg.users; i++ {
		cu := customer{password: password}
		attempt := 0
		err := retry(ctx, func() (int, error) {
			// A new address on each attempt: users counts attempts per email, a busy 503 too.
			attempt++
			cu.email = fmt.Sprintf("load-%s-%d-%d@example.com", run, i, attempt)
			return c.do(ctx, "", time.Time{}, "POST", "/api/users", "", nil, map[string]string{"email": cu.email, "password": password, "name": "Load Buyer"}, nil)
		})
		if err != nil {
			return nil, fmt.Errorf("sign up: %w", err)
		}
		var s struct{ Token string }
		if err := retry(ctx, func() (int, error) {
			return c.do(ctx, "", time.Time{}, "POST", "/api/sessions", "", nil, map[string]string{"email": cu.email, "password": password}, &s)
		}); err != nil {
			return nil, fmt.Errorf("log in: %w", err)
		}
		cu.token = s.Token
		if err := retry(ctx, func() (int, error) {
			return c.do(ctx, "", time.Time{}, "PUT", "/api/me/address", cu.token, nil,
				map[string]string{"street": "1 Load St", "city": "Berlin", "postalCode": "10115", "country": "DE"}, nil)
		}); err != nil {
			return nil, fmt.Errorf("address: %w", err)
		}
		w.customers = append(w.customers, cu)
		saved = append(saved, cu.email)
		if cfg.state != "" {
			b, _ := json.Marshal(saved)
			if err := os.WriteFile(cfg.state, b, 0o600); err != nil {
				return nil, fmt.Errorf("remembering the customers: %w", err)
			}
		}
	}
	fmt.Fprintf(out, "load: %d customers (%d from earlier runs, listed in %s)\n", len(w.customers), reused, cfg.state)
	return w, nil
}

// retry repeats a setup call answered 429 or 503 (throttled or busy), up to 10 times, a
// second apart.
func retry(ctx context.Context, call func() (int, error)) error {
	for i := 0; ; i++ {
		st, err := call()
		if err == nil || (st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable) || i == 9 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func mixString(m mix) string {
	var parts []string
	for i, n := range m.names {
		parts = append(parts, fmt.Sprintf("%s=%d", n, m.weights[i]))
	}
	return strings.Join(parts, ",")
}

func report(out io.Writer, cfg config, rec *recorder, launched, planned int, sent, elapsed time.Duration, finished int64) {
	fmt.Fprintf(out, "\nstarted %d of %d journeys in %s: %.1f journeys/s achieved (asked %.0f/s); all ended after %s\n",
		launched, planned, sent.Round(time.Millisecond), float64(launched)/sent.Seconds(), cfg.rate, elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\tanswers\t2xx\tp50\tp99\tp99.9\tmax\toutcomes")
	for _, s := range rec.stats() {
		var oc []string
		for k, n := range s.Outcomes {
			oc = append(oc, k+":"+strconv.Itoa(n))
		}
		sort.Strings(oc)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Step, s.Total, s.OK, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max), strings.Join(oc, " "))
	}
	tw.Flush()
	fmt.Fprintln(out, "(journey lines: from the intended start to the journey's end; first steps: from the intended start; later steps: from their send)")
	for _, s := range rec.stats() {
		if s.FirstError != "" {
			fmt.Fprintf(out, "first transport error of %s: %s\n", s.Step, s.FirstError)
		}
	}
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	f := float64(d) / float64(time.Millisecond)
	if f < 10 {
		return strconv.FormatFloat(f, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + "ms"
}
