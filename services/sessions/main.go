// Command sessions is Polyshop's sessions service: bearer-token sessions with sliding
// expiry and login throttling in Redis, events relayed to the NATS stream SESSIONS, and
// revocation of a deleted user's sessions (users.deleted).
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
	"github.com/redis/go-redis/v9"

	"polyshop/services/sessions/internal/httpapi"
	"polyshop/services/sessions/internal/redisstore"
	"polyshop/services/sessions/internal/sessions"
	"polyshop/services/sessions/internal/usersclient"
	"polyshop/shared/admin"
	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
	"polyshop/shared/obs"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/redisoutbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration; see README.md.
type Config struct {
	HTTPAddr        string
	RedisURL        string
	NATSURL         string
	UsersURL        string
	KeyPrefix       string
	Policy          sessions.Config
	ShutdownTimeout time.Duration
	// Limits bound the requests served at once (SESSIONS_MAX_INFLIGHT); LoginInflight the
	// logins (SESSIONS_LOGIN_MAX_INFLIGHT), a bulkhead inside it.
	Limits        httpx.Limits
	LoginInflight int
	LogLevel      slog.Level
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	d := sessions.DefaultConfig
	c := Config{
		HTTPAddr:  r.String("SESSIONS_HTTP_ADDR", "127.0.0.1:8082"),
		RedisURL:  r.Required("SESSIONS_REDIS_URL"),
		NATSURL:   r.Required("SESSIONS_NATS_URL"),
		UsersURL:  r.String("USERS_URL", "http://127.0.0.1:8081"),
		KeyPrefix: r.String("SESSIONS_KEY_PREFIX", redisstore.DefaultPrefix),
		Policy: sessions.Config{
			TTL:                r.Duration("SESSIONS_TTL", d.TTL),
			AccountMaxFailures: int64(r.Int("SESSIONS_THROTTLE_ACCOUNT_MAX", int(d.AccountMaxFailures))),
			ClientMaxFailures:  int64(r.Int("SESSIONS_THROTTLE_CLIENT_MAX", int(d.ClientMaxFailures))),
			Window:             r.Duration("SESSIONS_THROTTLE_WINDOW", d.Window),
		},
		ShutdownTimeout: r.Duration("SESSIONS_SHUTDOWN_TIMEOUT", 10*time.Second),
		Limits:          httpx.Limits{MaxInflight: r.Int("SESSIONS_MAX_INFLIGHT", httpapi.DefaultMaxInflight)},
		LoginInflight:   r.Int("SESSIONS_LOGIN_MAX_INFLIGHT", httpapi.DefaultLoginInflight),
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("SESSIONS_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("SESSIONS_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.Limits.MaxInflight < 1 {
		return c, errors.New("config: SESSIONS_MAX_INFLIGHT must be 1 or more")
	}
	if c.LoginInflight < 1 {
		return c, errors.New("config: SESSIONS_LOGIN_MAX_INFLIGHT must be 1 or more")
	}
	if c.Policy.TTL < time.Minute || c.Policy.Window <= 0 || c.Policy.AccountMaxFailures < 1 || c.Policy.ClientMaxFailures < 1 {
		return c, errors.New("config: SESSIONS_TTL must be at least 1m, the throttle window and limits positive")
	}
	return c, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, cliTLS, err := httpx.ServiceTLS(getenv, "sessions")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, "sessions", cfg.LogLevel)
	log.InfoContext(ctx, "starting", "http_addr", cfg.HTTPAddr, "redis_url", config.Redact(cfg.RedisURL),
		"nats_url", config.Redact(cfg.NATSURL), "users_url", cfg.UsersURL, "key_prefix", cfg.KeyPrefix,
		"ttl", cfg.Policy.TTL.String(), "throttle_account_max", cfg.Policy.AccountMaxFailures,
		"throttle_client_max", cfg.Policy.ClientMaxFailures, "throttle_window", cfg.Policy.Window.String(),
		"max_inflight", cfg.Limits.MaxInflight, "login_max_inflight", cfg.LoginInflight, "shutdown_timeout", cfg.ShutdownTimeout.String())

	shutdownTracing, err := obs.SetupTracing(ctx, "sessions", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit

	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("SESSIONS_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rdb.Ping(startCtx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	nc, err := broker.Connect(startCtx, cfg.NATSURL, "sessions", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.EnsureStream(startCtx, "sessions"); err != nil {
		return err
	}
	if err := nc.EnsureDLQ(startCtx); err != nil {
		return err
	}

	store := redisstore.New(rdb, cfg.KeyPrefix)
	svc := sessions.NewService(store, usersclient.New(cfg.UsersURL, httpx.NewClient(5*time.Second, httpx.WithClientTLS(cliTLS))), cfg.Policy)

	// The users stream may not exist yet when sessions starts before users: attach when it
	// does, in the background, so /readyz can report the state meanwhile.
	cons := nc.ConsumeWhenReady(context.WithoutCancel(ctx), broker.ConsumerSpec{
		Stream:   broker.StreamName("users"),
		Durable:  "sessions",
		Subjects: []string{events.SubjectFor(events.TypeUserDeleted)},
	}, svc.HandleUserDeleted, 0)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(nc.Metrics())
	obox := redisoutbox.New(rdb, store.OutboxStream())
	stopRelay := outbox.Start(ctx, outbox.NewRelay(obox, nc, log, outbox.WithMetrics(reg, "sessions")))

	api := httpapi.New(svc, log, map[string]func(context.Context) error{
		"redis": store.Ready,
		"nats":  nc.Ready,
	}, reg, httpapi.WithLimits(cfg.Limits), httpapi.WithLoginInflight(cfg.LoginInflight))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(api.Handler(), log, admin.Deps{Conn: nc, Outbox: obox}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// Shutdown: HTTP is down; stop the consumer after its in-flight message is acked, give
	// the relay a last drain, then stop it; NATS and Redis close in the deferred calls.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelStop()
	if err := cons.Stop(stopCtx); err != nil {
		log.Warn("stop consumer", "err", err)
	}
	stopRelay(stopCtx) // a last drain, then the relay ends
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
