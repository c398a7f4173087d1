package labs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Lab 09 (stretch): evolving an event. A consumer's decoder (a copy of the starter in
// scripts/labs/09-event-evolution/starter, in .polyshop/labs/09/work) must accept
// users.address_changed.v2 beside v1, subscribe to both, and still refuse a version it
// does not know. Verify runs the starter's tests (which the learner must not change).

func init() {
	Register(9, Funcs{Start: start09, Verify: verify09, Solve: solve09})
}

func (e *Env) work09() string { return e.Path("work") }

func start09(ctx context.Context, e *Env) error {
	dir := e.work09()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"address.go", "address_test.go"} {
		b, err := os.ReadFile(filepath.Join(e.M.Dir, "starter", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module lab09\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	e.Logf("the consumer to evolve: %s (edit address.go; go test there)", filepath.Join(dir, "address.go"))
	return nil
}

func verify09(ctx context.Context, e *Env) ([]string, error) {
	dir := e.work09()
	got, err := os.ReadFile(filepath.Join(dir, "address_test.go"))
	if err != nil {
		return []string{"lab 09 is not started (./scripts/lab start 9)"}, nil
	}
	var fails []string
	want, err := os.ReadFile(filepath.Join(e.M.Dir, "starter", "address_test.go"))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		fails = append(fails, fmt.Sprintf("%s was changed: the tests are the contract — change address.go instead", filepath.Join(dir, "address_test.go")))
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("go test: %w", err)
	}
	if err != nil {
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			if msg := "go test in " + dir + ": " + line; strings.Contains(line, ".go:") && !slices.Contains(fails, msg) {
				fails = append(fails, msg)
			}
		}
		if len(fails) == 0 {
			fails = append(fails, "go test fails in "+dir+": "+strings.TrimSpace(string(out)))
		}
	}
	return fails, nil
}

func solve09(ctx context.Context, e *Env) error {
	b, err := os.ReadFile(filepath.Join(e.M.Dir, "solution", "address.go"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.work09(), "address.go"), b, 0o644)
}
