package labs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name    string
		dir     string
		json    string
		wantErr string // substring; "" = valid
	}{
		{"valid", "04-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","users":["ana"],"hints":["h"],"switches":{"saga":{"stepTimeoutMs":2000}}}`, ""},
		{"folder disagrees", "05-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","hints":["h"]}`, "folder must be named 04-saga"},
		{"unknown field", "04-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","hints":["h"],"hint":"typo"}`, "unknown field"},
		{"no hints", "04-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","hints":[]}`, "at least one hint"},
		{"bad user", "04-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","hints":["h"],"users":["Ana"]}`, "user \"Ana\""},
		{"duplicate user", "04-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","hints":["h"],"users":["ana","ana"]}`, "user \"ana\""},
		{"switches not an object", "04-saga", `{"id":4,"slug":"saga","title":"T","minutes":20,"teaches":"x","hints":["h"],"switches":[1]}`, "switches must be a JSON object"},
		{"bad slug", "04-Saga", `{"id":4,"slug":"Saga","title":"T","minutes":20,"teaches":"x","hints":["h"]}`, "slug"},
		{"no minutes", "04-saga", `{"id":4,"slug":"saga","title":"T","teaches":"x","hints":["h"]}`, "minutes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.json), tt.dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseManifest error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNextHint(t *testing.T) {
	hints := []string{"a", "b", "c"}
	type step struct {
		Text   string
		Number int
		Last   bool
	}
	var got []step
	shown := 0
	for range 5 {
		text, n, last := NextHint(hints, shown)
		shown = n
		got = append(got, step{text, n, last})
	}
	want := []step{{"a", 1, false}, {"b", 2, false}, {"c", 3, true}, {"c", 3, true}, {"c", 3, true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hint progression (-want +got):\n%s", diff)
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labs", "04", "state.json")
	st, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	st.HintsShown = 2
	st.Users["ana"] = User{Name: "ana", Email: UserEmail(4, "ana"), ID: "u1"}
	st.Values["order"] = "o1"
	if err := saveState(path, st); err != nil {
		t.Fatal(err)
	}
	back, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, back); diff != "" {
		t.Errorf("state after a round trip (-want +got):\n%s", diff)
	}
}

// TestRepositoryLabs checks every lab folder of the checkout: a valid manifest, a README
// with the four sections, and Go functions registered.
func TestRepositoryLabs(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "..", "scripts", "labs")
	ms, err := LoadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no labs found under scripts/labs")
	}
	for _, m := range ms {
		t.Run(m.Slug, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(m.Dir, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, section := range []string{"## Goal", "## What to observe", "## Questions", "## What a production system would do"} {
				if !strings.Contains(string(b), section) {
					t.Errorf("README.md has no %q section", section)
				}
			}
			if !Registered(m.ID) {
				t.Errorf("lab %02d has no Go functions (lab%02d.go)", m.ID, m.ID)
			}
		})
	}
}

// TestReadmeTable checks that the top-level README's table lists every lab with its
// manifest's minutes.
func TestReadmeTable(t *testing.T) {
	ms, err := LoadManifests(filepath.Join("..", "..", "..", "..", "scripts", "labs"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 4 {
			rows[strings.TrimSpace(cells[1])] = cells
		}
	}
	for _, m := range ms {
		cells, ok := rows[fmt.Sprintf("%02d", m.ID)]
		if !ok {
			t.Errorf("README's lab table has no row for lab %02d (%s)", m.ID, m.Title)
			continue
		}
		if got := strings.TrimSpace(cells[3]); got != fmt.Sprint(m.Minutes) {
			t.Errorf("README says lab %02d takes %s minutes, its lab.json %d", m.ID, got, m.Minutes)
		}
	}
}
