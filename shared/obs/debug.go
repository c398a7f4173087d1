package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// StartDebug serves Go's profiler (net/http/pprof: /debug/pprof/, profile, trace, heap,
// goroutine, …) on addr until ctx ends, on a listener of its own, never on the service's
// API port. An empty addr disables it (the default) and returns nil. addr's host must be a
// loopback IP (127.0.0.1, ::1): a profile shows the process's internals and a CPU profile
// costs CPU, so it is never reachable from outside the machine. It returns the address it
// listens on (useful with port 0).
//
// Services read addr from <SERVICE>_DEBUG_ADDR, e.g. ORDERS_DEBUG_ADDR=127.0.0.1:6085, then
//
//	go tool pprof -seconds 30 http://127.0.0.1:6085/debug/pprof/profile
func StartDebug(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("debug address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("debug address %q: the host must be a loopback IP (127.0.0.1 or ::1)", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Warn("debug listener stopped", "err", err)
		}
	}()
	if log != nil {
		log.Info("profiling enabled (net/http/pprof, loopback only)", "debug_addr", ln.Addr().String())
	}
	return ln.Addr(), nil
}
