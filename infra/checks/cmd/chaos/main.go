// Command chaos drives orders through the gateway at a steady rate while every crash point
// (shared/chaos) is armed in turn with probability 1 — one service at a time per service,
// each process left running long enough that the supervisor's backoff stays at 1 s — and a
// seeded random schedule SIGKILLs saga services and stops NATS for up to a minute; then it disarms everything, lets the platform settle and runs the auditor
// (internal/audit). It writes a report (markdown and JSON): orders placed, confirmed,
// cancelled by reason, stuck, violations, crashes by point, kills, outages, time to settle.
// It exits 1 when the audit finds a violation or a stuck order.
//
//	./scripts/chaos -duration 2m -rate 5 -seed 42
//
// It needs the platform run by the native runner (./scripts/up -d): crash points act only
// in supervised processes, and kills rely on the supervisor to restart the services.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"polyshop/infra/checks/internal/gwclient"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"polyshop/infra/checks/internal/audit"
	"polyshop/shared/chaos"
)

type config struct {
	gateway, root, out        string
	adminEmail, adminPassword string
	duration, every, settle   time.Duration
	maxOutage                 time.Duration
	minUptime, fireTimeout    time.Duration
	sweep                     bool
	hits, balance             int
	stepTimeout               time.Duration
	rate                      float64
	seed                      uint64
	duplicates                int
	products, customers       int
	owners                    map[string]string // service → internal base URL
	natsMonitor               string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.gateway, "gateway", "http://"+env("GATEWAY_HTTP_ADDR", "127.0.0.1:8080"), "the gateway's base URL")
	flag.StringVar(&cfg.root, "root", ".", "the repository (for .polyshop/run pids and ./scripts/stack)")
	flag.StringVar(&cfg.out, "out", "", "report directory (default <root>/.polyshop/chaos)")
	flag.DurationVar(&cfg.duration, "duration", 2*time.Minute, "how long orders are driven and faults injected")
	flag.Float64Var(&cfg.rate, "rate", 5, "orders per second")
	flag.Uint64Var(&cfg.seed, "seed", 0, "seed of the fault schedule (0: from the clock; printed)")
	flag.DurationVar(&cfg.every, "every", 8*time.Second, "mean time between injected faults (SIGKILLs, NATS outages; and crash points when -sweep=false)")
	flag.BoolVar(&cfg.sweep, "sweep", true, "arm every crash point in turn with probability 1 (false: the random schedule arms random points at random probabilities)")
	flag.IntVar(&cfg.hits, "hits", 0, "with the sweep: end the run once every crash point has fired this often (-duration stays the upper bound; 0: run for -duration)")
	flag.IntVar(&cfg.balance, "balance", 5, "with the sweep: a service's points wait while they are this many hits ahead of the least-hit point of the run (0: never wait)")
	flag.DurationVar(&cfg.stepTimeout, "step-timeout", 0, "the saga's step timeout during the run (orders' stepTimeoutMs fault; restored after; 0: the platform's own). Longer lets more orders reach payments while orders and inventory are being crashed")
	flag.DurationVar(&cfg.minUptime, "min-uptime", 11*time.Second, "a service is crashed or killed only once its process has run this long (the supervisor's backoff resets after 10 s)")
	flag.DurationVar(&cfg.fireTimeout, "fire-timeout", 30*time.Second, "an armed point that has not fired within this is disarmed and counted as missed")
	flag.DurationVar(&cfg.maxOutage, "max-outage", 60*time.Second, "longest NATS outage (0: none)")
	flag.DurationVar(&cfg.settle, "settle", 4*time.Minute, "longest wait for every order to end after the run")
	flag.IntVar(&cfg.duplicates, "duplicates", 3, "copies of every event and command the relays publish (1..3)")
	flag.IntVar(&cfg.products, "products", 4, "products ordered (created by the run, stock for every order)")
	flag.IntVar(&cfg.customers, "customers", 8, "customers placing orders (created by the run)")
	flag.StringVar(&cfg.adminEmail, "admin-email", os.Getenv("ADMIN_EMAIL"), "admin account (default $ADMIN_EMAIL)")
	flag.StringVar(&cfg.adminPassword, "admin-password", os.Getenv("ADMIN_PASSWORD"), "admin password (default $ADMIN_PASSWORD)")
	flag.StringVar(&cfg.natsMonitor, "nats-monitor", "http://127.0.0.1:"+env("POLYSHOP_NATS_MONITOR_PORT", "8222"), "NATS monitoring endpoint")
	flag.Parse()
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	if cfg.out == "" {
		cfg.out = filepath.Join(cfg.root, ".polyshop", "chaos")
	}
	cfg.owners = map[string]string{
		"inventory": gwclient.InternalURL(nil, "inventory", "127.0.0.1:8084"),
		"orders":    gwclient.InternalURL(nil, "orders", "127.0.0.1:8085"),
		"payments":  gwclient.InternalURL(nil, "payments", "127.0.0.1:8086"),
	}
	// The owners' chaos switches are internal routes: called as the operator identity
	// (mutual TLS when POLYSHOP_TLS=on).
	ownerHC = gwclient.MustOperatorClient(nil, 5*time.Second)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if len(rep.Audit.Violations) > 0 || len(rep.Audit.Stuck) > 0 {
		os.Exit(1)
	}
}

// Report is the chaos run's result, written as JSON and markdown.
type Report struct {
	Seed           uint64           `json:"seed"`
	Started        time.Time        `json:"started"`
	Machine        string           `json:"machine"`
	Duration       string           `json:"duration"`
	Rate           float64          `json:"rate"`
	Duplicates     int              `json:"duplicates"`
	Placed         int              `json:"placed"`
	PlaceFailed    int              `json:"placeFailed"` // gave up after retries with the same key
	PlaceRetries   int              `json:"placeRetries"`
	Confirmed      int              `json:"confirmed"`
	Cancelled      map[string]int   `json:"cancelledByReason"`
	Stuck          int              `json:"stuck"`
	CrashesByPoint map[string]int64 `json:"crashesByPoint"`
	ArmedByPoint   map[string]int   `json:"armedByPoint"`  // the sweep's armings (probability 1)
	MissedByPoint  map[string]int   `json:"missedByPoint"` // armings that did not fire within -fire-timeout
	KillsSkipped   int              `json:"killsSkipped"`  // SIGKILLs not sent: the process was younger than -min-uptime
	Kills          map[string]int   `json:"kills"`
	Outages        []string         `json:"natsOutages"`
	Restarts       map[string]int   `json:"restarts"`
	SettleSeconds  float64          `json:"settleSeconds"`
	Timeline       []string         `json:"timeline"`
	Audit          audit.Report     `json:"audit"`
}

func run(ctx context.Context, cfg config, out io.Writer) (*Report, error) {
	if cfg.adminEmail == "" || cfg.adminPassword == "" {
		return nil, errors.New("set ADMIN_EMAIL and ADMIN_PASSWORD (or -admin-email, -admin-password)")
	}
	host, _ := os.Hostname()
	rep := &Report{Seed: cfg.seed, Started: time.Now().UTC(), Machine: machine(host), Duration: cfg.duration.String(),
		Rate: cfg.rate, Duplicates: cfg.duplicates, Cancelled: map[string]int{}, CrashesByPoint: map[string]int64{},
		Kills: map[string]int{}, Restarts: map[string]int{}, ArmedByPoint: map[string]int{}, MissedByPoint: map[string]int{}}
	var tmu sync.Mutex
	logf := func(format string, args ...any) {
		line := fmt.Sprintf("%6.1fs ", time.Since(rep.Started).Seconds()) + fmt.Sprintf(format, args...)
		tmu.Lock()
		rep.Timeline = append(rep.Timeline, line)
		tmu.Unlock()
		fmt.Fprintln(out, "chaos:", line)
	}
	c := gwclient.Client{Base: strings.TrimRight(cfg.gateway, "/"), HC: &http.Client{Timeout: 15 * time.Second}}
	logf("seed %d, %s at %.1f orders/s, duplicates %d, gateway %s", cfg.seed, cfg.duration, cfg.rate, cfg.duplicates, c.Base)

	// The audit covers every order on the run's products, the warm-up orders of setup
	// included: the products' counts are compared with their reservations exactly.
	since := time.Now().Add(-time.Second)
	customers, products, err := setup(ctx, c, cfg)
	if err != nil {
		return nil, err
	}
	logf("set up %d customers and %d products", len(customers), len(products))
	firedBefore, err := fired(ctx, cfg)
	if err != nil {
		return nil, err
	}
	dlqBase, err := audit.DLQState(ctx, c.HC, cfg.natsMonitor)
	if err != nil {
		return nil, err
	}
	baseline := map[string]uint64{}
	for k, v := range dlqBase {
		baseline[k] = v.LastSeq
	}
	restartsBefore := restarts(cfg.root)
	for svc := range cfg.owners {
		if err := putChaos(ctx, cfg, svc, map[string]any{"duplicates": cfg.duplicates}); err != nil {
			return nil, err
		}
	}
	if cfg.stepTimeout > 0 {
		oc := gwclient.Client{Base: cfg.owners["orders"], HC: ownerHC}
		var prev map[string]any
		if _, err := oc.Call(ctx, "GET", "/faults", "", nil, nil, &prev); err != nil {
			return nil, err
		}
		if _, err := oc.Call(ctx, "PUT", "/faults", "", nil, map[string]any{"stepTimeoutMs": cfg.stepTimeout.Milliseconds()}, nil); err != nil {
			return nil, err
		}
		defer func() {
			waitReady(ctx, cfg.owners["orders"])
			// Clear, then pin the earlier value only if it was not the platform's default.
			bg := context.WithoutCancel(ctx)
			var now map[string]any
			_, err := oc.Call(bg, "DELETE", "/faults", "", nil, nil, nil)
			if err == nil {
				_, err = oc.Call(bg, "GET", "/faults", "", nil, nil, &now)
			}
			if err == nil && now["stepTimeoutMs"] != prev["stepTimeoutMs"] {
				_, err = oc.Call(bg, "PUT", "/faults", "", nil, map[string]any{"stepTimeoutMs": prev["stepTimeoutMs"]}, nil)
			}
			if err != nil {
				logf("restore stepTimeoutMs: %v", err)
			}
		}()
		logf("saga step timeout %s for the run", cfg.stepTimeout)
	}

	runCtx, endRun := context.WithTimeout(ctx, cfg.duration)
	defer endRun()
	var wg sync.WaitGroup
	var omu sync.Mutex
	up := &uptimes{root: cfg.root}
	sweeps := newSweepStats()
	if cfg.sweep {
		for i, svc := range []string{"inventory", "orders", "payments"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sweep(runCtx, cfg, svc, int((cfg.seed>>(8*i))%16), up, sweeps, logf)
			}()
		}
	}
	if cfg.sweep && cfg.hits > 0 {
		go func() { // the run ends when every point has its hits
			for runCtx.Err() == nil {
				if sweeps.allOf(chaos.RunPoints(), cfg.hits) {
					logf("every crash point hit %d times: ending the run", cfg.hits)
					endRun()
					return
				}
				select {
				case <-runCtx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	wg.Add(2)
	go func() { // the orders, at a steady rate
		defer wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.rate))
		defer tick.Stop()
		var pw sync.WaitGroup
		for i := 0; ; i++ {
			select {
			case <-runCtx.Done():
				pw.Wait()
				return
			case <-tick.C:
			}
			pw.Add(1)
			go func() {
				defer pw.Done()
				cu := customers[i%len(customers)]
				p := products[(i/len(customers))%len(products)]
				retries, err := place(ctx, c, cu, p, 1+i%2)
				omu.Lock()
				rep.PlaceRetries += retries
				if err != nil {
					rep.PlaceFailed++
				} else {
					rep.Placed++
				}
				omu.Unlock()
			}()
		}
	}()
	go func() { // the fault schedule
		defer wg.Done()
		schedule(runCtx, cfg, rep, up, logf)
	}()
	wg.Wait()
	runEnd := time.Now()
	rep.ArmedByPoint, rep.MissedByPoint = sweeps.armed, sweeps.missed
	logf("run over: %d orders placed, %d failed to place; disarming and settling", rep.Placed, rep.PlaceFailed)

	// Heal: NATS up, every service answering, switches cleared.
	if err := stack(ctx, cfg, "start", "nats"); err != nil {
		logf("nats start: %v", err)
	}
	for svc := range cfg.owners {
		waitReady(ctx, cfg.owners[svc])
		if err := deleteChaos(ctx, cfg, svc); err != nil {
			logf("clear %s: %v", svc, err)
		}
	}
	acfg := audit.Config{Orders: cfg.owners["orders"], Inventory: cfg.owners["inventory"], Payments: cfg.owners["payments"],
		NATSMonitor: cfg.natsMonitor, Since: since, ExactProducts: products, DLQBaseline: baseline,
		StuckAfter: 24 * time.Hour, OutboxMaxAge: time.Minute, Client: gwclient.MustOperatorClient(nil, 10*time.Second)} // the operator identity (mutual TLS when POLYSHOP_TLS=on)
	deadline := time.Now().Add(cfg.settle)
	var ar audit.Report
	for {
		ar, err = audit.Run(ctx, acfg)
		if err == nil && len(ar.Pending) == 0 && ar.Outbox["orders"].Pending+ar.Outbox["inventory"].Pending+ar.Outbox["payments"].Pending == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	rep.SettleSeconds = time.Since(runEnd).Seconds()
	// Final audit: whatever is still PENDING now is stuck.
	acfg.StuckAfter = time.Millisecond
	ar, err = audit.Run(ctx, acfg)
	if err != nil {
		return nil, fmt.Errorf("final audit: %w", err)
	}
	rep.Audit = ar
	rep.Confirmed = ar.ByStatus["CONFIRMED"]
	rep.Cancelled = ar.CancelReasons
	rep.Stuck = len(ar.Stuck)
	firedAfter, err := fired(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for k, v := range firedAfter {
		if d := v - firedBefore[k]; d > 0 {
			rep.CrashesByPoint[k] = d
		}
	}
	for k, v := range restarts(cfg.root) {
		if d := v - restartsBefore[k]; d > 0 {
			rep.Restarts[k] = d
		}
	}
	logf("settled after %.1fs: %d orders audited, %d violations, %d stuck", rep.SettleSeconds, ar.Orders, len(ar.Violations), len(ar.Stuck))
	return rep, write(cfg, rep, out)
}

// schedule injects a fault about every cfg.every until ctx ends: arms a crash point
// (most often), SIGKILLs a saga service, or stops NATS (at most one outage at a time).
func schedule(ctx context.Context, cfg config, rep *Report, up *uptimes, logf func(string, ...any)) {
	rng := mrand.New(mrand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))
	services := []string{"inventory", "orders", "payments"}
	var outage sync.WaitGroup
	outageOn := false
	fullOutage := false
	var mu sync.Mutex
	defer outage.Wait()
	for {
		wait := time.Duration(float64(cfg.every) * (0.5 + rng.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		r := rng.IntN(10)
		if cfg.sweep {
			r = 6 + r*4/10 // the sweep arms the crash points: SIGKILLs (3 in 4) and outages
		}
		switch {
		case r < 6:
			pts := chaos.RunPoints() // not the labs' points, which need a pattern switch
			pt := pts[rng.IntN(len(pts))]
			p := []float64{0.05, 0.2, 0.5, 1}[rng.IntN(4)]
			err := putChaos(ctx, cfg, pt.Service(), map[string]any{"crashPoints": map[string]float64{pt.Name: p}})
			logf("arm %s p=%.2f%s", pt.Name, p, errSuffix(err))
		case r < 9:
			svc := services[rng.IntN(len(services))]
			if u := up.of(svc); u < cfg.minUptime {
				mu.Lock()
				rep.KillsSkipped++
				mu.Unlock()
				logf("SIGKILL %s skipped: up %s only (min %s)", svc, u.Round(time.Second), cfg.minUptime)
				continue
			}
			err := kill(cfg.root, svc)
			if err == nil {
				mu.Lock()
				rep.Kills[svc]++
				mu.Unlock()
			}
			logf("SIGKILL %s%s", svc, errSuffix(err))
		default:
			mu.Lock()
			busy := outageOn || cfg.maxOutage <= 0
			if !busy {
				outageOn = true
			}
			mu.Unlock()
			if busy {
				continue
			}
			d := time.Duration(float64(cfg.maxOutage) * (0.25 + 0.75*rng.Float64())).Round(time.Second)
			if !fullOutage {
				// The first outage lasts the whole -max-outage (the 60 s broker
				// outage); later ones 25-100 % of it.
				d, fullOutage = cfg.maxOutage, true
			}
			outage.Add(1)
			go func() {
				defer outage.Done()
				err := stack(context.WithoutCancel(ctx), cfg, "stop", "nats")
				logf("NATS stopped for %s%s", d, errSuffix(err))
				time.Sleep(d)
				err = stack(context.WithoutCancel(ctx), cfg, "start", "nats")
				logf("NATS started again%s", errSuffix(err))
				mu.Lock()
				rep.Outages = append(rep.Outages, d.String())
				outageOn = false
				mu.Unlock()
			}()
		}
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (failed: " + err.Error() + ")"
}

func kill(root, svc string) error {
	b, err := os.ReadFile(filepath.Join(root, ".polyshop", "run", "svc-"+svc+".pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

func stack(ctx context.Context, cfg config, verb, name string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.root, "scripts", "stack"), verb, name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack %s %s: %v: %s", verb, name, err, bytes.TrimSpace(out))
	}
	return nil
}

func restarts(root string) map[string]int {
	out := map[string]int{}
	for _, svc := range []string{"users", "sessions", "catalog", "inventory", "orders", "payments", "activity", "search", "gateway"} {
		b, err := os.ReadFile(filepath.Join(root, ".polyshop", "run", "svc-"+svc+".restarts"))
		if err == nil {
			out[svc], _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	return out
}

// ownerHC calls the owners' internal APIs (main sets the operator identity's client).
var ownerHC = &http.Client{Timeout: 5 * time.Second}

func waitReady(ctx context.Context, base string) {
	for range 120 {
		resp, err := ownerHC.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func putChaos(ctx context.Context, cfg config, svc string, body any) error {
	c := gwclient.Client{Base: cfg.owners[svc], HC: ownerHC}
	_, err := c.Call(ctx, "PUT", "/faults/chaos", "", nil, body, nil)
	return err
}

func deleteChaos(ctx context.Context, cfg config, svc string) error {
	c := gwclient.Client{Base: cfg.owners[svc], HC: ownerHC}
	_, err := c.Call(ctx, "DELETE", "/faults/chaos", "", nil, nil, nil)
	return err
}

// fired returns every owner's cumulative crash counts by point.
func fired(ctx context.Context, cfg config) (map[string]int64, error) {
	out := map[string]int64{}
	for svc, base := range cfg.owners {
		waitReady(ctx, base)
		var st struct{ Fired map[string]int64 }
		c := gwclient.Client{Base: base, HC: ownerHC}
		if _, err := c.Call(ctx, "GET", "/faults/chaos", "", nil, nil, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", svc, err)
		}
		for k, v := range st.Fired {
			out[k] = v
		}
	}
	return out, nil
}

// place places one order, retrying with the same Idempotency-Key while the platform is
// unavailable (a crash between commit and answer must not make a second order).
func place(ctx context.Context, c gwclient.Client, cu *customer, product string, qty int) (int, error) {
	key := "chaos-" + gwclient.RandomHex()
	var err error
	for attempt := range 30 {
		var status int
		status, err = c.Call(ctx, "POST", "/api/orders", cu.token, map[string]string{"Idempotency-Key": key},
			map[string]any{"items": []map[string]any{{"productId": product, "quantity": qty}}}, nil)
		if err == nil {
			return attempt, nil
		}
		if status != 0 && status < 500 && status != 429 {
			return attempt, err
		}
		time.Sleep(time.Second)
	}
	return 30, err
}

type customer struct{ token string }

func setup(ctx context.Context, c gwclient.Client, cfg config) ([]*customer, []string, error) {
	admin, err := c.Login(ctx, cfg.adminEmail, cfg.adminPassword)
	if err != nil {
		return nil, nil, fmt.Errorf("admin login: %w", err)
	}
	run := gwclient.RandomHex()
	stock := int(cfg.rate*cfg.duration.Seconds())*2/cfg.products + 100
	var products []string
	for i := range cfg.products {
		var p struct{ ID string }
		if _, err := c.Call(ctx, "POST", "/api/products", admin, nil, map[string]any{
			"name": fmt.Sprintf("chaos %s kettle %d", run, i), "description": "created by the chaos run", "category": "kettle",
			"price":        map[string]any{"amount": 1500 + i, "currency": "EUR"},
			"attributes":   map[string]any{"capacityMl": 1000, "material": "steel"},
			"initialStock": stock}, &p); err != nil {
			return nil, nil, fmt.Errorf("create product: %w", err)
		}
		products = append(products, p.ID)
	}
	var customers []*customer
	for i := range cfg.customers {
		email := fmt.Sprintf("chaos-%s-%d@example.com", run, i)
		const password = "chaos run pass phrase 1"
		if _, err := c.Call(ctx, "POST", "/api/users", "", nil, map[string]string{"email": email, "password": password, "name": "Chaos Buyer"}, nil); err != nil {
			return nil, nil, fmt.Errorf("sign up: %w", err)
		}
		token, err := c.Login(ctx, email, password)
		if err != nil {
			return nil, nil, fmt.Errorf("login: %w", err)
		}
		if _, err := c.Call(ctx, "PUT", "/api/me/address", token, nil,
			map[string]string{"street": "1 Chaos St", "city": "Berlin", "postalCode": "10115", "country": "DE"}, nil); err != nil {
			return nil, nil, fmt.Errorf("address: %w", err)
		}
		customers = append(customers, &customer{token: token})
	}
	// Warm up: one order per customer and product once orders has their copies (events).
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

func write(cfg config, rep *Report, out io.Writer) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(cfg.out, fmt.Sprintf("chaos-%s-seed%d", rep.Started.Format("20060102-150405"), rep.Seed))
	js, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := markdown(rep)
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprint(out, "\n"+md)
	fmt.Fprintf(out, "\nreport: %s.md and .json\n", base)
	return nil
}

func markdown(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chaos run, seed %d\n\n", r.Seed)
	fmt.Fprintf(&b, "%s on %s: %s at %.1f orders/s, duplicates ×%d.\n\n", r.Started.Format(time.RFC3339), r.Machine, r.Duration, r.Rate, r.Duplicates)
	fmt.Fprintf(&b, "| what | count |\n|---|---|\n")
	fmt.Fprintf(&b, "| orders placed | %d (%d retries of the same key, %d gave up) |\n", r.Placed, r.PlaceRetries, r.PlaceFailed)
	fmt.Fprintf(&b, "| orders audited (warm-up included) | %d |\n", r.Audit.Orders)
	fmt.Fprintf(&b, "| CONFIRMED | %d |\n", r.Confirmed)
	for _, k := range sortedKeys(r.Cancelled) {
		fmt.Fprintf(&b, "| CANCELLED `%s` | %d |\n", k, r.Cancelled[k])
	}
	fmt.Fprintf(&b, "| stuck | %d |\n| violations | %d |\n| time to settle | %.1f s |\n", r.Stuck, len(r.Audit.Violations), r.SettleSeconds)
	fmt.Fprintf(&b, "| ledgers moving during the audit (not compared) | %d |\n\n", len(r.Audit.Moving))
	least := int64(-1)
	for _, p := range chaos.RunPoints() {
		if n := r.CrashesByPoint[p.Name]; least < 0 || n < least {
			least = n
		}
	}
	fmt.Fprintf(&b, "Crashes by point (the process killed itself there; the issue's goal is 100 each, this run's least is %d). "+
		"Armed: the sweep's armings with probability 1; missed: armings that did not fire within the fire timeout.\n\n"+
		"| point | crashes | armed | missed |\n|---|---|---|---|\n", least)
	for _, p := range chaos.RunPoints() {
		fmt.Fprintf(&b, "| `%s` | %d | %d | %d |\n", p.Name, r.CrashesByPoint[p.Name], r.ArmedByPoint[p.Name], r.MissedByPoint[p.Name])
	}
	fmt.Fprintf(&b, "\nSIGKILLs: %v (%d skipped: process younger than the minimum uptime) · supervisor restarts: %v · NATS outages: %v\n",
		r.Kills, r.KillsSkipped, r.Restarts, r.Outages)
	if len(r.Audit.Violations) > 0 {
		fmt.Fprintf(&b, "\n## Violations\n\n")
		for _, v := range r.Audit.Violations {
			fmt.Fprintf(&b, "- %s\n", v)
		}
	}
	if len(r.Audit.Stuck) > 0 {
		fmt.Fprintf(&b, "\nStuck orders: %s\n", strings.Join(r.Audit.Stuck, " "))
	}
	fmt.Fprintf(&b, "\n<details><summary>timeline</summary>\n\n```\n%s\n```\n</details>\n", strings.Join(r.Timeline, "\n"))
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func machine(host string) string {
	cpus := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "processor\t:")
	}
	return fmt.Sprintf("%s (%d cores)", host, cpus)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
