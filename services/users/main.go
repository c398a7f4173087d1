// Command users is Polyshop's users service: accounts, credentials and shipping addresses
// in PostgreSQL, with a transactional outbox relayed to the NATS stream USERS.
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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/services/users/internal/httpapi"
	"polyshop/services/users/internal/pgstore"
	"polyshop/services/users/internal/users"
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "users:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration; see README.md for each variable.
type Config struct {
	HTTPAddr        string
	DatabaseURL     string
	NATSURL         string
	Hash            users.HashParams
	Limits          users.Limits
	AdminEmail      string
	AdminPassword   string
	ShutdownTimeout time.Duration
	// HTTPLimits bound the requests served at once (USERS_MAX_INFLIGHT); HashInflight
	// those that hash a password (USERS_HASH_MAX_INFLIGHT), a bulkhead inside it.
	HTTPLimits   httpx.Limits
	HashInflight int
	LogLevel     slog.Level
}

func loadConfig(getenv config.Getenv) (Config, error) {
	r := config.New(getenv)
	c := Config{
		HTTPAddr:    r.String("USERS_HTTP_ADDR", "127.0.0.1:8081"),
		DatabaseURL: r.Required("USERS_DATABASE_URL"),
		NATSURL:     r.Required("USERS_NATS_URL"),
		Hash: users.HashParams{
			Time:      uint32(r.Int("USERS_ARGON2_TIME", int(users.DefaultHashParams.Time))),
			MemoryKiB: uint32(r.Int("USERS_ARGON2_MEMORY_KIB", int(users.DefaultHashParams.MemoryKiB))),
			Threads:   uint8(r.Int("USERS_ARGON2_THREADS", int(users.DefaultHashParams.Threads))),
		},
		Limits: users.Limits{
			HashConcurrency:  r.Int("USERS_HASH_CONCURRENCY", users.DefaultLimits.HashConcurrency),
			HashWait:         r.Duration("USERS_HASH_WAIT", users.DefaultLimits.HashWait),
			SignUpsPerEmail:  int64(r.Int("USERS_SIGNUP_EMAIL_MAX", int(users.DefaultLimits.SignUpsPerEmail))),
			SignUpsPerClient: int64(r.Int("USERS_SIGNUP_CLIENT_MAX", int(users.DefaultLimits.SignUpsPerClient))),
			SignUpWindow:     r.Duration("USERS_SIGNUP_WINDOW", users.DefaultLimits.SignUpWindow),
		},
		AdminEmail:      r.String("ADMIN_EMAIL", ""),
		AdminPassword:   r.String("ADMIN_PASSWORD", ""),
		ShutdownTimeout: r.Duration("USERS_SHUTDOWN_TIMEOUT", 10*time.Second),
		HTTPLimits:      httpx.Limits{MaxInflight: r.Int("USERS_MAX_INFLIGHT", httpapi.DefaultMaxInflight)},
		HashInflight:    r.Int("USERS_HASH_MAX_INFLIGHT", httpapi.DefaultHashInflight),
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.String("USERS_LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("USERS_LOG_LEVEL: %w", err)
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.HTTPLimits.MaxInflight < 1 {
		return c, errors.New("config: USERS_MAX_INFLIGHT must be 1 or more")
	}
	if c.HashInflight < 1 {
		return c, errors.New("config: USERS_HASH_MAX_INFLIGHT must be 1 or more")
	}
	return c, nil
}

func run(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Mutual TLS (<SVC>_TLS_CERT/KEY/CA): unset, the service serves plain HTTP to anyone.
	srvTLS, _, err := httpx.ServiceTLS(getenv, "users")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := obs.NewLogger(stdout, "users", cfg.LogLevel)
	log.InfoContext(ctx, "starting", "http_addr", cfg.HTTPAddr,
		"database_url", config.Redact(cfg.DatabaseURL), "nats_url", config.Redact(cfg.NATSURL),
		"limits", cfg.Limits, "admin_email", cfg.AdminEmail, "admin_password_set", cfg.AdminPassword != "",
		"argon2_time", cfg.Hash.Time, "argon2_memory_kib", cfg.Hash.MemoryKiB, "argon2_threads", cfg.Hash.Threads,
		"max_inflight", cfg.HTTPLimits.MaxInflight, "hash_max_inflight", cfg.HashInflight, "shutdown_timeout", cfg.ShutdownTimeout.String(), "log_level", cfg.LogLevel.String())

	shutdownTracing, err := obs.SetupTracing(ctx, "users", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background()) //nolint:errcheck // best effort at exit

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(startCtx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	if err := pgstore.Migrate(startCtx, pool); err != nil {
		return err
	}
	nc, err := broker.Connect(startCtx, cfg.NATSURL, "users", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.EnsureStream(startCtx, "users"); err != nil {
		return err
	}

	hasher, err := users.NewHasher(cfg.Hash)
	if err != nil {
		return fmt.Errorf("password hasher: %w", err)
	}
	// Chaos (shared/chaos): the lab pattern switch users.publish (outbox | direct) and the
	// crash point users.direct.before_publish, stored in users' database; the point is inert
	// unless the platform's runner started this process with USERS_CRASH_ENABLED=1.
	chaosStore, err := pgchaos.New(startCtx, pool)
	if err != nil {
		return err
	}
	sw, err := chaos.New(startCtx, "users", getenv, chaosStore, log)
	if err != nil {
		return err
	}
	emitter := &pgoutbox.Emitter{
		Mode:          func() string { return sw.Pattern(chaos.PatternUsersPublish) },
		Pub:           nc,
		BeforePublish: func() { sw.Hit("users." + chaos.PlaceDirectBeforePublish) },
		Log:           log,
	}
	svc := users.NewService(pgstore.New(pool).WithEmitter(emitter), hasher, cfg.Limits)
	// The admin account is ensured here, from users' own settings: no other process holds
	// the admin password, and no endpoint sets a role or a password without proof.
	if cfg.AdminEmail == "" || cfg.AdminPassword == "" {
		log.WarnContext(ctx, "ADMIN_EMAIL or ADMIN_PASSWORD not set: no admin account ensured")
	} else {
		admin, created, err := svc.EnsureAdmin(startCtx, cfg.AdminEmail, cfg.AdminPassword)
		if err != nil {
			return fmt.Errorf("ensure the admin account of ADMIN_EMAIL: %w", err)
		}
		log.InfoContext(ctx, "admin account ensured", "user_id", admin.ID, "created", created)
	}

	// The relay runs until the HTTP server has stopped, so events of the last requests
	// still go out.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(nc.Metrics())
	obox := pgoutbox.New(pool)
	stopRelay := outbox.Start(ctx, outbox.NewRelay(obox, nc, log, outbox.WithMetrics(reg, "users")))
	go sw.Run(ctx, time.Second)

	api := httpapi.New(svc, log, map[string]func(context.Context) error{
		"postgres": pool.Ping,
		"nats":     nc.Ready,
	}, reg, httpapi.WithLimits(cfg.HTTPLimits), httpapi.WithHashInflight(cfg.HashInflight))
	serveErr := httpx.Serve(ctx, cfg.HTTPAddr, admin.Wrap(sw.Mount(api.Handler(), reg, pgchaos.OutboxStats(pool)), log, admin.Deps{Conn: nc, Outbox: obox, Stats: pgstats.Count(pool, pgstore.StatsQueries)}), log, httpx.WithShutdownTimeout(cfg.ShutdownTimeout), httpx.WithMTLS(srvTLS, httpapi.Callers))

	// Shutdown: the HTTP server is down; give the relay a moment to publish what the last
	// requests committed, then stop it, then the broker and the pool (deferred).
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), 2*time.Second)
	stopRelay(drainCtx) // a last drain, then the relay ends
	cancelDrain()
	obox.Close()
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
