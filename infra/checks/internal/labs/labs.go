// Package labs is the lab runner's library (issue 16): the manifest of each lab
// (scripts/labs/NN-slug/lab.json), the registry of each lab's Go functions (one file per
// lab, lab01.go …), the lifecycle (start, hint, verify, solve, reset) and the self-test
// that proves every lab: reset → start → verify fails → solve → verify passes → reset →
// the platform is as before. scripts/labs/README.md describes the format for lab authors.
package labs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Manifest is a lab's lab.json.
type Manifest struct {
	ID      int    `json:"id"`
	Slug    string `json:"slug"`
	Title   string `json:"title"`
	Minutes int    `json:"minutes"`
	Teaches string `json:"teaches"`
	// Switches is a partial faults document (GET/PUT /api/admin/faults) that start applies;
	// reset DELETEs the faults (every switch back to its default).
	Switches json.RawMessage `json:"switches,omitempty"`
	// Users are the lab's named users ("ana"): start signs them up as
	// lab<NN>-<name>@labs.polyshop.local (Env.User), reset deletes them.
	Users []string `json:"users,omitempty"`
	// Hints are printed one at a time, in order, by `lab hint N`.
	Hints []string `json:"hints"`
	// Stretch marks an optional lab.
	Stretch bool `json:"stretch,omitempty"`

	Dir string `json:"-"` // the lab's folder
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,20}$`)

// ParseManifest reads and checks one lab.json; dirName is its folder's name (NN-slug),
// which must agree with id and slug.
func ParseManifest(b []byte, dirName string) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%s/lab.json: %w", dirName, err)
	}
	var problems []string
	if m.ID < 1 || m.ID > 99 {
		problems = append(problems, "id must be 1..99")
	}
	if !slugRE.MatchString(m.Slug) {
		problems = append(problems, "slug must be lowercase words joined by '-'")
	}
	if want := fmt.Sprintf("%02d-%s", m.ID, m.Slug); dirName != "" && dirName != want {
		problems = append(problems, fmt.Sprintf("folder must be named %s", want))
	}
	if strings.TrimSpace(m.Title) == "" {
		problems = append(problems, "title is required")
	}
	if m.Minutes < 1 {
		problems = append(problems, "minutes must be ≥ 1")
	}
	if strings.TrimSpace(m.Teaches) == "" {
		problems = append(problems, "teaches is required")
	}
	if len(m.Hints) == 0 {
		problems = append(problems, "at least one hint")
	}
	seen := map[string]bool{}
	for _, u := range m.Users {
		if !nameRE.MatchString(u) || seen[u] {
			problems = append(problems, fmt.Sprintf("user %q: lowercase letters and digits, unique", u))
		}
		seen[u] = true
	}
	if len(m.Switches) > 0 {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(m.Switches, &doc); err != nil {
			problems = append(problems, "switches must be a JSON object (a partial faults document)")
		}
	}
	if len(problems) > 0 {
		return m, fmt.Errorf("%s/lab.json: %s", dirName, strings.Join(problems, "; "))
	}
	return m, nil
}

// LoadManifests reads every scripts/labs/NN-slug/lab.json under dir, sorted by id.
func LoadManifests(dir string) ([]Manifest, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	ids := map[int]string{}
	for _, e := range entries {
		if !e.IsDir() || !regexp.MustCompile(`^\d\d-`).MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "lab.json"))
		if err != nil {
			return nil, err
		}
		m, err := ParseManifest(b, e.Name())
		if err != nil {
			return nil, err
		}
		if prev, dup := ids[m.ID]; dup {
			return nil, fmt.Errorf("labs %s and %s share id %d", prev, e.Name(), m.ID)
		}
		ids[m.ID] = e.Name()
		m.Dir = filepath.Join(dir, e.Name())
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Funcs are a lab's Go functions. The runner does the common part around them: start
// first resets (Reset, then named users deleted, faults cleared, state removed), applies
// the manifest's switches, signs up the named users and only then calls Start.
type Funcs struct {
	// Start brings the platform into the lab's initial state (data, broken things) after
	// the runner's common part. Nil: nothing more.
	Start func(ctx context.Context, e *Env) error
	// Verify returns the unmet points, each "<what> (<where to look>)"; none means done.
	// An error means verify could not look (the platform is not up), not a failed point.
	Verify func(ctx context.Context, e *Env) ([]string, error)
	// Solve reaches the end state Verify checks, as a learner would.
	Solve func(ctx context.Context, e *Env) error
	// Reset undoes what Start and the learner changed beyond the common part (the runner
	// then deletes the named users and clears the faults). It must work in any state,
	// also when the lab was never started. Nil: nothing more.
	Reset func(ctx context.Context, e *Env) error
}

var registry = map[int]Funcs{}

// Register adds lab id's functions; each lab file calls it from init.
func Register(id int, f Funcs) {
	if _, dup := registry[id]; dup {
		panic(fmt.Sprintf("labs: lab %d registered twice", id))
	}
	if f.Verify == nil || f.Solve == nil {
		panic(fmt.Sprintf("labs: lab %d needs Verify and Solve", id))
	}
	registry[id] = f
}

// Registered reports whether lab id has Go functions.
func Registered(id int) bool { _, ok := registry[id]; return ok }

// State is what the runner remembers of a started lab, in .polyshop/labs/NN/state.json.
type State struct {
	HintsShown int               `json:"hintsShown"`
	Users      map[string]User   `json:"users,omitempty"`
	Values     map[string]string `json:"values,omitempty"` // the lab's own notes (Env.Set)
}

// User is a lab's named user.
type User struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
	ID       string `json:"id"`
	Token    string `json:"token,omitempty"`
}

// NextHint returns the hint to show now and the new count of hints shown; once all were
// shown it repeats the last one, saying so.
func NextHint(hints []string, shown int) (text string, number int, last bool) {
	if len(hints) == 0 {
		return "", 0, true
	}
	if shown >= len(hints) {
		return hints[len(hints)-1], len(hints), true
	}
	return hints[shown], shown + 1, shown+1 == len(hints)
}

func loadState(path string) (State, error) {
	var st State
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{Users: map[string]User{}, Values: map[string]string{}}, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	if st.Users == nil {
		st.Users = map[string]User{}
	}
	if st.Values == nil {
		st.Values = map[string]string{}
	}
	return st, nil
}

func saveState(path string, st State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
