package testenv

import (
	"os"
	"strings"
)

// LoadAvg is the machine's 1, 5 and 15-minute load averages ("unknown" when /proc does not
// say): benchmarks record it beside their figures, since other work on the same cores
// shows in them.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
