// Command orders runs the Polyshop orders service: orders and the saga that places them
// (reserve stock → charge → commit, compensations in reverse), with local copies of
// customer addresses and product prices, in its own PostgreSQL database. Commands and
// order events leave through a transactional outbox to the NATS stream ORDERS; replies
// come from the streams INVENTORY and PAYMENTS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/services/orders/internal/consumer"
	"polyshop/services/orders/internal/httpapi"
	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/internal/pgstore"
	"polyshop/services/orders/internal/usersapi"
	"polyshop/shared/admin"
	"polyshop/shared/broker"
	"polyshop/shared/chaos"
	"polyshop/shared/chaos/pgchaos"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgpool"
	"polyshop/shared/rebuild"
)

const service = "orders"

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
	HTTPAddr        string        // ORDERS_HTTP_ADDR
	DatabaseURL     string        // ORDERS_DATABASE_URL (the orders role's own database)
	NATSURL         string        // ORDERS_NATS_URL (the orders NATS user)
	ShutdownTimeout time.Duration // ORDERS_SHUTDOWN_TIMEOUT
	// Limits bound the requests served at once (ORDERS_MAX_INFLIGHT).
	Limits              httpx.Limits
	LogLevel            slog.Level    // ORDERS_LOG_LEVEL
	Timing              orders.Timing // ORDERS_STEP_TIMEOUT, _SAGA_TIMEOUT, _RETRY_INTERVAL, _SETTLE_RETRY, _MAX_BACKOFF
	TimerPoll           time.Duration // ORDERS_TIMER_POLL
	TimerBatch          int           // ORDERS_TIMER_BATCH
	TimerRate           int           // ORDERS_TIMER_RATE (timer-driven sagas per second; 0 = unbounded)
	ConsumerConcurrency int           // ORDERS_CONSUMER_CONCURRENCY
	Relays              int           // ORDERS_RELAYS
	UsersURL            string        // USERS_URL (GET /export/addresses, for rebuilding the copies)
	CatalogURL          string        // CATALOG_URL (GET /export/products, for rebuilding the copies)
	AddressTimeout      time.Duration // ORDERS_ADDRESS_TIMEOUT (GET /users/{id} at order time, pattern switch orders.addressCopy=sync)
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	d := orders.DefaultTiming
	cfg := Config{
		HTTPAddr:        r.String("ORDERS_HTTP_ADDR", "127.0.0.1:8085"),
		DatabaseURL:     r.Required("ORDERS_DATABASE_URL"),
		NATSURL:         r.Required("ORDERS_NATS_URL"),
		ShutdownTimeout: r.Duration("ORDERS_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits:          httpx.Limits{MaxInflight: r.Int("ORDERS_MAX_INFLIGHT", httpapi.DefaultMaxInflight)},
		Timing: orders.Timing{
			StepTimeout:   r.Duration("ORDERS_STEP_TIMEOUT", d.StepTimeout),
			SagaTimeout:   r.Duration("ORDERS_SAGA_TIMEOUT", d.SagaTimeout),
			RetryInterval: r.Duration("ORDERS_RETRY_INTERVAL", d.RetryInterval),
			SettleRetry:   r.Duration("ORDERS_SETTLE_RETRY", d.SettleRetry),
			MaxBackoff:    r.Duration("ORDERS_MAX_BACKOFF", d.MaxBackoff),
		},
		TimerPoll:           r.Duration("ORDERS_TIMER_POLL", 200*time.Millisecond),
		TimerBatch:          r.Int("ORDERS_TIMER_BATCH", 100),
		TimerRate:           r.Int("ORDERS_TIMER_RATE", 20),
		ConsumerConcurrency: r.Int("ORDERS_CONSUMER_CONCURRENCY", 16),
		Relays:              r.Int("ORDERS_RELAYS", 4),
		UsersURL:            r.String("USERS_URL", "http://127.0.0.1:8081"),
		CatalogURL:          r.String("CATALOG_URL", "http://127.0.0.1:8083"),
		AddressTimeout:      r.Duration("ORDERS_ADDRESS_TIMEOUT", 2*time.Second),
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(r.String("ORDERS_LOG_LEVEL", "info"))); err != nil {
		return cfg, fmt.Errorf("ORDERS_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return cfg, err
	}
	if cfg.Limits.MaxInflight < 1 {
		return cfg, errors.New("ORDERS_MAX_INFLIGHT must be 1 or more")
	}
	t := cfg.Timing
	switch {
	case t.StepTimeout <= 0 || t.SagaTimeout <= 0 || t.RetryInterval <= 0 || t.SettleRetry <= 0 || t.MaxBackoff <= 0:
		return cfg, errors.New("ORDERS_STEP_TIMEOUT, ORDERS_SAGA_TIMEOUT, ORDERS_RETRY_INTERVAL, ORDERS_SETTLE_RETRY and ORDERS_MAX_BACKOFF must be positive")
	case cfg.TimerPoll <= 0 || cfg.TimerBatch < 1 || cfg.ConsumerConcurrency < 1 || cfg.Relays < 1:
		return cfg, errors.New("ORDERS_TIMER_POLL, ORDERS_TIMER_BATCH, ORDERS_CONSUMER_CONCURRENCY and ORDERS_RELAYS must be positive")
	case cfg.TimerRate < 0:
		return cfg, errors.New("ORDERS_TIMER_RATE must be 0 (unbounded) or positive")
	}
	return cfg, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, cliTLS, err := httpx.ServiceTLS(getenv, "orders")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, service, cfg.LogLevel)
	log.InfoContext(ctx, "starting", "addr", cfg.HTTPAddr,
		"database", config.Redact(cfg.DatabaseURL), "nats", config.Redact(cfg.NATSURL),
		"step_timeout", cfg.Timing.StepTimeout.String(), "saga_timeout", cfg.Timing.SagaTimeout.String(),
		"retry_interval", cfg.Timing.RetryInterval.String(), "settle_retry", cfg.Timing.SettleRetry.String(), "max_backoff", cfg.Timing.MaxBackoff.String(),
		"timer_poll", cfg.TimerPoll.String(), "timer_batch", cfg.TimerBatch, "timer_rate", cfg.TimerRate,
		"consumer_concurrency", cfg.ConsumerConcurrency, "users_url", cfg.UsersURL, "catalog_url", cfg.CatalogURL, "shutdown_timeout", cfg.ShutdownTimeout.String(),
		"max_inflight", cfg.Limits.MaxInflight, "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, service, getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit
	// Profiling (net/http/pprof) on a loopback listener of its own, only when ORDERS_DEBUG_ADDR is set.
	if _, err := obs.StartDebug(ctx, getenv("ORDERS_DEBUG_ADDR"), log); err != nil {
		return fmt.Errorf("config: ORDERS_DEBUG_ADDR: %w", err)
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
	// runner started this process with ORDERS_CRASH_ENABLED=1.
	chaosStore, err := pgchaos.New(startCtx, pool)
	if err != nil {
		return err
	}
	sw, err := chaos.New(startCtx, service, getenv, chaosStore, log)
	if err != nil {
		return err
	}
	bus.OnHandled(sw.ConsumerHook)

	svc := orders.NewService(pgstore.New(pool, cfg.Timing.StepTimeout), cfg.Timing, log)
	// POST /admin/rebuild-copies: the copies from the owners' exports plus the streams' tails.
	hc := httpx.NewClient(30*time.Second, httpx.WithClientTLS(cliTLS))
	usersFeed, catalogFeed := consumer.CopyFeeds(service)
	svc.SetCopySources(orders.CopySources{
		Rebuilder: rebuild.New(bus.JetStream(), 500, log),
		Addresses: rebuild.HTTPExport[rebuild.AddressRecord]{URL: cfg.UsersURL + "/export/addresses", Client: hc},
		Products:  rebuild.HTTPExport[rebuild.ProductRecord]{URL: cfg.CatalogURL + "/export/products", Client: hc},
		Users:     usersFeed, Catalog: catalogFeed,
	})
	// The lab pattern switch orders.addressCopy (stored with the chaos switches): sync reads
	// the address from users at order time instead of the local copy.
	svc.SetAddressSource(orders.AddressSource{
		Sync: func() bool { return sw.Pattern(chaos.PatternOrdersAddressCopy) == chaos.CopySync },
		Read: usersapi.Reader(hc, cfg.UsersURL, cfg.AddressTimeout),
	})

	// Background work runs on a context of its own, stopped after the HTTP server, so
	// commands of the last requests still go out.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	obox := pgoutbox.New(pool)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(bus.Metrics())
	relay := outbox.NewRelay(obox, sw.Publisher(bus), log, outbox.WithMetrics(reg, "orders")) // chaos: crash points, duplicates
	go sw.Run(bg, time.Second)
	// ORDERS_RELAYS relays over the one outbox table: pgoutbox hands each event to one relay
	// and keeps the order per aggregate across relays, so they publish in parallel. One
	// relay publishes one event at a time and waits for the broker's ack (5 ms on average
	// under load), which capped it near 190 events/s (services/orders/README.md, Throughput).
	// Only the first reports the relay metrics (the publish histogram is of that relay).
	relayStops := []func(context.Context){outbox.Start(bg, relay)}
	for range cfg.Relays - 1 {
		relayStops = append(relayStops, outbox.Start(bg, outbox.NewRelay(obox, sw.Publisher(bus), log)))
	}
	stopRelay := func(ctx context.Context) {
		for _, stop := range relayStops {
			stop(ctx)
		}
	}
	timersCtx, stopTimers := context.WithCancel(bg)
	timersDone := make(chan struct{})
	go func() {
		defer close(timersDone)
		svc.TimerLoop(timersCtx, cfg.TimerPoll, cfg.TimerBatch, cfg.TimerRate)
	}()
	group := consumer.Start(bg, bus, svc, consumer.Specs(service),
		consumer.Options{Concurrency: cfg.ConsumerConcurrency})

	api := httpapi.New(svc, log, map[string]func(context.Context) error{
		"postgres": pool.Ping,
		"nats":     bus.Ready,
	}, reg, httpapi.WithLimits(cfg.Limits))
	// chaos: /faults/chaos and /outbox (operator routes), in the shared middleware like the
	// API's, and the crash point between a committed POST /orders and its 202.
	handler := sw.Mount(sw.BeforeResponse(service+"."+chaos.PlacePlaceBeforeReply, func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Path == "/orders"
	})(api.Handler()), reg, pgchaos.OutboxStats(pool))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(handler, log, admin.Deps{Conn: bus, Outbox: obox}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// Shutdown: HTTP is down; stop the consumers after their in-flight replies, then the
	// timers, publish what was committed, stop the relay; the broker and pool close last.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelStop()
	if err := group.Stop(stopCtx); err != nil {
		log.Warn("stop consumers", "err", err)
	}
	stopTimers()
	<-timersDone
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
