package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultShutdownTimeout is how long Serve waits for in-flight requests after its context
// is cancelled.
const DefaultShutdownTimeout = 10 * time.Second

// ServeOption configures Serve and Listen.
type ServeOption func(*serveConfig)

type serveConfig struct {
	shutdownTimeout time.Duration
	tls             *tls.Config // WithMTLS
	callers         Callers
}

// WithShutdownTimeout sets how long shutdown waits for in-flight requests before closing
// their connections.
func WithShutdownTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.shutdownTimeout = d }
}

// Serve listens on addr and serves h until ctx is cancelled, then shuts down gracefully:
// it stops accepting connections and waits (up to the shutdown timeout) for in-flight
// requests to finish. It returns nil after a clean shutdown and an error when listening
// fails, serving fails or in-flight requests outlive the timeout.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger, opts ...ServeOption) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Listen(ctx, ln, h, log, opts...)
}

// Listen is Serve on an existing listener, which it closes; tests pass one bound to port 0.
func Listen(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, opts ...ServeOption) error {
	cfg := serveConfig{shutdownTimeout: DefaultShutdownTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.tls != nil {
		ln = tls.NewListener(ln, cfg.tls)
		h = Authorize(cfg.callers, log)(h)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests keep running during a graceful shutdown: their context must not be
		// cancelled by the very signal that started it.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.InfoContext(ctx, "http server listening", "addr", ln.Addr().String(), "mtls", cfg.tls != nil)

	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.InfoContext(ctx, "http server shutting down", "timeout", cfg.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	log.InfoContext(ctx, "http server stopped")
	return nil
}
