package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
