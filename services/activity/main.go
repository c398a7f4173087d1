// Command activity is Polyshop's activity service: a CQRS read model in Cassandra fed by
// other services' events (users, sessions, catalog), serving each user's feed newest first
// with cursor paging across monthly partitions, and a global recent-activity feed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/services/activity/internal/activity"
	"polyshop/services/activity/internal/consumer"
	"polyshop/services/activity/internal/cqlstore"
	"polyshop/services/activity/internal/httpapi"
	"polyshop/services/activity/migrations"
	"polyshop/shared/admin"
	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "activity:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration; see README.md for each variable.
type Config struct {
	HTTPAddr            string
	Cassandra           cqlstore.Config
	NATSURL             string
	ConsumerConcurrency int
	RecentDays          int
	StartTimeout        time.Duration
	ShutdownTimeout     time.Duration
	// Limits bound the requests served at once (ACTIVITY_MAX_INFLIGHT).
	Limits   httpx.Limits
	LogLevel slog.Level
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	c := Config{
		HTTPAddr: r.String("ACTIVITY_HTTP_ADDR", "127.0.0.1:8087"),
		Cassandra: cqlstore.Config{
			Hosts:          splitList(r.String("ACTIVITY_CASSANDRA_HOSTS", "127.0.0.1:9042")),
			Username:       r.String("ACTIVITY_CASSANDRA_USERNAME", "activity"),
			Password:       r.Required("ACTIVITY_CASSANDRA_PASSWORD"),
			Keyspace:       r.String("ACTIVITY_CASSANDRA_KEYSPACE", "activity"),
			Consistency:    r.String("ACTIVITY_CASSANDRA_CONSISTENCY", "LOCAL_QUORUM"),
			LocalDC:        r.String("ACTIVITY_CASSANDRA_LOCAL_DC", ""),
			Timeout:        r.Duration("ACTIVITY_CASSANDRA_TIMEOUT", 5*time.Second),
			ConnectTimeout: r.Duration("ACTIVITY_CASSANDRA_CONNECT_TIMEOUT", 5*time.Second),
		},
		NATSURL:             r.Required("ACTIVITY_NATS_URL"),
		ConsumerConcurrency: r.Int("ACTIVITY_CONSUMER_CONCURRENCY", 8),
		RecentDays:          r.Int("ACTIVITY_RECENT_DAYS", activity.DefaultRecentDays),
		StartTimeout:        r.Duration("ACTIVITY_START_TIMEOUT", 60*time.Second),
		ShutdownTimeout:     r.Duration("ACTIVITY_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits:              httpx.Limits{MaxInflight: r.Int("ACTIVITY_MAX_INFLIGHT", httpapi.DefaultMaxInflight)},
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("ACTIVITY_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("ACTIVITY_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.Limits.MaxInflight < 1 {
		return c, errors.New("config: ACTIVITY_MAX_INFLIGHT must be 1 or more")
	}
	if len(c.Cassandra.Hosts) == 0 {
		return c, errors.New("config: ACTIVITY_CASSANDRA_HOSTS: no host")
	}
	if c.ConsumerConcurrency < 1 || c.RecentDays < 1 {
		return c, errors.New("config: ACTIVITY_CONSUMER_CONCURRENCY and ACTIVITY_RECENT_DAYS must be at least 1")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, _, err := httpx.ServiceTLS(getenv, "activity")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, "activity", cfg.LogLevel)
	log.InfoContext(ctx, "starting", "http_addr", cfg.HTTPAddr,
		"cassandra_hosts", cfg.Cassandra.Hosts, "cassandra_username", cfg.Cassandra.Username,
		"cassandra_password", "***", "cassandra_keyspace", cfg.Cassandra.Keyspace,
		"cassandra_consistency", cfg.Cassandra.Consistency, "cassandra_local_dc", cfg.Cassandra.LocalDC,
		"cassandra_timeout", cfg.Cassandra.Timeout.String(),
		"nats_url", config.Redact(cfg.NATSURL), "consumer_concurrency", cfg.ConsumerConcurrency,
		"recent_days", cfg.RecentDays, "start_timeout", cfg.StartTimeout.String(),
		"max_inflight", cfg.Limits.MaxInflight, "shutdown_timeout", cfg.ShutdownTimeout.String(), "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, "activity", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit

	startCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	store, err := cqlstore.Open(startCtx, cfg.Cassandra, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := cqlstore.Migrate(startCtx, store.Session(), migrations.FS, log); err != nil {
		return err
	}
	nc, err := broker.Connect(startCtx, cfg.NATSURL, "activity", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.EnsureDLQ(startCtx); err != nil {
		return err
	}

	svc := activity.NewService(store, log, activity.Options{RecentDays: cfg.RecentDays})
	// Consumers get a context that the signal does not cancel: they are stopped explicitly,
	// after the HTTP server, so that their in-flight events are acknowledged.
	group := consumer.Start(context.WithoutCancel(ctx), nc, svc.Apply, consumer.Options{
		Concurrency: cfg.ConsumerConcurrency,
	})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(nc.Metrics())
	health := httpx.Health{Checks: map[string]func(context.Context) error{
		"cassandra": store.Ping,
		"nats":      nc.Ready,
	}}
	api := httpapi.New(svc, log, health.Checks, reg, httpapi.WithLimits(cfg.Limits))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(api.Handler(), log, admin.Deps{Conn: nc, Outbox: nil}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// HTTP is down: let the consumers finish and acknowledge what they hold; the broker
	// connection and then the store close in the deferred calls (in that order).
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := group.Stop(stopCtx); err != nil {
		log.Warn("stop consumers", "err", err)
	}
	cancelStop()
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
