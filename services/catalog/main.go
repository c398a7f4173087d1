// Command catalog is Polyshop's catalog service: products with category-specific nested
// attributes in MongoDB (FerretDB natively), each change written together with its events in
// one single-document update and relayed to the NATS stream CATALOG.
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
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/services/catalog/internal/httpapi"
	"polyshop/services/catalog/internal/mongostore"
	"polyshop/shared/admin"
	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
	"polyshop/shared/outbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration; see README.md for each variable.
type Config struct {
	HTTPAddr        string
	MongoURI        string
	MongoDatabase   string
	NATSURL         string
	OutboxScan      time.Duration
	OutboxBatch     int
	LeaseTTL        time.Duration
	LeaseWait       time.Duration
	ShutdownTimeout time.Duration
	// Limits bound the requests served at once (CATALOG_MAX_INFLIGHT) and put a deadline
	// on each (CATALOG_REQUEST_TIMEOUT); exports and /admin routes are outside both.
	Limits   httpx.Limits
	LogLevel slog.Level
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	c := Config{
		HTTPAddr:        r.String("CATALOG_HTTP_ADDR", "127.0.0.1:8083"),
		MongoURI:        r.Required("CATALOG_MONGODB_URI"),
		MongoDatabase:   r.String("CATALOG_MONGODB_DATABASE", "catalog"),
		NATSURL:         r.Required("CATALOG_NATS_URL"),
		OutboxScan:      r.Duration("CATALOG_OUTBOX_SCAN_INTERVAL", 30*time.Second),
		OutboxBatch:     r.Int("CATALOG_OUTBOX_BATCH", 500),
		LeaseTTL:        r.Duration("CATALOG_LEASE_TTL", 10*time.Second),
		LeaseWait:       r.Duration("CATALOG_LEASE_WAIT", 15*time.Second),
		ShutdownTimeout: r.Duration("CATALOG_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits: httpx.Limits{
			MaxInflight:    r.Int("CATALOG_MAX_INFLIGHT", httpapi.DefaultMaxInflight),
			RequestTimeout: r.Duration("CATALOG_REQUEST_TIMEOUT", httpapi.DefaultRequestTimeout),
		},
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("CATALOG_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("CATALOG_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, _, err := httpx.ServiceTLS(getenv, "catalog")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, "catalog", cfg.LogLevel)
	log.InfoContext(ctx, "starting", "http_addr", cfg.HTTPAddr,
		"mongodb_uri", config.Redact(cfg.MongoURI), "mongodb_database", cfg.MongoDatabase,
		"nats_url", config.Redact(cfg.NATSURL), "outbox_scan_interval", cfg.OutboxScan.String(), "outbox_batch", cfg.OutboxBatch,
		"shutdown_timeout", cfg.ShutdownTimeout.String(),
		"max_inflight", cfg.Limits.MaxInflight, "request_timeout", cfg.Limits.RequestTimeout.String(), "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, "catalog", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(startCtx, options.Client().ApplyURI(cfg.MongoURI).SetServerSelectionTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("mongodb: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()
	store, err := mongostore.New(startCtx, client.Database(cfg.MongoDatabase))
	if err != nil {
		return err
	}
	if err := store.Migrate(startCtx); err != nil {
		return err
	}
	// On FerretDB the version guard lives in this process, so only one instance may write:
	// hold the writer lease for as long as the service runs, and stop if it is lost.
	if store.SingleWriter() {
		lease, err := acquireLease(ctx, client.Database(cfg.MongoDatabase), cfg, log)
		if err != nil {
			return err
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = lease.Release(rctx)
		}()
		var stopServing context.CancelCauseFunc
		ctx, stopServing = context.WithCancelCause(ctx)
		go func() {
			if err := lease.Keep(ctx); err != nil {
				log.ErrorContext(ctx, "writer lease lost; stopping", "err", err)
				stopServing(err)
			}
		}()
	}
	nc, err := broker.Connect(startCtx, cfg.NATSURL, "catalog", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.EnsureStream(startCtx, "catalog"); err != nil {
		return err
	}

	svc := catalog.NewService(store)

	// The relay outlives the HTTP server, so events of the last requests still go out.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(nc.Metrics())
	obox := mongostore.NewOutbox(store, cfg.OutboxScan)
	stopRelay := outbox.Start(ctx, outbox.NewRelay(obox, nc, log, outbox.WithBatch(cfg.OutboxBatch), outbox.WithMetrics(reg, "catalog")))

	health := httpx.Health{Checks: map[string]func(context.Context) error{
		"mongodb": store.Ping,
		"nats":    nc.Ready,
	}}
	api := httpapi.New(svc, log, health.Checks, reg, httpapi.WithLimits(cfg.Limits))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(api.Handler(), log, admin.Deps{Conn: nc, Outbox: obox}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// HTTP is down: publish what the last requests stored, then stop the relay; the
	// broker and the client close in the deferred calls.
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), 2*time.Second)
	stopRelay(drainCtx) // a last drain, then the relay ends
	cancelDrain()
	log.Info("stopped")
	if cause := context.Cause(ctx); errors.Is(cause, mongostore.ErrLeaseLost) {
		return cause
	}
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}

// acquireLease takes the catalog's writer lease, waiting up to cfg.LeaseWait for a lease
// left by a killed instance to expire; a live instance's lease makes the start fail.
func acquireLease(ctx context.Context, db *mongo.Database, cfg Config, log *slog.Logger) (*mongostore.Lease, error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
	deadline := time.Now().Add(cfg.LeaseWait)
	for {
		lease, err := mongostore.AcquireLease(ctx, db, holder, cfg.LeaseTTL)
		if err == nil {
			log.InfoContext(ctx, "writer lease taken", "holder", holder, "ttl", cfg.LeaseTTL.String())
			return lease, nil
		}
		if !errors.Is(err, mongostore.ErrLeaseHeld) || time.Now().After(deadline) {
			return nil, fmt.Errorf("catalog writes through FerretDB need a single writer: %w", err)
		}
		log.WarnContext(ctx, "waiting for the writer lease", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
