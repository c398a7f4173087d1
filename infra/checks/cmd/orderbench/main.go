// Command orderbench measures the order saga end to end through the public gateway, as a
// shop's customers would load it: open-model arrivals at a constant rate (each order is
// sent at its intended time whether or not earlier ones are done, and its latency counts
// from that intended time, as wrk2 does, so a slow platform cannot hide queueing by
// slowing the load down — no coordinated omission).
//
//	orderbench [-gateway http://127.0.0.1:8080] [-rates 10,25,50,100] [-duration 20s]
//
// It signs in as the admin (ADMIN_EMAIL / ADMIN_PASSWORD, or -admin-email / -admin-password),
// creates its own products (with stock enough for every order) and customers (with an
// address; those of earlier runs listed in -state are reused, since users throttles
// sign-ups per gwclient.Client address), waits until orders knows them, then runs each rate for -duration and waits for
// that rate's orders to end (at most -drain). Per rate it prints the orders placed, their
// outcomes, the CONFIRMED orders per second, the placement (POST answered) latency and the
// placement → CONFIRMED latency p50/p99/max, and where the time goes: the median time from
// the order's creation to each saga step.
//
// The CONFIRMED time is the order's updatedAt when it is first seen CONFIRMED (the saga
// writes it on the transition; the server's clock is this machine's), so the figure does
// not depend on how often orderbench polls. Outcomes are polled with the customers' own
// order lists (GET /api/orders?limit=100, newest first, one request per customer per -poll,
// up to 3 pages while an open order is further down), not the composed per-order read, to
// keep the benchmark's own load small.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"polyshop/infra/checks/internal/gwclient"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

type config struct {
	gateway                   string
	rates                     []int
	duration, drain, poll     time.Duration
	users, products           int
	adminEmail, adminPassword string
	state                     string
	productState              string
}

func main() {
	var (
		cfg   config
		rates string
	)
	flag.StringVar(&cfg.gateway, "gateway", "http://127.0.0.1:8080", "the gateway's base URL")
	flag.StringVar(&rates, "rates", "10,25,50,100", "comma-separated arrival rates, orders per second")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long each rate sends orders")
	flag.DurationVar(&cfg.drain, "drain", 60*time.Second, "how long to wait after a rate for its orders to end")
	flag.DurationVar(&cfg.poll, "poll", 250*time.Millisecond, "how often each customer's order list is polled")
	flag.IntVar(&cfg.users, "users", 5, "customers placing the orders (round robin)")
	flag.StringVar(&cfg.state, "state", "", "file listing the customers of earlier runs, reused (none: sign up anew)")
	flag.IntVar(&cfg.products, "products", 10, "products ordered (round robin, one unit each)")
	flag.StringVar(&cfg.productState, "product-state", "", "file listing the products of earlier runs, reused when orders knows them (none: create anew)")
	flag.StringVar(&cfg.adminEmail, "admin-email", os.Getenv("ADMIN_EMAIL"), "admin account (default $ADMIN_EMAIL)")
	flag.StringVar(&cfg.adminPassword, "admin-password", os.Getenv("ADMIN_PASSWORD"), "admin password (default $ADMIN_PASSWORD)")
	flag.Parse()
	for _, s := range strings.Split(rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r < 1 {
			fmt.Fprintf(os.Stderr, "orderbench: -rates: %q is not a positive integer\n", s)
			os.Exit(2)
		}
		cfg.rates = append(cfg.rates, r)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orderbench:", err)
		os.Exit(1)
	}
}

// customer is a signed-in customer and the orders it waits for.
type customer struct {
	token string
	mu    sync.Mutex
	open  map[string]*sample // order id → its sample, until terminal
}

// sample is one order's measurements.
type sample struct {
	intended  time.Time     // when it should have been sent
	placed    time.Duration // POST answered, from intended
	err       error         // placement failed
	id        string
	status    string // CONFIRMED, CANCELLED or "" (unfinished)
	reason    string
	confirmed time.Duration            // order updatedAt at CONFIRMED, from intended
	steps     map[string]time.Duration // step name → its time, from the order's createdAt
}

type orderView struct {
	ID           string
	Status       string
	CancelReason string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Steps        []struct {
		Name string
		At   time.Time
	}
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.adminEmail == "" || cfg.adminPassword == "" {
		return errors.New("set ADMIN_EMAIL and ADMIN_PASSWORD (or -admin-email, -admin-password): the benchmark creates its own products")
	}
	c := gwclient.Client{Base: strings.TrimRight(cfg.gateway, "/"), HC: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: 90 * time.Second}}}
	total := 0
	for _, r := range cfg.rates {
		total += r * int(cfg.duration/time.Second)
	}
	fmt.Fprintf(out, "orderbench: gateway %s, rates %v orders/s, %s each (%d orders), %d customers, %d products\n",
		c.Base, cfg.rates, cfg.duration, total, cfg.users, cfg.products)

	customers, products, err := setup(ctx, c, cfg, total)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "rate/s\tplaced\tfailed\tCONFIRMED\tCANCELLED\tunfinished\tconfirmed/s\tplace p50\tplace p99\tconfirm p50\tconfirm p99\tconfirm max\t")
	var notes []string
	for _, rate := range cfg.rates {
		if ctx.Err() != nil {
			break
		}
		samples := runRate(ctx, c, cfg, rate, customers, products)
		line, note := report(rate, cfg.duration, samples)
		fmt.Fprintln(w, line)
		notes = append(notes, note)
	}
	w.Flush()
	fmt.Fprintln(out, "\nwhere the time goes (median from the order's createdAt to each step; placement = intended send → createdAt):")
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	return ctx.Err()
}

// setup creates the customers and products and checks, with one order each, that orders
// has their copies (they arrive by events).
func setup(ctx context.Context, c gwclient.Client, cfg config, total int) ([]*customer, []string, error) {
	admin, err := c.Login(ctx, cfg.adminEmail, cfg.adminPassword)
	if err != nil {
		return nil, nil, fmt.Errorf("admin login: %w", err)
	}
	run := gwclient.RandomHex()
	products := reuseProducts(cfg.productState, cfg.products)
	stock := max(total/cfg.products+1000, productStock)
	for i := len(products); i < cfg.products; i++ {
		var p struct{ ID string }
		_, err := c.Call(ctx, "POST", "/api/products", admin, nil, map[string]any{
			"name": fmt.Sprintf("orderbench %s kettle %d", run, i), "description": "created by orderbench", "category": "kettle",
			"price":        map[string]any{"amount": 1000 + i, "currency": "EUR"},
			"attributes":   map[string]any{"capacityMl": 1000, "material": "steel"},
			"initialStock": stock}, &p)
		if err != nil {
			return nil, nil, fmt.Errorf("create product: %w", err)
		}
		products = append(products, p.ID)
	}
	if cfg.productState != "" {
		b, _ := json.Marshal(products)
		if err := os.WriteFile(cfg.productState, b, 0o600); err != nil {
			return nil, nil, fmt.Errorf("remembering the products: %w", err)
		}
	}
	customers, err := signUp(ctx, c, cfg, run)
	if err != nil {
		return nil, nil, err
	}
	// Warm up: one order per customer and per product, retried while orders lacks a copy.
	for i := range max(len(customers), len(products)) {
		cu, p := customers[i%len(customers)], products[i%len(products)]
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := c.Call(ctx, "POST", "/api/orders", cu.token, map[string]string{"Idempotency-Key": "warmup-" + gwclient.RandomHex()},
				map[string]any{"items": []map[string]any{{"productId": p, "quantity": 1}}}, nil)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, nil, fmt.Errorf("warm-up order: %w", err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return customers, products, nil
}

// productStock is the initial stock of a product orderbench creates: enough for many
// runs, so the products can be reused (-product-state) when the catalog's events are slow
// to reach orders (a new product is orderable only once orders has its copy).
const productStock = 100000

// reuseProducts returns up to n product ids listed in file by an earlier run. The warm-up
// order of setup proves orders still knows them.
func reuseProducts(file string, n int) []string {
	var ids []string
	if file == "" {
		return nil
	}
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &ids)
	}
	return ids[:min(n, len(ids))]
}

// signUp returns cfg.users signed-in customers with an address. Those of earlier runs
// (listed in cfg.state) are reused: users throttles sign-ups per gwclient.Client address
// (USERS_SIGNUP_CLIENT_MAX, 20 an hour), and every tool on this machine is 127.0.0.1.
func signUp(ctx context.Context, c gwclient.Client, cfg config, run string) ([]*customer, error) {
	const password = "orderbench pass phrase 1"
	var saved []string
	if cfg.state != "" {
		if b, err := os.ReadFile(cfg.state); err == nil {
			_ = json.Unmarshal(b, &saved)
		}
	}
	var (
		customers []*customer
		live      []string
	)
	for _, email := range saved {
		if len(customers) == cfg.users {
			live = append(live, email)
			continue
		}
		if token, err := c.Login(ctx, email, password); err == nil {
			customers = append(customers, &customer{token: token, open: map[string]*sample{}})
			live = append(live, email)
		}
	}
	for i := len(customers); i < cfg.users; i++ {
		email := fmt.Sprintf("orderbench-%s-%d@example.com", run, i)
		status, err := c.Call(ctx, "POST", "/api/users", "", nil, map[string]string{"email": email, "password": password, "name": "Bench Buyer"}, nil)
		if status == http.StatusTooManyRequests {
			return nil, fmt.Errorf("sign up refused: users throttles sign-ups per gwclient.Client address (USERS_SIGNUP_CLIENT_MAX per USERS_SIGNUP_WINDOW); reuse customers with -state, or ask for fewer with -users: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("sign up: %w", err)
		}
		token, err := c.Login(ctx, email, password)
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		customers = append(customers, &customer{token: token, open: map[string]*sample{}})
		live = append(live, email)
		if cfg.state != "" {
			b, _ := json.Marshal(live)
			if err := os.WriteFile(cfg.state, b, 0o600); err != nil {
				return nil, fmt.Errorf("remembering the customers: %w", err)
			}
		}
	}
	for _, cu := range customers {
		if _, err := c.Call(ctx, "PUT", "/api/me/address", cu.token, nil,
			map[string]string{"street": "1 Bench St", "city": "Berlin", "postalCode": "10115", "country": "DE"}, nil); err != nil {
			return nil, fmt.Errorf("address: %w", err)
		}
	}
	return customers, nil
}

// runRate sends rate orders per second for cfg.duration, each at its intended time, and
// returns their samples once every order has ended or cfg.drain has passed.
func runRate(ctx context.Context, c gwclient.Client, cfg config, rate int, customers []*customer, products []string) []*sample {
	n := rate * int(cfg.duration/time.Second)
	samples := make([]*sample, n)
	interval := time.Second / time.Duration(rate)
	start := time.Now().Add(100 * time.Millisecond)
	pollCtx, stopPolling := context.WithCancel(ctx)
	var polling sync.WaitGroup
	for _, cu := range customers {
		polling.Go(func() { cu.poll(pollCtx, c, cfg.poll) })
	}
	var sends sync.WaitGroup
	for i := range n {
		s := &sample{intended: start.Add(time.Duration(i) * interval)}
		samples[i] = s
		if d := time.Until(s.intended); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			samples = samples[:i]
			break
		}
		cu, p := customers[i%len(customers)], products[i%len(products)]
		sends.Go(func() { cu.place(ctx, c, s, p) })
	}
	sends.Wait()
	drainUntil := time.Now().Add(cfg.drain)
	for time.Now().Before(drainUntil) && ctx.Err() == nil && openOrders(customers) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	stopPolling()
	polling.Wait()
	for _, cu := range customers {
		cu.mu.Lock()
		clear(cu.open)
		cu.mu.Unlock()
	}
	return samples
}

func openOrders(customers []*customer) int {
	n := 0
	for _, cu := range customers {
		cu.mu.Lock()
		n += len(cu.open)
		cu.mu.Unlock()
	}
	return n
}

// place sends one order and registers it for polling.
func (cu *customer) place(ctx context.Context, c gwclient.Client, s *sample, product string) {
	var o struct{ ID string }
	_, err := c.Call(ctx, "POST", "/api/orders", cu.token, map[string]string{"Idempotency-Key": "bench-" + gwclient.RandomHex()},
		map[string]any{"items": []map[string]any{{"productId": product, "quantity": 1}}}, &o)
	s.placed = time.Since(s.intended)
	if err != nil {
		s.err = err
		return
	}
	s.id = o.ID
	cu.mu.Lock()
	cu.open[o.ID] = s
	cu.mu.Unlock()
}

// poll reads the customer's newest orders every interval while some are open, and
// records those that ended.
func (cu *customer) poll(ctx context.Context, c gwclient.Client, interval time.Duration) {
	for ctx.Err() == nil {
		cu.mu.Lock()
		open := len(cu.open)
		cu.mu.Unlock()
		// Newest first: page on while an open order has not been seen yet (bounded).
		cursor := ""
		seen := map[string]bool{}
		for page := 0; open > 0 && page < 3 && ctx.Err() == nil; page++ {
			var p struct {
				Items      []orderView
				NextCursor string
			}
			path := "/api/orders?limit=100"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if _, err := c.Call(ctx, "GET", path, cu.token, nil, nil, &p); err != nil {
				break
			}
			for _, o := range p.Items {
				seen[o.ID] = true
			}
			open = cu.record(p.Items, seen)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// record notes the orders that ended and returns how many open orders are not in seen.
func (cu *customer) record(orders []orderView, seen map[string]bool) int {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	for _, o := range orders {
		s, ok := cu.open[o.ID]
		if !ok || (o.Status != "CONFIRMED" && o.Status != "CANCELLED") {
			continue
		}
		s.status, s.reason = o.Status, o.CancelReason
		if o.Status == "CONFIRMED" {
			s.confirmed = o.UpdatedAt.Sub(s.intended)
		}
		s.steps = map[string]time.Duration{"placement": o.CreatedAt.Sub(s.intended)}
		for _, st := range o.Steps {
			s.steps[st.Name] = st.At.Sub(o.CreatedAt)
		}
		delete(cu.open, o.ID)
	}
	unseen := 0
	for id := range cu.open {
		if !seen[id] {
			unseen++
		}
	}
	return unseen
}

// report is one table line for a rate, and its "where the time goes" note.
func report(rate int, duration time.Duration, samples []*sample) (string, string) {
	var (
		failed, confirmed, cancelled, unfinished int
		placed, confirm                          []time.Duration
		reasons                                  = map[string]int{}
		steps                                    = map[string][]time.Duration{}
		firstErr                                 error
		lastConfirm                              time.Time
		first                                    time.Time
	)
	for i, s := range samples {
		if i == 0 {
			first = s.intended
		}
		if s.err != nil {
			failed++
			if firstErr == nil {
				firstErr = s.err
			}
			continue
		}
		placed = append(placed, s.placed)
		switch s.status {
		case "CONFIRMED":
			confirmed++
			confirm = append(confirm, s.confirmed)
			if t := s.intended.Add(s.confirmed); t.After(lastConfirm) {
				lastConfirm = t
			}
			for name, d := range s.steps {
				steps[name] = append(steps[name], d)
			}
		case "CANCELLED":
			cancelled++
			reasons[s.reason]++
		default:
			unfinished++
		}
	}
	perSec := 0.0
	if confirmed > 0 {
		perSec = float64(confirmed) / max(lastConfirm.Sub(first), duration).Seconds()
	}
	line := fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t",
		rate, len(samples)-failed, failed, confirmed, cancelled, unfinished, perSec,
		ms(pct(placed, 50)), ms(pct(placed, 99)), ms(pct(confirm, 50)), ms(pct(confirm, 99)), ms(pct(confirm, 100)))
	var b strings.Builder
	fmt.Fprintf(&b, "  %d/s:", rate)
	names := make([]string, 0, len(steps))
	for name := range steps {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return pct(steps[names[i]], 50) < pct(steps[names[j]], 50) })
	for _, name := range names {
		fmt.Fprintf(&b, " %s %s,", name, ms(pct(steps[name], 50)))
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&b, " cancelled: %v,", reasons)
	}
	if firstErr != nil {
		fmt.Fprintf(&b, " first placement error: %v", firstErr)
	}
	return line, strings.TrimSuffix(b.String(), ",")
}

// pct is the p-th percentile (nearest rank) of ds; 0 when empty.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + "ms"
}
