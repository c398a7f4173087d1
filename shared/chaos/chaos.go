// Package chaos holds Polyshop's lab switches for crash testing: named crash points (the
// table in points.go) that kill the service process at the worst moment, and a
// duplicate-delivery mode that publishes every event and command several times.
//
// A crash point acts only in a service process that the platform's runner started with
// <SVC>_CRASH_ENABLED=1 (scripts/lib/services.sh sets it), and never inside a test binary
// (testing.Testing). When a point fires, the process logs one line to stderr, records the
// hit, and sends itself SIGKILL: no deferred clean-up, no graceful shutdown, exactly as a
// kill -9 would.
//
// Arming:
//   - at run time through the service's faults API (PUT /faults/chaos, forwarded by the
//     gateway's /api/admin/faults `crashPoints`): stored in the service's database so it
//     survives the restart it causes. Such an arming is one-shot: each pass fires with the
//     armed probability, and the first firing disarms the point (the disarm is stored
//     before the process dies), so probability 1 cannot crash-loop the service;
//   - by configuration, <SVC>_CRASH_POINTS=name=prob,name=prob: for every start of the
//     process, at most once per process. Probability 1 then crashes every start at the
//     first pass; the runner's supervisor backs off (up to 30 s) between restarts.
//
// Duplicates (1..3, stored the same way): a relay publishing through Publisher sends each
// event n times, the first copy under the event id as Nats-Msg-Id and the others under
// "<id>~dup<k>", so the broker stores n messages and every consumer sees the event n
// times. Handlers are idempotent by event id (inbox) or by (order, verb), so nothing may
// change twice.
package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"polyshop/shared/config"
)

// State is what a Store keeps: the armed points with their probability, the duplicate
// count, how often each point fired (cumulative, for the chaos report), and the pattern
// switches set to a non-default value (patterns.go).
type State struct {
	CrashPoints map[string]float64 `json:"crashPoints"`
	Duplicates  int                `json:"duplicates"`
	Fired       map[string]int64   `json:"fired"`
	Patterns    map[string]string  `json:"patterns,omitempty"`
}

func (s State) clone() State {
	c := State{CrashPoints: maps.Clone(s.CrashPoints), Duplicates: s.Duplicates, Fired: maps.Clone(s.Fired),
		Patterns: maps.Clone(s.Patterns)}
	if c.CrashPoints == nil {
		c.CrashPoints = map[string]float64{}
	}
	if c.Fired == nil {
		c.Fired = map[string]int64{}
	}
	if c.Duplicates < 1 {
		c.Duplicates = 1
	}
	return c
}

// Store keeps a service's State. Implementations are safe for concurrent use, also by
// several processes of the service (package pgchaos).
type Store interface {
	// Load returns the stored state (zero values when nothing was stored).
	Load(ctx context.Context) (State, error)
	// Update applies fn to the stored state atomically and returns the result.
	Update(ctx context.Context, fn func(*State)) (State, error)
}

// Patch changes the named fields: a crash point with probability 0 is disarmed; a pattern
// switch set to its default is forgotten.
type Patch struct {
	CrashPoints map[string]float64
	Duplicates  *int
	Patterns    map[string]string
}

// ValidationError names the field of a patch that is out of range.
type ValidationError struct{ Field, Reason string }

func (e *ValidationError) Error() string { return e.Field + " " + e.Reason }

// MaxDuplicates bounds State.Duplicates.
const MaxDuplicates = 3

// Switches are one process's view of its service's chaos state. Safe for concurrent use.
type Switches struct {
	service string
	enabled bool
	store   Store
	log     *slog.Logger
	env     map[string]float64
	// exit kills the process; tests replace it.
	exit func(point string)

	mu     sync.Mutex
	state  State
	firing bool
}

// New returns the switches of service, reading <SVC>_CRASH_ENABLED and <SVC>_CRASH_POINTS
// through getenv, and loads the stored state. Unknown or foreign point names, and
// probabilities outside 0..1, are configuration errors.
func New(ctx context.Context, service string, getenv config.Getenv, store Store, log *slog.Logger) (*Switches, error) {
	if log == nil {
		log = slog.Default()
	}
	prefix := strings.ToUpper(service) + "_"
	s := &Switches{service: service, store: store, log: log.With("component", "chaos"), exit: kill}
	s.enabled = getenv(prefix+"CRASH_ENABLED") == "1" && !testing.Testing()
	env, err := ParsePoints(service, getenv(prefix+"CRASH_POINTS"))
	if err != nil {
		return nil, fmt.Errorf("config: %sCRASH_POINTS: %w", prefix, err)
	}
	s.env = env
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	if len(env) > 0 && !s.enabled {
		s.log.WarnContext(ctx, "crash points configured but inactive (not started by the platform's runner, or a test)",
			"points", env)
	}
	return s, nil
}

// ParsePoints parses "name=prob,name=prob" for service.
func ParsePoints(service, raw string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, ps, ok := strings.Cut(part, "=")
		if !ok {
			ps = "1"
		}
		p, err := strconv.ParseFloat(ps, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: probability %q is not a number", name, ps)
		}
		if err := checkPoint(service, name, p); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

func checkPoint(service, name string, p float64) error {
	pt, ok := Lookup(name)
	switch {
	case !ok:
		return &ValidationError{Field: "crashPoints." + name, Reason: "is not a crash point"}
	case pt.Service() != service:
		return &ValidationError{Field: "crashPoints." + name, Reason: "belongs to " + pt.Service() + ", not " + service}
	case !(p >= 0 && p <= 1):
		return &ValidationError{Field: "crashPoints." + name, Reason: "must be between 0 and 1"}
	}
	return nil
}

// Enabled reports whether crash points can fire in this process.
func (s *Switches) Enabled() bool { return s.enabled }

// Service returns the service the switches belong to.
func (s *Switches) Service() string { return s.service }

// State returns the last loaded state.
func (s *Switches) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.clone()
}

// Refresh reloads the stored state.
func (s *Switches) Refresh(ctx context.Context) error {
	st, err := s.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load chaos switches: %w", err)
	}
	s.mu.Lock()
	s.state = st.clone()
	s.mu.Unlock()
	return nil
}

// Run reloads the stored state every interval until ctx ends, so that a switch changed
// through another instance takes effect here too.
func (s *Switches) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "reload chaos switches", "err", err)
			}
		}
	}
}

// Set validates p, stores it and returns the new state.
func (s *Switches) Set(ctx context.Context, p Patch) (State, error) {
	for name, prob := range p.CrashPoints {
		if err := checkPoint(s.service, name, prob); err != nil {
			return State{}, err
		}
	}
	if p.Duplicates != nil && (*p.Duplicates < 1 || *p.Duplicates > MaxDuplicates) {
		return State{}, &ValidationError{Field: "duplicates", Reason: "must be between 1 and 3"}
	}
	for name, v := range p.Patterns {
		if err := checkPattern(s.service, name, v); err != nil {
			return State{}, err
		}
	}
	st, err := s.store.Update(ctx, func(st *State) {
		*st = st.clone()
		for name, prob := range p.CrashPoints {
			if prob == 0 {
				delete(st.CrashPoints, name)
			} else {
				st.CrashPoints[name] = prob
			}
		}
		if p.Duplicates != nil {
			st.Duplicates = *p.Duplicates
		}
		for name, v := range p.Patterns {
			if pt, _ := LookupPattern(name); v == pt.Default() {
				delete(st.Patterns, name)
				continue
			}
			if st.Patterns == nil {
				st.Patterns = map[string]string{}
			}
			st.Patterns[name] = v
		}
		if len(st.Patterns) == 0 {
			st.Patterns = nil
		}
	})
	if err != nil {
		return State{}, fmt.Errorf("store chaos switches: %w", err)
	}
	s.mu.Lock()
	s.state = st.clone()
	s.mu.Unlock()
	return s.State(), nil
}

// Clear disarms every point, sets duplicates back to 1 and every pattern switch back to
// its default; the fired counts stay.
func (s *Switches) Clear(ctx context.Context) (State, error) {
	st, err := s.store.Update(ctx, func(st *State) {
		*st = st.clone()
		st.CrashPoints = map[string]float64{}
		st.Duplicates = 1
		st.Patterns = nil
	})
	if err != nil {
		return State{}, fmt.Errorf("store chaos switches: %w", err)
	}
	s.mu.Lock()
	s.state = st.clone()
	s.mu.Unlock()
	return s.State(), nil
}

// Duplicates returns how many copies of each event a relay publishes (1..3).
func (s *Switches) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(1, min(s.state.Duplicates, MaxDuplicates))
}

// Hit passes the crash point name. When the point is armed and its probability draws,
// the process dies here and Hit does not return. Cheap when nothing is armed.
func (s *Switches) Hit(name string) {
	if s == nil || !s.enabled {
		return
	}
	s.mu.Lock()
	stored := s.state.CrashPoints[name]
	p := max(stored, s.env[name])
	if p <= 0 || s.firing || rand.Float64() >= p {
		s.mu.Unlock()
		return
	}
	// One firing per process: the lock stays free for other goroutines' Hit, which return
	// at once while s.firing is set (they will be killed with the process anyway).
	s.firing = true
	s.mu.Unlock()

	fmt.Fprintf(os.Stderr, `{"time":%q,"level":"ERROR","service":%q,"msg":"crash point hit; killing the process","point":%q}`+"\n",
		time.Now().UTC().Format(time.RFC3339Nano), s.service, name)
	// Record the hit (and disarm a stored arming) before dying, so that the restart does
	// not fire it again. A failed write is ignored: the process dies regardless.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _ = s.store.Update(ctx, func(st *State) {
		*st = st.clone()
		if stored > 0 {
			delete(st.CrashPoints, name)
		}
		st.Fired[name]++
	})
	cancel()
	s.exit(name)
}

// kill ends the process as kill -9 would: no deferred functions, no shutdown.
func kill(string) {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	// SIGKILL is not deliverable late; should it ever be, do not return into the caller.
	os.Exit(137)
}
