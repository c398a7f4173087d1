// Command search is Polyshop's product search: a read model (CQRS) in Elasticsearch fed by
// the catalog's events and inventory's stock_changed, rebuildable at any time from the
// owners' exports plus the tails of CATALOG and INVENTORY (snapshot + tail, shared/rebuild).
//
//	search           serve the HTTP API and consume catalog and inventory events (default)
//	search rebuild   build a new index from the exports and the streams' tails, check it
//	                 against the catalog, and swap the alias (refused on drift: exit 1)
//	search drift     compare the index with the catalog and print the differences
package main

import (
	"context"
	"encoding/json"
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

	"polyshop/services/search/internal/catalogclient"
	"polyshop/services/search/internal/esindex"
	"polyshop/services/search/internal/httpapi"
	"polyshop/services/search/internal/search"
	"polyshop/shared/admin"
	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
	"polyshop/shared/rebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Args[1:]...); err != nil {
		fmt.Fprintln(os.Stderr, "search:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration; see README.md for each variable.
type Config struct {
	HTTPAddr     string
	ES           esindex.Config
	NATSURL      string
	Durable      string
	StockDurable string
	Concurrency  int
	CatalogURL   string
	InventoryURL string
	// Service tunes the read model: the rebuild's drift check, the caches, the bound on
	// searches in Elasticsearch.
	Service         search.Options
	ShutdownTimeout time.Duration
	// Limits bound the requests served at once (SEARCH_MAX_INFLIGHT) and put a deadline on
	// each (SEARCH_REQUEST_TIMEOUT); the operator's /admin routes are outside both.
	Limits   httpx.Limits
	LogLevel slog.Level
}

// DefaultRefreshInterval is how often Elasticsearch makes new writes searchable
// (SEARCH_REFRESH_INTERVAL), the largest part of the change→searchable lag; the README's
// "Change → searchable" section has the measurements behind the choice.
const DefaultRefreshInterval = 100 * time.Millisecond

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	refresh := r.Duration("SEARCH_REFRESH_INTERVAL", DefaultRefreshInterval)
	c := Config{
		HTTPAddr: r.String("SEARCH_HTTP_ADDR", "127.0.0.1:8088"),
		ES: esindex.Config{
			URL:      r.Required("SEARCH_ELASTICSEARCH_URL"),
			Username: r.String("SEARCH_ELASTICSEARCH_USERNAME", "search"),
			Password: r.String("SEARCH_ELASTICSEARCH_PASSWORD", ""),
			Alias:    r.String("SEARCH_ELASTICSEARCH_ALIAS", "products"),
			// Required positive: Elasticsearch's -1 (never refresh) would make search
			// show nothing new, ever.
			RefreshInterval: refresh,
		},
		NATSURL:      r.Required("SEARCH_NATS_URL"),
		Durable:      r.String("SEARCH_CONSUMER", "search"),
		StockDurable: r.String("SEARCH_INVENTORY_CONSUMER", "search-inventory"),
		Concurrency:  r.Int("SEARCH_CONSUMER_CONCURRENCY", 4),
		CatalogURL:   r.String("CATALOG_URL", "http://127.0.0.1:8083"),
		InventoryURL: r.String("INVENTORY_URL", "http://127.0.0.1:8084"),
		Service: search.Options{
			DriftRounds: r.Int("SEARCH_REBUILD_DRIFT_ROUNDS", 3),
			DriftPause:  r.Duration("SEARCH_REBUILD_DRIFT_PAUSE", time.Second),
			// Changes this process applies clear the cache, and a page read before their
			// refresh is kept only until it, so the TTL bounds only how long a change
			// applied by another instance (they share the durable) goes unseen here.
			ListCacheTTL: r.Duration("SEARCH_LIST_CACHE_TTL", time.Second),
			// The same for search results; every change this process applies clears them.
			QueryCacheTTL: r.Duration("SEARCH_QUERY_CACHE_TTL", time.Second),
			QueryInflight: r.Int("SEARCH_QUERY_MAX_INFLIGHT", search.DefaultQueryInflight),
			Refresh:       refresh,
		},
		ShutdownTimeout: r.Duration("SEARCH_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits: httpx.Limits{
			MaxInflight:    r.Int("SEARCH_MAX_INFLIGHT", httpapi.DefaultMaxInflight),
			RequestTimeout: r.Duration("SEARCH_REQUEST_TIMEOUT", httpapi.DefaultRequestTimeout),
		},
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("SEARCH_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("SEARCH_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if refresh <= 0 {
		return c, fmt.Errorf("config: SEARCH_REFRESH_INTERVAL=%s: must be positive (how often new writes become searchable)", refresh)
	}
	return c, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer, args ...string) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, cliTLS, err := httpx.ServiceTLS(getenv, "search")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, "search", cfg.LogLevel)
	if cmd != "serve" {
		// The one-shot commands print their report on stdout; logs go to stderr.
		log = obs.NewLogger(os.Stderr, "search", cfg.LogLevel)
	}
	log.InfoContext(ctx, "starting", "command", cmd, "http_addr", cfg.HTTPAddr,
		"elasticsearch_url", config.Redact(cfg.ES.URL), "elasticsearch_username", cfg.ES.Username,
		"elasticsearch_password", redacted(cfg.ES.Password), "alias", cfg.ES.Alias,
		"nats_url", config.Redact(cfg.NATSURL), "consumer", cfg.Durable, "inventory_consumer", cfg.StockDurable, "concurrency", cfg.Concurrency,
		"catalog_url", cfg.CatalogURL, "inventory_url", cfg.InventoryURL,
		"drift_rounds", cfg.Service.DriftRounds, "drift_pause", cfg.Service.DriftPause.String(), "list_cache_ttl", cfg.Service.ListCacheTTL.String(), "query_cache_ttl", cfg.Service.QueryCacheTTL.String(), "refresh_interval", cfg.ES.RefreshInterval.String(), "shutdown_timeout", cfg.ShutdownTimeout.String(),
		"max_inflight", cfg.Limits.MaxInflight, "query_max_inflight", cfg.Service.QueryInflight, "request_timeout", cfg.Limits.RequestTimeout.String(), "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, "search", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit

	idx, err := esindex.New(cfg.ES)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := idx.Ensure(startCtx); err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	nc, err := broker.Connect(startCtx, cfg.NATSURL, "search", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	hc := httpx.NewClient(30*time.Second, httpx.WithClientTLS(cliTLS))
	exports := search.Exports{
		Products: rebuild.HTTPExport[rebuild.ProductRecord]{URL: cfg.CatalogURL + "/export/products", Client: hc},
		Stock:    rebuild.HTTPExport[rebuild.StockRecord]{URL: cfg.InventoryURL + "/export/stock", Client: hc},
	}
	cat := catalogclient.New(cfg.CatalogURL, hc)
	svc := search.NewService(idx, rebuild.New(nc.JetStream(), 500, log), exports, cat, cfg.Service, log)

	switch cmd {
	case "rebuild":
		rep, err := svc.Rebuild(ctx)
		if rep.Index != "" {
			if perr := printJSON(stdout, rep); perr != nil && err == nil {
				err = perr
			}
		}
		return err
	case "drift":
		rep, err := svc.Drift(ctx)
		if err != nil {
			return err
		}
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
		if !rep.InSync() {
			return errors.New("drift found")
		}
		return nil
	case "serve":
	default:
		return fmt.Errorf("unknown command %q (want serve, rebuild or drift)", cmd)
	}

	if err := nc.EnsureDLQ(startCtx); err != nil {
		return err
	}
	// The consumers get a context that outlives the signal: Stop (after HTTP is down) ends
	// them, letting the events in flight be acknowledged.
	consCtx := context.WithoutCancel(ctx)
	// catalog and inventory create their streams, which search may not: attach when they exist.
	cons := nc.ConsumeWhenReady(consCtx, broker.ConsumerSpec{
		Stream:      broker.StreamName("catalog"),
		Durable:     cfg.Durable,
		Subjects:    search.Subjects,
		Concurrency: cfg.Concurrency,
	}, svc.Handle, 0)
	// inventory creates INVENTORY; until it exists this consumer keeps retrying and search
	// serves without availability (inStock=true finds nothing): it is not a readiness
	// condition, unlike the catalog consumer without which search would serve stale data.
	stockCons := nc.ConsumeWhenReady(consCtx, broker.ConsumerSpec{
		Stream:      broker.StreamName("inventory"),
		Durable:     cfg.StockDurable,
		Subjects:    search.StockSubjects,
		Concurrency: cfg.Concurrency,
	}, svc.Handle, 0)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(nc.Metrics())
	health := httpx.Health{Checks: map[string]func(context.Context) error{
		"elasticsearch": idx.Ping,
		"nats":          nc.Ready,
		"consumer":      cons.Ready,
	}}
	api := httpapi.New(svc, log, health.Checks, reg, httpapi.WithLimits(cfg.Limits))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(api.Handler(), log, admin.Deps{Conn: nc, Outbox: nil}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// HTTP is down; let the consumer finish and acknowledge what it holds, then close.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelStop()
	for _, c := range []*broker.Attachment{cons, stockCons} {
		if err := c.Stop(stopCtx); err != nil {
			log.Warn("stop consumer", "err", err)
		}
	}
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}
