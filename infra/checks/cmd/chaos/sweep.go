package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"polyshop/infra/checks/internal/gwclient"
	"polyshop/shared/chaos"
)

// sweep arms the crash points of one service in turn, each with probability 1 (one-shot:
// the first pass kills the process and disarms the point), so that every point is hit about
// equally often instead of when a random draw happens to pick it. It paces itself by the
// supervisor's backoff: a point is armed only once the service's current process has run
// for minUptime (the supervisor restarts after 1 s again once a run lasted 10 s; shorter
// runs double the delay up to 30 s). A point that has not fired within fireTimeout (no
// traffic through it, NATS down) is disarmed and counted as missed.
func sweep(ctx context.Context, cfg config, svc string, start int, up *uptimes, st *sweepStats, logf func(string, ...any)) {
	points := chaos.PointsOf(svc)
	c := gwclient.Client{Base: cfg.owners[svc], HC: ownerHC}
	for i := start; ctx.Err() == nil; i++ {
		pt := points[i%len(points)].Name
		if cfg.hits > 0 && st.hitsOf(pt) >= cfg.hits {
			if st.allOf(points, cfg.hits) {
				logf("%s: every point hit %d times", svc, cfg.hits)
				return
			}
			continue
		}
		if !st.waitTurn(ctx, points, cfg.balance) {
			return
		}
		if !up.waitUp(ctx, svc, cfg.minUptime) {
			return
		}
		before, err := firedOf(ctx, c)
		if err != nil {
			continue // restarting: wait for it again
		}
		if _, err := c.Call(ctx, "PUT", "/faults/chaos", "", nil, map[string]any{"crashPoints": map[string]float64{pt: 1}}, nil); err != nil {
			logf("arm %s: %v", pt, err)
			continue
		}
		st.count(st.armed, pt)
		deadline := time.Now().Add(cfg.fireTimeout)
		fired := false
		for !fired && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			now, err := firedOf(ctx, c)
			fired = err == nil && now[pt] > before[pt]
		}
		if fired {
			st.count(st.hits, pt)
			continue
		}
		// Not reached in time: disarm (a late firing is still counted by the owners' fired
		// counts, which the report uses) and go on with the next point.
		_, err = c.Call(context.WithoutCancel(ctx), "PUT", "/faults/chaos", "", nil, map[string]any{"crashPoints": map[string]float64{pt: 0}}, nil)
		st.count(st.missed, pt)
		logf("%s armed p=1 did not fire within %s; disarmed%s", pt, cfg.fireTimeout, errSuffix(err))
	}
}

func firedOf(ctx context.Context, c gwclient.Client) (map[string]int64, error) {
	var st struct{ Fired map[string]int64 }
	_, err := c.Call(ctx, "GET", "/faults/chaos", "", nil, nil, &st)
	return st.Fired, err
}

// sweepStats counts, per point, the armings, the firings the sweep saw and the misses.
type sweepStats struct {
	mu                  sync.Mutex
	armed, hits, missed map[string]int
}

func newSweepStats() *sweepStats {
	return &sweepStats{armed: map[string]int{}, hits: map[string]int{}, missed: map[string]int{}}
}

func (s *sweepStats) count(m map[string]int, pt string) {
	s.mu.Lock()
	m[pt]++
	s.mu.Unlock()
}

func (s *sweepStats) hitsOf(pt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[pt]
}

// least is the fewest hits of any of points.
func (s *sweepStats) least(points []chaos.Point) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := -1
	for _, p := range points {
		if h := s.hits[p.Name]; n < 0 || h < n {
			n = h
		}
	}
	return max(n, 0)
}

// allOf reports whether every one of points has at least n hits.
func (s *sweepStats) allOf(points []chaos.Point, n int) bool { return s.least(points) >= n }

// waitTurn keeps a service's sweep from running ahead: it waits while the least-hit point
// of points has more than balance hits above the least-hit point of the whole run. Crashes
// upstream starve the points downstream (payments is reached only by orders that got past
// orders and inventory), so without it the upstream points collect hits while the
// downstream ones wait for traffic. balance <= 0 never waits.
func (s *sweepStats) waitTurn(ctx context.Context, points []chaos.Point, balance int) bool {
	if balance <= 0 {
		return ctx.Err() == nil
	}
	for s.least(points) > s.least(chaos.RunPoints())+balance {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
	return ctx.Err() == nil
}

// uptimes tells how long a service's current process (.polyshop/run/svc-<name>.pid, written
// by the supervisor) has been running, from /proc: the start time of the pid.
type uptimes struct {
	root string
}

// of returns the current process's uptime, or 0 when there is none (crashed, restarting).
func (u *uptimes) of(svc string) time.Duration {
	b, err := os.ReadFile(filepath.Join(u.root, ".polyshop", "run", "svc-"+svc+".pid"))
	if err != nil {
		return 0
	}
	pid := strings.TrimSpace(string(b))
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Field 22 is the start time in clock ticks after boot; the command name (field 2) may
	// hold spaces, so count from its closing parenthesis.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 20 || f[0] == "Z" {
		return 0
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return 0
	}
	boot, err := bootTime()
	if err != nil {
		return 0
	}
	const clkTck = 100 // USER_HZ: 100 on every Linux port Go supports
	started := boot.Add(time.Duration(ticks) * time.Second / clkTck)
	return max(0, time.Since(started))
}

func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(s, 0), err
		}
	}
	return time.Time{}, fmt.Errorf("no btime in /proc/stat")
}

// waitUp waits until svc's process has run for at least d; false when ctx ends first.
func (u *uptimes) waitUp(ctx context.Context, svc string, d time.Duration) bool {
	for {
		up := u.of(svc)
		if up >= d {
			return true
		}
		wait := max(250*time.Millisecond, d-up)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}
