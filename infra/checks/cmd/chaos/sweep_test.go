package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"polyshop/shared/chaos"
)

// uptimes reads a service's process start from /proc through the supervisor's pid file: a
// running process has a positive uptime, a missing pid file or a pid that is not running
// (crashed, restarting) has none, so the sweep waits.
func TestUptimes(t *testing.T) {
	root := t.TempDir()
	run := filepath.Join(root, ".polyshop", "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(svc, pid string) {
		if err := os.WriteFile(filepath.Join(run, "svc-"+svc+".pid"), []byte(pid+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("self", strconv.Itoa(os.Getpid()))
	write("gone", "999999999")
	write("junk", "x")
	u := &uptimes{root: root}
	if got := u.of("self"); got <= 0 || got > 24*time.Hour {
		t.Errorf("uptime of this test process = %s, want a positive duration", got)
	}
	for _, svc := range []string{"gone", "junk", "missing"} {
		if got := u.of(svc); got != 0 {
			t.Errorf("uptime of %s = %s, want 0", svc, got)
		}
	}
}

// waitTurn lets a service's sweep go on while its least-hit point is within balance of the
// run's least-hit point, and holds it (until its context ends) when it is further ahead.
func TestWaitTurn(t *testing.T) {
	hitAll := func(st *sweepStats, svc string, n int) {
		for _, p := range chaos.PointsOf(svc) {
			for range n {
				st.count(st.hits, p.Name)
			}
		}
	}
	tests := []struct {
		name                      string
		orders, inventory, paymts int // hits of every point of each service
		balance                   int
		want                      bool // orders may go on
	}{
		{"level", 3, 3, 3, 5, true},
		{"ahead within balance", 8, 3, 3, 5, true},
		{"ahead beyond balance: held", 9, 9, 3, 5, false},
		{"balance off", 50, 0, 0, 0, true},
		{"behind", 0, 9, 9, 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newSweepStats()
			hitAll(st, "orders", tc.orders)
			hitAll(st, "inventory", tc.inventory)
			hitAll(st, "payments", tc.paymts)
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			if got := st.waitTurn(ctx, chaos.PointsOf("orders"), tc.balance); got != tc.want {
				t.Errorf("waitTurn = %v, want %v", got, tc.want)
			}
			if st.allOf(chaos.PointsOf("orders"), tc.orders) != true || (tc.orders > 0 && st.allOf(chaos.PointsOf("orders"), tc.orders+1)) {
				t.Errorf("allOf disagrees with %d hits per point", tc.orders)
			}
		})
	}
}
