package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAndExpand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("local.env", `# comment
TESTENV_PORT=5432

TESTENV_PW=from-local
TESTENV_URL=postgres://u:${TESTENV_PW}@127.0.0.1:${TESTENV_PORT}/db
TESTENV_QUOTED="a b"
TESTENV_FROM_PROCESS=file
TESTENV_SELF=${TESTENV_SELF}x
`)
	write("override.env", "TESTENV_PW=from-override\n")

	vars := map[string]string{}
	for _, name := range []string{"override.env", "local.env"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		parseEnv(f, vars)
		f.Close()
	}
	loadOnce.Do(load) // so that load cannot later replace the test's variables
	saved := fileVars
	fileVars = vars
	t.Cleanup(func() { fileVars = saved })
	t.Setenv("TESTENV_FROM_PROCESS", "process")

	tests := []struct{ key, want string }{
		{"TESTENV_PORT", "5432"},
		{"TESTENV_PW", "from-override"},
		{"TESTENV_URL", "postgres://u:from-override@127.0.0.1:5432/db"},
		{"TESTENV_QUOTED", "a b"},
		{"TESTENV_FROM_PROCESS", "process"},
		{"TESTENV_SELF", "x"},
		{"TESTENV_UNSET", ""},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(Getenv(tt.key), tt.want); diff != "" {
			t.Errorf("Getenv(%s) (-got +want):\n%s", tt.key, diff)
		}
	}
}

func TestGetenvReadsRepositoryFile(t *testing.T) {
	if _, err := RepoRoot(); err != nil {
		t.Skipf("not inside the repository: %v", err)
	}
	got := Getenv("USERS_DATABASE_URL")
	if !regexp.MustCompile(`^postgres://users:[^$@]+@[^$]+/users`).MatchString(got) {
		t.Errorf("USERS_DATABASE_URL = %q, want an expanded postgres URL", got)
	}
}

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	valid := regexp.MustCompile(`^[a-z0-9_]+_[a-z0-9]{12}$`)
	for range 1000 {
		n := UniqueName(t, "t")
		if !valid.MatchString(n) || seen[n] {
			t.Fatalf("UniqueName = %q: invalid or repeated", n)
		}
		seen[n] = true
	}
	if got := UniqueName(t, "My Test/Case"); !regexp.MustCompile(`^my_test_case_[a-z0-9]{12}$`).MatchString(got) {
		t.Errorf("UniqueName(My Test/Case) = %q", got)
	}
}

// recorder captures what Require does to a test without ending the real one.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = format }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = format }

func TestRequire(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			Require(r, "postgres", nil)
			if r.skipped != "" || r.failed != "" {
				t.Fatalf("nil error: skipped %q, failed %q", r.skipped, r.failed)
			}
			Require(r, "postgres", os.ErrNotExist)
			if gotFail := r.failed != ""; gotFail != (ci == "true") {
				t.Errorf("failed = %v (skipped %q), want failure only under CI", gotFail, r.skipped)
			}
		})
	}
}
