// Command payments runs the Polyshop payments service, owner of charges and refunds in its
// own PostgreSQL database: a participant of the order saga that charges each order at most
// once (the order id is the idempotency key), refunds as compensation, and carries the
// lab's fault switches. Replies and events leave through a transactional outbox relayed to
// the NATS stream PAYMENTS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/services/payments/internal/consumer"
	"polyshop/services/payments/internal/httpapi"
	"polyshop/services/payments/internal/payments"
	"polyshop/services/payments/internal/pgstore"
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

const service = "payments"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
}

// Config is the service's configuration, read once from the environment; see README.md.
type Config struct {
	HTTPAddr        string        // PAYMENTS_HTTP_ADDR
	DatabaseURL     string        // PAYMENTS_DATABASE_URL (the payments role's own database)
	NATSURL         string        // PAYMENTS_NATS_URL (the payments NATS user)
	Concurrency     int           // PAYMENTS_CONCURRENCY, per command consumer
	Relays          int           // PAYMENTS_RELAYS
	AckWait         time.Duration // PAYMENTS_ACK_WAIT
	FaultPoll       time.Duration // PAYMENTS_FAULT_POLL
	ShutdownTimeout time.Duration // PAYMENTS_SHUTDOWN_TIMEOUT
	// Limits bound the requests served at once (PAYMENTS_MAX_INFLIGHT).
	Limits   httpx.Limits
	LogLevel slog.Level // PAYMENTS_LOG_LEVEL
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	cfg := Config{
		HTTPAddr:        r.String("PAYMENTS_HTTP_ADDR", "127.0.0.1:8086"),
		DatabaseURL:     r.Required("PAYMENTS_DATABASE_URL"),
		NATSURL:         r.Required("PAYMENTS_NATS_URL"),
		Concurrency:     r.Int("PAYMENTS_CONCURRENCY", 16),
		Relays:          r.Int("PAYMENTS_RELAYS", 4),
		AckWait:         r.Duration("PAYMENTS_ACK_WAIT", 30*time.Second),
		FaultPoll:       r.Duration("PAYMENTS_FAULT_POLL", time.Second),
		ShutdownTimeout: r.Duration("PAYMENTS_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits:          httpx.Limits{MaxInflight: r.Int("PAYMENTS_MAX_INFLIGHT", httpapi.DefaultMaxInflight)},
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(r.String("PAYMENTS_LOG_LEVEL", "info"))); err != nil {
		return cfg, fmt.Errorf("PAYMENTS_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return cfg, err
	}
	if cfg.Limits.MaxInflight < 1 {
		return cfg, errors.New("PAYMENTS_MAX_INFLIGHT must be 1 or more")
	}
	if cfg.Concurrency < 1 {
		return cfg, errors.New("PAYMENTS_CONCURRENCY: must be at least 1")
	}
	if cfg.Relays < 1 {
		return cfg, errors.New("PAYMENTS_RELAYS: must be at least 1")
	}
	return cfg, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, _, err := httpx.ServiceTLS(getenv, "payments")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, service, cfg.LogLevel)
	log.InfoContext(ctx, "starting", "addr", cfg.HTTPAddr,
		"database", config.Redact(cfg.DatabaseURL), "nats", config.Redact(cfg.NATSURL),
		"concurrency", cfg.Concurrency, "ack_wait", cfg.AckWait.String(), "fault_poll", cfg.FaultPoll.String(),
		"max_inflight", cfg.Limits.MaxInflight, "shutdown_timeout", cfg.ShutdownTimeout.String(), "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, service, getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit
	// Profiling (net/http/pprof) on a loopback listener of its own, only when PAYMENTS_DEBUG_ADDR is set.
	if _, err := obs.StartDebug(ctx, getenv("PAYMENTS_DEBUG_ADDR"), log); err != nil {
		return fmt.Errorf("config: PAYMENTS_DEBUG_ADDR: %w", err)
	}

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgpool.Open(startCtx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	if err := pgstore.Migrate(startCtx, pool); err != nil {
		return err
	}
	bus, err := broker.Connect(startCtx, cfg.NATSURL, service, log)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer bus.Close()
	if err := bus.EnsureStream(startCtx, service); err != nil {
		return err
	}
	if err := bus.EnsureDLQ(startCtx); err != nil {
		return err
	}
	// Chaos (crash points, duplicate delivery; shared/chaos): inert unless the platform's
	// runner started this process with PAYMENTS_CRASH_ENABLED=1.
	chaosStore, err := pgchaos.New(startCtx, pool)
	if err != nil {
		return err
	}
	sw, err := chaos.New(startCtx, service, getenv, chaosStore, log)
	if err != nil {
		return err
	}
	bus.OnHandled(sw.ConsumerHook)

	svc := payments.NewService(pgstore.New(pool), payments.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(bus.Metrics())
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payments_commands_total",
		Help: "Saga commands handled, by verb, reply and whether the reply repeats a stored one; reply \"error\" = not handled (redelivered).",
	}, []string{"verb", "reply", "resent"})
	reg.MustRegister(commands)

	// The relay runs until the consumers have stopped, so replies of the last commands
	// still go out.
	swCtx, stopSw := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSw()
	obox := pgoutbox.New(pool)
	relay := outbox.NewRelay(obox, sw.Publisher(bus), log, outbox.WithMetrics(reg, "payments")) // chaos: crash points, duplicates
	go sw.Run(swCtx, time.Second)
	// PAYMENTS_RELAYS relays over the one outbox table: pgoutbox hands each event to one relay
	// and keeps the order per aggregate across relays, so they publish in parallel. One
	// relay publishes one event at a time and waits for the broker's ack (5 ms on average
	// under load), which capped it near 190 events/s (services/orders/README.md, Throughput).
	// Only the first reports the relay metrics (the publish histogram is of that relay).
	relayStops := []func(context.Context){outbox.Start(ctx, relay)}
	for range cfg.Relays - 1 {
		relayStops = append(relayStops, outbox.Start(ctx, outbox.NewRelay(obox, sw.Publisher(bus), log)))
	}
	stopRelay := func(ctx context.Context) {
		for _, stop := range relayStops {
			stop(ctx)
		}
	}

	group := consumer.Start(ctx, bus, svc, log, consumer.Options{
		Concurrency: cfg.Concurrency, AckWait: cfg.AckWait, PollEvery: cfg.FaultPoll,
	}, func(verb string, o payments.Outcome, err error) {
		if err != nil {
			commands.WithLabelValues(verb, "error", "false").Inc()
			return
		}
		commands.WithLabelValues(verb, o.Reply, strconv.FormatBool(o.Resent)).Inc()
	})

	api := httpapi.New(svc, log, map[string]func(context.Context) error{
		"postgres": pool.Ping,
		"nats":     bus.Ready,
	}, reg, httpapi.WithLimits(cfg.Limits))
	// chaos: /faults/chaos and /outbox (operator routes), in the shared middleware like the API's.
	handler := sw.Mount(api.Handler(), reg, pgchaos.OutboxStats(pool))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(handler, log, admin.Deps{Conn: bus, Outbox: obox, Stats: pgstats.Count(pool, pgstore.StatsQueries)}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// Shutdown: stop taking commands and finish (and acknowledge) those in flight, publish
	// what they committed, then stop the relay, the broker and the pool (deferred).
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.AckWait+5*time.Second)
	if err := group.Stop(stopCtx); err != nil {
		log.Warn("stop consumers", "err", err)
	}
	cancelStop()
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), 2*time.Second)
	stopRelay(drainCtx) // a last drain, then the relay ends
	cancelDrain()
	stopSw()
	obox.Close()
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
