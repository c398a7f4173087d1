// Command payments runs the Polyshop payments service, owner of charges and refunds in its own
// PostgreSQL database.
//
// This is the service's skeleton: it reads its configuration, reaches its own database and
// NATS with its own credentials, serves /healthz, /readyz and /metrics, and shuts down
// gracefully. Its domain arrives with the order saga (see README.md).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
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

// Config is the service's configuration, read once from the environment.
type Config struct {
	HTTPAddr        string        // PAYMENTS_HTTP_ADDR
	DatabaseURL     string        // PAYMENTS_DATABASE_URL (the payments role's own database)
	NATSURL         string        // PAYMENTS_NATS_URL (the payments NATS user)
	ShutdownTimeout time.Duration // PAYMENTS_SHUTDOWN_TIMEOUT
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	cfg := Config{
		HTTPAddr:        r.String("PAYMENTS_HTTP_ADDR", "127.0.0.1:8086"),
		DatabaseURL:     r.Required("PAYMENTS_DATABASE_URL"),
		NATSURL:         r.Required("PAYMENTS_NATS_URL"),
		ShutdownTimeout: r.Duration("PAYMENTS_SHUTDOWN_TIMEOUT", 10*time.Second),
	}
	return cfg, r.Err()
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, service, slog.LevelInfo)
	log.InfoContext(ctx, "starting", "addr", cfg.HTTPAddr,
		"database", config.Redact(cfg.DatabaseURL), "nats", config.Redact(cfg.NATSURL))

	shutdownTracing, err := obs.SetupTracing(ctx, service, getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdownTracing(context.Background())

	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()

	bus, err := broker.Connect(ctx, cfg.NATSURL, service, log)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer bus.Close()

	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	httpx.Health{Checks: map[string]func(context.Context) error{
		"postgres": pool.Ping,
		"nats":     bus.Ready,
	}}.Register(mux, reg)

	return httpx.Serve(ctx, cfg.HTTPAddr, httpx.Standard(service, log, reg, mux), log,
		httpx.WithShutdownTimeout(cfg.ShutdownTimeout))
}
