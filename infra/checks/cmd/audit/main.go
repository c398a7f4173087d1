// Command audit checks the order saga's cross-store invariants on a running platform, as
// an operator: it reads orders, inventory and payments through their internal APIs and the
// broker's monitoring endpoint, never a database (package internal/audit lists the
// invariants). It prints each violation with the ids involved and exits 1 on any, 2 when
// it cannot read the platform.
//
//	./scripts/audit                       every order
//	./scripts/audit -since 10m -json      orders of the last ten minutes, JSON report
//	./scripts/audit -explained dlq.txt    dead letters listed there (service seq reason) are kept on purpose
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"polyshop/infra/checks/internal/audit"
	"polyshop/infra/checks/internal/gwclient"
)

func main() {
	var (
		cfg       audit.Config
		since     time.Duration
		asJSON    bool
		explained string
	)
	flag.StringVar(&cfg.Orders, "orders", gwclient.InternalURL(nil, "orders", "127.0.0.1:8085"), "orders' internal API")
	flag.StringVar(&cfg.Inventory, "inventory", gwclient.InternalURL(nil, "inventory", "127.0.0.1:8084"), "inventory's internal API")
	flag.StringVar(&cfg.Payments, "payments", gwclient.InternalURL(nil, "payments", "127.0.0.1:8086"), "payments' internal API")
	flag.StringVar(&cfg.NATSMonitor, "nats-monitor", "http://127.0.0.1:"+env("POLYSHOP_NATS_MONITOR_PORT", "8222"), "NATS monitoring endpoint (\"\" skips the DLQ check)")
	flag.DurationVar(&cfg.StuckAfter, "stuck-after", 2*time.Minute, "an order older than this must be CONFIRMED or CANCELLED")
	flag.DurationVar(&cfg.OutboxMaxAge, "outbox-max-age", time.Minute, "bound on the oldest pending outbox event of each owner")
	flag.DurationVar(&since, "since", 0, "only orders created within this long (0: every order)")
	flag.BoolVar(&asJSON, "json", false, "print the report as JSON")
	flag.StringVar(&explained, "explained", "", "file of dead letters kept on purpose, one a line: <service> <seq> <reason>")
	flag.Parse()
	cfg.Services = map[string]string{}
	for svc, addr := range map[string]string{"users": "127.0.0.1:8081", "sessions": "127.0.0.1:8082", "catalog": "127.0.0.1:8083",
		"inventory": "127.0.0.1:8084", "orders": "127.0.0.1:8085", "payments": "127.0.0.1:8086", "activity": "127.0.0.1:8087",
		"search": "127.0.0.1:8088"} {
		cfg.Services[svc] = gwclient.InternalURL(nil, svc, addr)
	}
	// Internal routes: the operator identity (mutual TLS when POLYSHOP_TLS=on).
	cfg.Client = gwclient.MustOperatorClient(nil, 10*time.Second)
	if explained != "" {
		f, err := os.Open(explained)
		if err == nil {
			cfg.Explained, err = audit.ParseExplained(f)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "audit: -explained:", err)
			os.Exit(2)
		}
	}
	if since > 0 {
		cfg.Since = time.Now().Add(-since)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := audit.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit:", err)
		os.Exit(2)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		Print(os.Stdout, rep)
	}
	if len(rep.Violations) > 0 {
		os.Exit(1)
	}
}

// Print writes rep for people.
func Print(w io.Writer, rep audit.Report) {
	fmt.Fprintf(w, "audit: %d orders (%s), %d ledgers, %d payments, in %s\n", rep.Orders, counts(rep.ByStatus), rep.Products, rep.Payments, rep.Took)
	if len(rep.CancelReasons) > 0 {
		fmt.Fprintf(w, "  cancelled by reason: %s\n", counts(rep.CancelReasons))
	}
	fmt.Fprintf(w, "  pending %d, stuck %d\n", len(rep.Pending), len(rep.Stuck))
	if len(rep.Moving) > 0 {
		fmt.Fprintf(w, "  ledgers that moved during the audit (reservations not compared; the platform is still settling): %d\n", len(rep.Moving))
	}
	for _, name := range []string{"orders", "inventory", "payments"} {
		ob := rep.Outbox[name]
		fmt.Fprintf(w, "  outbox %-9s pending %d, oldest %.1fs\n", name, ob.Pending, ob.OldestPendingAgeSeconds)
	}
	if rep.DLQExplained > 0 {
		fmt.Fprintf(w, "  dead letters explained (-explained): %d\n", rep.DLQExplained)
	}
	for _, v := range rep.Violations {
		fmt.Fprintln(w, "VIOLATION", v)
	}
	if len(rep.Violations) == 0 {
		fmt.Fprintln(w, "audit: no violations")
	} else {
		fmt.Fprintf(w, "audit: %d violations\n", len(rep.Violations))
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	return s
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
