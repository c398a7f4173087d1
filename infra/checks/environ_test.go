package checks

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"polyshop/shared/testenv"
)

// secretsByOwner reads infra/local.env and returns every secret value it defines (each
// *_PASSWORD, and the password inside every URL with user info) with the service that may
// hold it: the first word of the variable's name in lower case ("users" for
// USERS_DB_PASSWORD), "users" for ADMIN_PASSWORD (users ensures the admin account), and
// "engines" for the engines' superusers (POLYSHOP_*), which no service may hold.
func secretsByOwner(t *testing.T) map[string]string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "infra", "local.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	userinfo := regexp.MustCompile(`^\w+://[^:/@]+:([^@]+)@`)
	secrets := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, _, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		val := testenv.Getenv(name)
		var secret string
		switch {
		case strings.HasSuffix(name, "_PASSWORD") || strings.HasSuffix(name, "PASSWORD"):
			secret = val
		case userinfo.MatchString(val):
			secret = userinfo.FindStringSubmatch(val)[1]
		}
		if secret == "" {
			continue
		}
		owner := strings.ToLower(strings.SplitN(name, "_", 2)[0])
		switch {
		case name == "ADMIN_PASSWORD":
			owner = "users"
		case owner == "polyshop":
			owner = "engines"
		}
		secrets[secret] = owner
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return secrets
}

// TestRunningServicesHoldOnlyTheirOwnSecrets reads the environment of every service process
// that the native runner started (.polyshop/run/svc-<name>.pid) and fails on any secret
// that belongs to another service or to an engine's superuser. It needs a running
// platform: it runs with POLYSHOP_E2E=1 (scripts/test sets it after starting the services).
func TestRunningServicesHoldOnlyTheirOwnSecrets(t *testing.T) {
	if os.Getenv("POLYSHOP_E2E") != "1" {
		t.Skip("needs the running platform: set POLYSHOP_E2E=1 (scripts/test does)")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	state := os.Getenv("POLYSHOP_STATE")
	if state == "" {
		state = filepath.Join(root, ".polyshop")
	}
	pidfiles, err := filepath.Glob(filepath.Join(state, "run", "svc-*.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pidfiles) == 0 {
		testenv.Require(t, "platform", os.ErrNotExist)
	}
	secrets := secretsByOwner(t)
	for _, pf := range pidfiles {
		svc := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(pf), "svc-"), ".pid")
		t.Run(svc, func(t *testing.T) {
			b, err := os.ReadFile(pf)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file %s: %v", pf, err)
			}
			environ, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
			if err != nil {
				t.Fatalf("environment of %s (pid %d): %v", svc, pid, err)
			}
			var own int
			for _, kv := range bytes.Split(environ, []byte{0}) {
				name, val, _ := strings.Cut(string(kv), "=")
				for secret, owner := range secrets {
					if !strings.Contains(val, secret) {
						continue
					}
					if owner != svc {
						t.Errorf("%s holds %s, a secret of %s", svc, name, owner)
					} else {
						own++
					}
				}
			}
			if own == 0 {
				t.Errorf("%s holds no secret of its own: is this really its environment?", svc)
			}
		})
	}
}
