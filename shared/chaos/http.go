package chaos

import (
	"context"
	"errors"
	"net/http"
	"time"

	"polyshop/shared/httpx"
)

// OutboxStats is the state of a service's outbox, for operators and the auditor.
type OutboxStats struct {
	// Pending counts events not yet marked sent.
	Pending int64 `json:"pending"`
	// OldestPendingAt is when the oldest pending event was written (null: none pending).
	OldestPendingAt *time.Time `json:"oldestPendingAt"`
	// OldestPendingAgeSeconds is its age by the database's clock (0: none pending).
	OldestPendingAgeSeconds float64 `json:"oldestPendingAgeSeconds"`
}

// OutboxFunc reads a service's outbox state (pgchaos.OutboxStats).
type OutboxFunc func(ctx context.Context) (OutboxStats, error)

type pointJSON struct {
	Name  string `json:"name"`
	Where string `json:"where"`
	Tests string `json:"tests"`
}

type patternJSON struct {
	Name    string   `json:"name"`
	Values  []string `json:"values"`
	Default string   `json:"default"`
	What    string   `json:"what"`
}

type stateJSON struct {
	// Enabled: crash points can fire in this process (started by the platform's runner).
	Enabled     bool               `json:"enabled"`
	CrashPoints map[string]float64 `json:"crashPoints"`
	Duplicates  int                `json:"duplicates"`
	Fired       map[string]int64   `json:"fired"`
	Points      []pointJSON        `json:"points"`
	// Patterns are the service's pattern switches with their current values, defaults
	// included; PatternSwitches describes them.
	Patterns        map[string]string `json:"patterns"`
	PatternSwitches []patternJSON     `json:"patternSwitches"`
}

func (s *Switches) stateJSON(st State) stateJSON {
	out := stateJSON{Enabled: s.enabled, CrashPoints: st.CrashPoints, Duplicates: st.Duplicates, Fired: st.Fired,
		Points: []pointJSON{}, Patterns: s.patternValues(st), PatternSwitches: []patternJSON{}}
	for _, p := range PointsOf(s.service) {
		out.Points = append(out.Points, pointJSON{Name: p.Name, Where: p.Where, Tests: p.Tests})
	}
	for _, p := range PatternsOf(s.service) {
		out.PatternSwitches = append(out.PatternSwitches, patternJSON{Name: p.Name, Values: p.Values, Default: p.Default(), What: p.What})
	}
	return out
}

// Handler serves the chaos routes in front of next, which gets every other request:
//
//	GET /faults/chaos      the switches: enabled, crashPoints, duplicates, fired, points,
//	                       patterns (every switch of the service, defaults included), patternSwitches
//	PUT /faults/chaos      {"crashPoints":{"<svc>.<point>":0..1}, "duplicates":1..3,
//	                       "patterns":{"<svc>.<switch>":"<value>"}}, partial
//	DELETE /faults/chaos   disarm every point, duplicates 1, patterns to their defaults
//	                       (fired counts stay) → 204
//	GET /outbox            {"pending","oldestPendingAt","oldestPendingAgeSeconds"} (when outbox is set)
//
// They are operator routes, like /faults: they stay up while the service's down switch is on.
//
// Handler serves them without the shared middleware (no access log, no metrics); services
// use Mount.
func (s *Switches) Handler(next http.Handler, outbox OutboxFunc) http.Handler {
	mux := http.NewServeMux()
	s.routes(mux, outbox)
	mux.Handle("/", next)
	return mux
}

// routes registers the chaos routes on mux.
func (s *Switches) routes(mux *http.ServeMux, outbox OutboxFunc) {
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(s.log, fn) }
	mux.Handle("GET /faults/chaos", h(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Refresh(r.Context()); err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, s.stateJSON(s.State()))
	}))
	mux.Handle("PUT /faults/chaos", h(func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			CrashPoints map[string]float64 `json:"crashPoints"`
			Duplicates  *int               `json:"duplicates"`
			Patterns    map[string]string  `json:"patterns"`
		}
		if err := httpx.DecodeJSON(r, &req, 16<<10); err != nil {
			return err
		}
		st, err := s.Set(r.Context(), Patch{CrashPoints: req.CrashPoints, Duplicates: req.Duplicates, Patterns: req.Patterns})
		var verr *ValidationError
		if errors.As(err, &verr) {
			return httpx.Unprocessable("A chaos switch is out of range; see errors.",
				httpx.FieldError{Field: verr.Field, Reason: verr.Reason})
		}
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, s.stateJSON(st))
	}))
	mux.Handle("DELETE /faults/chaos", h(func(w http.ResponseWriter, r *http.Request) error {
		if _, err := s.Clear(r.Context()); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	if outbox != nil {
		mux.Handle("GET /outbox", h(func(w http.ResponseWriter, r *http.Request) error {
			st, err := outbox(r.Context())
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, st)
		}))
	}
}

// BeforeResponse returns middleware that passes crash point name when a request that
// match accepts is about to be answered with a 2xx status: the work is committed and the
// client has not heard of it.
func (s *Switches) BeforeResponse(name string, match func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.enabled && match(r) {
				w = &hitWriter{ResponseWriter: w, hit: func() { s.Hit(name) }}
			}
			next.ServeHTTP(w, r)
		})
	}
}

type hitWriter struct {
	http.ResponseWriter
	hit  func()
	done bool
}

func (w *hitWriter) WriteHeader(code int) {
	if !w.done && code >= 200 && code < 300 {
		w.hit()
	}
	w.done = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *hitWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *hitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
