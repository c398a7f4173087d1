package activity

import (
	"strconv"
	"testing"
)

func TestKnownDeleted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		added int    // users "u0" … added in order
		ask   string // user asked about afterwards
		want  bool
	}{
		{"empty", 0, "u0", false},
		{"added", 3, "u2", true},
		{"never added", 3, "u3", false},
		{"kept up to the bound", maxKnownDeleted, "u0", true},
		{"forgotten past the bound", maxKnownDeleted + 1, "u0", false},
		{"the one that overflowed is kept", maxKnownDeleted + 1, "u" + strconv.Itoa(maxKnownDeleted), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKnownDeleted()
			for i := range tc.added {
				k.add("u" + strconv.Itoa(i))
			}
			if got := k.has(tc.ask); got != tc.want {
				t.Errorf("has(%q) after %d adds = %v, want %v", tc.ask, tc.added, got, tc.want)
			}
		})
	}
}
