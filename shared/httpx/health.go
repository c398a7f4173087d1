package httpx

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultCheckTimeout bounds all readiness checks together when Health.Timeout is zero.
const DefaultCheckTimeout = 2 * time.Second

// Health serves the liveness, readiness and metrics endpoints of a service.
type Health struct {
	// Checks are run by /readyz, concurrently, keyed by a name shown in the response
	// ("postgres", "nats"). Each must return promptly once its context is done.
	Checks map[string]func(context.Context) error
	// Timeout bounds all checks together; zero means DefaultCheckTimeout.
	Timeout time.Duration
}

// CheckResult is the outcome of one readiness check.
type CheckResult struct {
	Status string `json:"status"` // "ok" or "error"
	Error  string `json:"error,omitempty"`
}

// Readiness is the /readyz response body.
type Readiness struct {
	Status string                 `json:"status"` // "ok" or "unavailable"
	Checks map[string]CheckResult `json:"checks"`
}

// Register adds to mux:
//   - GET /healthz: 200 {"status":"ok"} while the process serves HTTP at all;
//   - GET /readyz: 200 when every check passes, else 503, with each check's result;
//   - GET /metrics: the metrics in reg (the default gatherer when reg is nil).
func (h Health) Register(mux *http.ServeMux, reg *prometheus.Registry) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		res := h.Check(r.Context())
		status := http.StatusOK
		if res.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		_ = WriteJSON(w, status, res)
	})
	var metrics http.Handler
	if reg == nil {
		metrics = promhttp.Handler()
	} else {
		metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	}
	mux.Handle("GET /metrics", metrics)
}

// Check runs every check concurrently under the timeout and reports the results.
func (h Health) Check(ctx context.Context) Readiness {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	res := Readiness{Status: "ok", Checks: make(map[string]CheckResult, len(h.Checks))}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for name, check := range h.Checks {
		wg.Go(func() {
			errc := make(chan error, 1)
			go func() { errc <- check(ctx) }()
			var err error
			select {
			case err = <-errc:
			case <-ctx.Done():
				err = ctx.Err() // a check that ignores its context must not hold up /readyz
			}
			r := CheckResult{Status: "ok"}
			if err != nil {
				r = CheckResult{Status: "error", Error: err.Error()}
			}
			mu.Lock()
			res.Checks[name] = r
			if err != nil {
				res.Status = "unavailable"
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}
