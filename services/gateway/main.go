// Command gateway is Polyshop's public entry point: a stateless backend-for-frontend that
// authenticates at the edge and forwards to, or composes from, the internal services.
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
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/services/gateway/internal/eventhub"
	"polyshop/services/gateway/internal/httpapi"
	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// Config is the gateway's configuration; see README.md.
type Config struct {
	HTTPAddr        string
	AdminAddr       string
	Up              httpapi.Upstreams
	AuthCacheTTL    time.Duration
	CookieSecure    bool
	UpstreamTimeout time.Duration
	ComposeTimeout  time.Duration
	ShutdownTimeout time.Duration
	// Limits bound the public requests served at once (GATEWAY_MAX_INFLIGHT) and put a
	// deadline on each (GATEWAY_REQUEST_TIMEOUT); the live event stream is outside both.
	Limits   httpx.Limits
	LogLevel slog.Level
	// NATSURL is the gateway's own NATS user, for the live event view and the console's
	// stream and consumer info; empty disables both (their routes answer 503).
	NATSURL      string
	EventsBuffer int
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	c := Config{
		HTTPAddr:  r.String("GATEWAY_HTTP_ADDR", "127.0.0.1:8080"),
		AdminAddr: r.String("GATEWAY_ADMIN_ADDR", "127.0.0.1:9080"),
		Up: httpapi.Upstreams{
			Users:     r.String("USERS_URL", "http://127.0.0.1:8081"),
			Sessions:  r.String("SESSIONS_URL", "http://127.0.0.1:8082"),
			Catalog:   r.String("CATALOG_URL", "http://127.0.0.1:8083"),
			Inventory: r.String("INVENTORY_URL", "http://127.0.0.1:8084"),
			Orders:    r.String("ORDERS_URL", "http://127.0.0.1:8085"),
			Payments:  r.String("PAYMENTS_URL", "http://127.0.0.1:8086"),
			Activity:  r.String("ACTIVITY_URL", "http://127.0.0.1:8087"),
			Search:    r.String("SEARCH_URL", "http://127.0.0.1:8088"),
		},
		AuthCacheTTL:    r.Duration("GATEWAY_AUTH_CACHE_TTL", httpapi.DefaultAuthCacheTTL),
		CookieSecure:    r.Bool("GATEWAY_COOKIE_SECURE", false),
		UpstreamTimeout: r.Duration("GATEWAY_UPSTREAM_TIMEOUT", 10*time.Second),
		ComposeTimeout:  r.Duration("GATEWAY_COMPOSE_TIMEOUT", httpapi.DefaultComposeTimeout),
		ShutdownTimeout: r.Duration("GATEWAY_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits: httpx.Limits{
			MaxInflight:    r.Int("GATEWAY_MAX_INFLIGHT", httpapi.DefaultMaxInflight),
			RequestTimeout: r.Duration("GATEWAY_REQUEST_TIMEOUT", 10*time.Second),
		},
		NATSURL:      r.String("GATEWAY_NATS_URL", ""),
		EventsBuffer: r.Int("GATEWAY_EVENTS_BUFFER", eventhub.DefaultBuffer),
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("GATEWAY_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("GATEWAY_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.ComposeTimeout <= 0 {
		return c, fmt.Errorf("config: GATEWAY_COMPOSE_TIMEOUT=%s: must be positive", c.ComposeTimeout)
	}
	if c.EventsBuffer < 1 || c.EventsBuffer > 100_000 {
		return c, fmt.Errorf("config: GATEWAY_EVENTS_BUFFER=%d: must be 1 to 100000", c.EventsBuffer)
	}
	if c.AuthCacheTTL > httpapi.DefaultAuthCacheTTL {
		return c, fmt.Errorf("config: GATEWAY_AUTH_CACHE_TTL=%s: at most %s, so logouts take effect within a second", c.AuthCacheTTL, httpapi.DefaultAuthCacheTTL)
	}
	return c, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := obs.NewLogger(stdout, "gateway", cfg.LogLevel)
	log.InfoContext(ctx, "starting", "http_addr", cfg.HTTPAddr, "admin_addr", cfg.AdminAddr, "upstreams", cfg.Up,
		"auth_cache_ttl", cfg.AuthCacheTTL.String(), "cookie_secure", cfg.CookieSecure,
		"upstream_timeout", cfg.UpstreamTimeout.String(), "compose_timeout", cfg.ComposeTimeout.String(), "shutdown_timeout", cfg.ShutdownTimeout.String(),
		"max_inflight", cfg.Limits.MaxInflight, "request_timeout", cfg.Limits.RequestTimeout.String(),
		"nats_url", config.Redact(cfg.NATSURL), "events_buffer", cfg.EventsBuffer)

	shutdownTracing, err := obs.SetupTracing(ctx, "gateway", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit
	// Profiling (net/http/pprof) on a loopback listener of its own, only when GATEWAY_DEBUG_ADDR is set.
	if _, err := obs.StartDebug(ctx, getenv("GATEWAY_DEBUG_ADDR"), log); err != nil {
		return fmt.Errorf("config: GATEWAY_DEBUG_ADDR: %w", err)
	}

	// Mutual TLS towards the internal services (GATEWAY_TLS_CERT/KEY/CA, their URLs https://):
	// the gateway presents its own certificate. Its public port and its admin listener stay
	// plain HTTP. Unset: plain HTTP to plain-HTTP services.
	_, cliTLS, err := httpx.ServiceTLS(getenv, "gateway")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Idle connections kept per upstream: enough for the in-flight bound's share of one
	// service, so requests under load reuse connections instead of opening one each.
	client := httpx.NewClient(cfg.UpstreamTimeout, httpx.WithClientTLS(cliTLS), httpx.WithMaxIdleConnsPerHost(64))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Ready when the services that authentication depends on answer.
	checks := map[string]func(context.Context) error{
		"users":    healthCheck(client, cfg.Up.Users),
		"sessions": healthCheck(client, cfg.Up.Sessions),
	}
	opts := []httpapi.Option{httpapi.WithAuthCacheTTL(cfg.AuthCacheTTL),
		httpapi.WithSecureCookie(cfg.CookieSecure), httpapi.WithRegistry(reg), httpapi.WithChecks(checks),
		httpapi.WithComposeTimeout(cfg.ComposeTimeout), httpapi.WithLimits(cfg.Limits)}
	if cfg.NATSURL != "" {
		// The live event view: one ordered consumer per owner stream feeds every viewer.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nc, err := broker.Connect(cctx, cfg.NATSURL, "gateway", log)
		cancel()
		if err != nil {
			return err
		}
		defer nc.Close()
		hub := eventhub.New(nc.JetStream(), eventhub.Config{Buffer: cfg.EventsBuffer, Log: log})
		hubCtx, stopHub := context.WithCancel(ctx)
		defer stopHub()
		go hub.Run(hubCtx)
		opts = append(opts, httpapi.WithEvents(hub, nc.JetStream()))
	} else {
		log.WarnContext(ctx, "GATEWAY_NATS_URL is not set: the live event view and the console's broker view are off")
	}
	api := httpapi.New(log, client, cfg.Up, opts...)
	// The public port and the loopback admin port (metrics, detailed readiness) live and
	// stop together: either one failing stops the other.
	srvCtx, stopServing := context.WithCancel(ctx)
	adminErr := make(chan error, 1)
	go func() {
		err := httpx.Serve(srvCtx, cfg.AdminAddr, api.AdminRoutes(), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout))
		stopServing()
		adminErr <- err
	}()
	err = httpx.Serve(srvCtx, cfg.HTTPAddr, api.Routes(), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout))
	stopServing()
	if aerr := <-adminErr; (err == nil || errors.Is(err, context.Canceled)) && aerr != nil && !errors.Is(aerr, context.Canceled) {
		err = fmt.Errorf("admin listener %s: %w", cfg.AdminAddr, aerr)
	}
	log.Info("stopped")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func healthCheck(client *http.Client, base string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}
}
