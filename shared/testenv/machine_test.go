package testenv

import (
	"os"
	"strings"
	"testing"
)

// CPUTime finds this test's own process by its name and reads a CPU time from /proc; a
// name no process has gives 0.
func TestCPUTime(t *testing.T) {
	self, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc here")
	}
	name := strings.TrimSpace(string(self))
	x := 0
	for i := range 50_000_000 { // a few tens of milliseconds of CPU
		x += i % 7
	}
	if got := CPUTime(func(n, _ string) bool { return n == name }); got <= 0 {
		t.Errorf("CPUTime(%q) = %s after a busy loop (%d); want > 0", name, got, x)
	}
	if got := CPUTime(func(n, cmd string) bool { return n == "no-such-process-name" }); got != 0 {
		t.Errorf("CPUTime(no such process) = %s, want 0", got)
	}
}
