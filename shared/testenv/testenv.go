// Package testenv gives integration tests access to the real engines of the local stack.
//
// Settings come from the process environment, falling back to infra/local.env (and
// infra/local.override.env) found by walking up from the working directory, so `go test`
// works from any package directory without sourcing anything. Each engine has a sub-package
// that hands a test its own isolated space and removes it afterwards: pgtest (a schema),
// redistest (a key prefix), mongotest (a database). This package has no driver dependency.
//
// When an engine is unreachable, Require skips the test, except under CI=true, where a
// missing engine fails it: CI must never pass by skipping.
package testenv

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Files read by Getenv, relative to the repository root, in order of precedence.
var envFiles = []string{"infra/local.override.env", "infra/local.env"}

var (
	loadOnce sync.Once
	fileVars map[string]string // raw, unexpanded values; the first file to define a key wins
	loadErr  error
)

// Getenv returns the value of key from the process environment, or else from the stack's
// env files with ${VAR} references expanded the way scripts/lib/common.sh load_env does
// (a variable set in the process environment wins, also inside references). It returns ""
// when key is set nowhere. It is safe for concurrent use and satisfies config.Getenv.
func Getenv(key string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	loadOnce.Do(load)
	return expand(key, map[string]bool{})
}

// names returns every key defined in the stack's env files, sorted.
func names() []string {
	loadOnce.Do(load)
	return slices.Sorted(maps.Keys(fileVars))
}

func expand(key string, seen map[string]bool) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	raw, ok := fileVars[key]
	if !ok || seen[key] {
		return ""
	}
	seen[key] = true
	defer delete(seen, key)
	return os.Expand(raw, func(ref string) string { return expand(ref, seen) })
}

func load() {
	fileVars = map[string]string{}
	root, err := RepoRoot()
	if err != nil {
		loadErr = err
		return
	}
	for _, name := range envFiles {
		f, err := os.Open(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			loadErr = err
			return
		}
		parseEnv(f, fileVars)
		f.Close()
	}
}

// parseEnv reads KEY=VALUE lines into vars, skipping blank lines, comments and keys already
// present; a value wrapped in matching quotes loses them.
func parseEnv(f *os.File, vars map[string]string) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		if _, dup := vars[key]; !dup {
			vars[key] = value
		}
	}
}

// RepoRoot returns the nearest directory at or above the working directory that contains
// infra/local.env: the root of the Polyshop repository.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "infra", "local.env")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no infra/local.env above the working directory")
		}
		dir = parent
	}
}

// InCI reports whether tests run under CI (CI=true), where missing engines are failures.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Require stops the test when err (the result of reaching engine) is not nil: under CI=true
// it fails the test, otherwise it skips it with a hint on how to start the engine.
func Require(t testing.TB, engine string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("engine %s unavailable: %v", engine, err)
	}
	t.Skipf("engine %s unavailable (start it with ./scripts/stack up %s; under CI=true this fails): %v", engine, engine, err)
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// UniqueName returns prefix, an underscore and 12 random lowercase letters and digits, such
// as "t_k3v9q0x2m1ab": unique per call and safe as a PostgreSQL schema, Redis key part,
// Mongo database, Elasticsearch index or NATS stream name. prefix is lowercased and anything
// other than letters and digits becomes an underscore. t is used only to report a failure.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("unique name: %v", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	prefix = strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(prefix), "_"), "_")
	if prefix == "" {
		return string(b)
	}
	return prefix + "_" + string(b)
}
