package labs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"polyshop/infra/checks/internal/audit"
	"polyshop/infra/checks/internal/gwclient"
)

// Env is what a lab's functions get: the platform as an operator or a learner sees it.
//
//   - the gateway's public API (GW, with a named user's token: User) and its admin API
//     (Admin: logged in with ADMIN_EMAIL / ADMIN_PASSWORD);
//   - the owners' internal APIs (Owner), through the same client construction as the
//     auditor (OwnersConfig), so the operator credentials the auditor gets reach the labs;
//   - each service's own datastore credentials from the environment (infra/local.env,
//     loaded by ./scripts/lab): Getenv;
//   - the repository's scripts (Script), e.g. ./scripts/stack start inventory.
type Env struct {
	Root     string   // repository root
	M        Manifest // the lab's manifest (M.Dir: its folder)
	StateDir string   // .polyshop/labs/NN: state.json, answers files
	Out      io.Writer
	GW       gwclient.Client
	Owners   audit.Config // internal base URLs and client (the auditor's construction)

	st         State
	adminToken string
}

// OwnersConfig is the auditor's view of the platform, built as cmd/audit builds it: the
// owners' internal API base URLs (gwclient.InternalURL: https with mutual TLS on), the
// services for dead-letter listing, and the operator identity's HTTP client
// (gwclient.OperatorClient). Labs reach internal APIs only through it.
func OwnersConfig() (audit.Config, error) {
	hc, err := gwclient.OperatorClient(nil, 15*time.Second)
	if err != nil {
		return audit.Config{}, err
	}
	cfg := audit.Config{
		Orders:      gwclient.InternalURL(nil, "orders", "127.0.0.1:8085"),
		Inventory:   gwclient.InternalURL(nil, "inventory", "127.0.0.1:8084"),
		Payments:    gwclient.InternalURL(nil, "payments", "127.0.0.1:8086"),
		NATSMonitor: "http://127.0.0.1:" + getenv("POLYSHOP_NATS_MONITOR_PORT", "8222"),
		Services:    map[string]string{},
		Client:      hc,
	}
	for svc, addr := range map[string]string{"users": "127.0.0.1:8081", "sessions": "127.0.0.1:8082", "catalog": "127.0.0.1:8083",
		"inventory": "127.0.0.1:8084", "orders": "127.0.0.1:8085", "payments": "127.0.0.1:8086", "activity": "127.0.0.1:8087",
		"search": "127.0.0.1:8088"} {
		cfg.Services[svc] = gwclient.InternalURL(nil, svc, addr)
	}
	return cfg, nil
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Getenv reads a setting (infra/local.env is loaded by ./scripts/lab).
func (e *Env) Getenv(k string) string { return os.Getenv(k) }

// Logf prints a line of the lab's progress.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Out, "    "+format+"\n", args...)
}

// Admin returns an admin token (logged in once per run).
func (e *Env) Admin(ctx context.Context) (string, error) {
	if e.adminToken != "" {
		return e.adminToken, nil
	}
	email, pw := os.Getenv("ADMIN_EMAIL"), os.Getenv("ADMIN_PASSWORD")
	if email == "" || pw == "" {
		return "", errors.New("ADMIN_EMAIL and ADMIN_PASSWORD are not set (run through ./scripts/lab, which loads infra/local.env)")
	}
	tok, err := e.GW.Login(ctx, email, pw)
	if err != nil {
		return "", fmt.Errorf("admin login: %w", err)
	}
	e.adminToken = tok
	return tok, nil
}

// AdminCall calls the gateway's admin API (or any route) as the admin.
func (e *Env) AdminCall(ctx context.Context, method, path string, in, out any) (int, error) {
	tok, err := e.Admin(ctx)
	if err != nil {
		return 0, err
	}
	return e.GW.Call(ctx, method, path, tok, nil, in, out)
}

// UserCall calls the gateway's public API as the named user (logged in at start).
func (e *Env) UserCall(ctx context.Context, name, method, path string, hdr map[string]string, in, out any) (int, error) {
	u, ok := e.st.Users[name]
	if !ok {
		return 0, fmt.Errorf("lab user %q is not signed up (run ./scripts/lab start %d)", name, e.M.ID)
	}
	return e.GW.Call(ctx, method, path, u.Token, hdr, in, out)
}

// Owner calls an owner's internal API (service name as in OwnersConfig().Services).
func (e *Env) Owner(ctx context.Context, service, method, path string, in, out any) (int, error) {
	return e.owner(ctx, e.Owners.Client, service, method, path, in, out)
}

// OwnerSlow is Owner for a long operation (a rebuild): the same client (transport and
// credentials) with a 5-minute timeout.
func (e *Env) OwnerSlow(ctx context.Context, service, method, path string, in, out any) (int, error) {
	hc := *e.Owners.Client
	hc.Timeout = 5 * time.Minute
	return e.owner(ctx, &hc, service, method, path, in, out)
}

func (e *Env) owner(ctx context.Context, hc *http.Client, service, method, path string, in, out any) (int, error) {
	base, ok := e.Owners.Services[service]
	if !ok {
		return 0, fmt.Errorf("no internal API known for %q", service)
	}
	c := gwclient.Client{Base: base, HC: hc}
	return c.Call(ctx, method, path, "", nil, in, out)
}

// Audit runs the auditor (infra/checks/internal/audit) over the whole platform.
func (e *Env) Audit(ctx context.Context) (audit.Report, error) {
	return audit.Run(ctx, e.Owners)
}

// User returns a named user of the manifest (signed up at start).
func (e *Env) User(name string) (User, bool) {
	u, ok := e.st.Users[name]
	return u, ok
}

// UserEmail is the fixed email of a lab's named user.
func UserEmail(lab int, name string) string {
	return fmt.Sprintf("lab%02d-%s@labs.polyshop.local", lab, name)
}

// userPassword is the fixed password of a lab's named user (a lab platform: known on purpose).
func userPassword(lab int, name string) string {
	return fmt.Sprintf("Lab%02d-%s-Polyshop-2026", lab, name)
}

// Set and Get keep the lab's own notes in its state (ids it created, a baseline).
func (e *Env) Set(key, value string) { e.st.Values[key] = value }

// Get returns a note kept by Set ("" when none).
func (e *Env) Get(key string) string { return e.st.Values[key] }

// Path is a file in the lab's state folder, e.g. Path("answers.json").
func (e *Env) Path(name string) string { return filepath.Join(e.StateDir, name) }

// Script runs one of the repository's scripts (./scripts/<name> args...), its output
// indented in the lab's output.
func (e *Env) Script(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(e.Root, "scripts", name), args...)
	cmd.Dir = e.Root
	w := &indent{w: e.Out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("./scripts/%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

type indent struct {
	w   io.Writer
	mid bool
}

func (i *indent) Write(p []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if !i.mid {
			fmt.Fprint(i.w, "      | ")
		}
		fmt.Fprint(i.w, line)
		i.mid = !strings.HasSuffix(line, "\n")
	}
	return len(p), nil
}

// Eventually polls check every 250 ms until it returns true or the timeout passes; it
// returns the last error or a timeout error naming what.
func Eventually(ctx context.Context, timeout time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := check()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
			}
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
