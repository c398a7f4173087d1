// Command inventory runs the Polyshop inventory service: stock per product with an
// auditable ledger and the order saga's reservations, in its own PostgreSQL database, with
// a transactional outbox relayed to the NATS stream INVENTORY.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/services/inventory/internal/consumer"
	"polyshop/services/inventory/internal/httpapi"
	"polyshop/services/inventory/internal/inventory"
	"polyshop/services/inventory/internal/pgstore"
	"polyshop/shared/admin"
	"polyshop/shared/admin/pgstats"
	"polyshop/shared/broker"
	"polyshop/shared/chaos"
	"polyshop/shared/chaos/pgchaos"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgpool"
)

const service = "inventory"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
}

// Config is the service's configuration; see README.md for each variable.
type Config struct {
	HTTPAddr           string
	DatabaseURL        string
	NATSURL            string
	ReservationTTL     time.Duration
	SweepInterval      time.Duration
	FaultsPoll         time.Duration
	CommandConcurrency int
	Relays             int
	ShutdownTimeout    time.Duration
	// Limits bound the requests served at once (INVENTORY_MAX_INFLIGHT).
	Limits   httpx.Limits
	LogLevel slog.Level
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	c := Config{
		HTTPAddr:           r.String("INVENTORY_HTTP_ADDR", "127.0.0.1:8084"),
		DatabaseURL:        r.Required("INVENTORY_DATABASE_URL"),
		NATSURL:            r.Required("INVENTORY_NATS_URL"),
		ReservationTTL:     r.Duration("INVENTORY_RESERVATION_TTL", inventory.DefaultTTL),
		SweepInterval:      r.Duration("INVENTORY_SWEEP_INTERVAL", 10*time.Second),
		FaultsPoll:         r.Duration("INVENTORY_FAULTS_POLL", time.Second),
		CommandConcurrency: r.Int("INVENTORY_COMMAND_CONCURRENCY", 16),
		Relays:             r.Int("INVENTORY_RELAYS", 4),
		ShutdownTimeout:    r.Duration("INVENTORY_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits:             httpx.Limits{MaxInflight: r.Int("INVENTORY_MAX_INFLIGHT", httpapi.DefaultMaxInflight)},
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("INVENTORY_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("config: INVENTORY_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.Limits.MaxInflight < 1 {
		return c, errors.New("config: INVENTORY_MAX_INFLIGHT must be 1 or more")
	}
	switch {
	case c.ReservationTTL <= 0:
		return c, errors.New("config: INVENTORY_RESERVATION_TTL must be positive")
	case c.SweepInterval <= 0:
		return c, errors.New("config: INVENTORY_SWEEP_INTERVAL must be positive")
	case c.FaultsPoll <= 0:
		return c, errors.New("config: INVENTORY_FAULTS_POLL must be positive")
	case c.CommandConcurrency < 1:
		return c, errors.New("config: INVENTORY_COMMAND_CONCURRENCY must be 1 or more")
	case c.Relays < 1:
		return c, errors.New("config: INVENTORY_RELAYS must be 1 or more")
	}
	return c, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, _, err := httpx.ServiceTLS(getenv, "inventory")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, service, cfg.LogLevel)
	log.InfoContext(ctx, "starting", "http_addr", cfg.HTTPAddr,
		"database_url", config.Redact(cfg.DatabaseURL), "nats_url", config.Redact(cfg.NATSURL),
		"reservation_ttl", cfg.ReservationTTL.String(), "sweep_interval", cfg.SweepInterval.String(),
		"faults_poll", cfg.FaultsPoll.String(), "command_concurrency", cfg.CommandConcurrency,
		"max_inflight", cfg.Limits.MaxInflight, "shutdown_timeout", cfg.ShutdownTimeout.String(), "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, service, getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit
	// Profiling (net/http/pprof) on a loopback listener of its own, only when INVENTORY_DEBUG_ADDR is set.
	if _, err := obs.StartDebug(ctx, getenv("INVENTORY_DEBUG_ADDR"), log); err != nil {
		return fmt.Errorf("config: INVENTORY_DEBUG_ADDR: %w", err)
	}

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgpool.Open(startCtx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	if err := pgstore.Migrate(startCtx, pool); err != nil {
		return err
	}
	nc, err := broker.Connect(startCtx, cfg.NATSURL, service, log)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	if err := nc.EnsureStream(startCtx, service); err != nil {
		return err
	}
	if err := nc.EnsureDLQ(startCtx); err != nil {
		return err
	}
	// Chaos (crash points, duplicate delivery; shared/chaos): inert unless the platform's
	// runner started this process with INVENTORY_CRASH_ENABLED=1.
	chaosStore, err := pgchaos.New(startCtx, pool)
	if err != nil {
		return err
	}
	sw, err := chaos.New(startCtx, service, getenv, chaosStore, log)
	if err != nil {
		return err
	}
	nc.OnHandled(sw.ConsumerHook)

	// The lab pattern switch inventory.dedup (stored with the chaos switches, off = the
	// reserve's natural-key idempotency skipped; lab 03).
	svc := inventory.NewService(pgstore.New(pool), inventory.Options{TTL: cfg.ReservationTTL, Log: log,
		Dedup: func() bool { return sw.Pattern(chaos.PatternInventoryDedup) != chaos.DedupOff }})
	if _, err := svc.RefreshFaults(startCtx); err != nil {
		return err
	}

	// Background work gets a context the signal does not cancel: each part is stopped
	// explicitly, in order, so replies of the last commands still go out.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	obox := pgoutbox.New(pool)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(nc.Metrics())
	relay := outbox.NewRelay(obox, sw.Publisher(nc), log, outbox.WithMetrics(reg, "inventory")) // chaos: crash points, duplicates
	go sw.Run(bg, time.Second)
	// INVENTORY_RELAYS relays over the one outbox table: pgoutbox hands each event to one relay
	// and keeps the order per aggregate across relays, so they publish in parallel. One
	// relay publishes one event at a time and waits for the broker's ack (5 ms on average
	// under load), which capped it near 190 events/s (services/orders/README.md, Throughput).
	// Only the first reports the relay metrics (the publish histogram is of that relay).
	relayStops := []func(context.Context){outbox.Start(bg, relay)}
	for range cfg.Relays - 1 {
		relayStops = append(relayStops, outbox.Start(bg, outbox.NewRelay(obox, sw.Publisher(nc), log)))
	}
	stopRelay := func(ctx context.Context) {
		for _, stop := range relayStops {
			stop(ctx)
		}
	}
	sweepCtx, stopSweep := context.WithCancel(bg)
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		svc.RunSweeper(sweepCtx, cfg.SweepInterval)
	}()
	cons := consumer.Start(bg, nc, svc, log, consumer.Options{
		Concurrency: cfg.CommandConcurrency, PollEvery: cfg.FaultsPoll})

	api := httpapi.New(svc, log, map[string]func(context.Context) error{
		"postgres": pool.Ping,
		"nats":     nc.Ready,
	}, reg, httpapi.WithLimits(cfg.Limits))
	// chaos: /faults/chaos and /outbox (operator routes), in the shared middleware like the API's.
	handler := sw.Mount(api.Handler(), reg, pgchaos.OutboxStats(pool))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(handler, log, admin.Deps{Conn: nc, Outbox: obox, Stats: pgstats.Count(pool, pgstore.StatsQueries)}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// Shutdown: HTTP is down; finish and ack the commands in flight, stop the sweeper,
	// publish what they committed, then stop the relay, the broker and the pool (deferred).
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := cons.Stop(stopCtx); err != nil {
		log.Warn("stop consumers", "err", err)
	}
	cancelStop()
	stopSweep()
	<-sweepDone
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), 2*time.Second)
	stopRelay(drainCtx) // a last drain, then the relay ends
	cancelDrain()
	stopBG()
	obox.Close()
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
