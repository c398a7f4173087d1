package labs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"polyshop/infra/checks/internal/gwclient"
)

// Runner runs the labs of a checkout against the running platform.
type Runner struct {
	Root    string // repository root (scripts/labs, .polyshop/labs)
	Gateway string // the gateway's base URL
	Out     io.Writer
	// Shared: the platform is shared with other work (a developer's), so the self-test's
	// audit counts only new findings naming the lab's own orders and products; off (the
	// test suite, on a platform it started), any new finding fails the lab.
	Shared bool
	labs   []Manifest
}

// NewRunner loads the manifests under root/scripts/labs.
func NewRunner(root, gateway string, out io.Writer) (*Runner, error) {
	ms, err := LoadManifests(filepath.Join(root, "scripts", "labs"))
	if err != nil {
		return nil, err
	}
	return &Runner{Root: root, Gateway: strings.TrimRight(gateway, "/"), Out: out, labs: ms}, nil
}

// Labs are the manifests, by id.
func (r *Runner) Labs() []Manifest { return r.labs }

// Lab finds a lab by number ("4", "04") or slug.
func (r *Runner) Lab(arg string) (Manifest, error) {
	for _, m := range r.labs {
		if arg == m.Slug || arg == fmt.Sprint(m.ID) || arg == fmt.Sprintf("%02d", m.ID) || arg == fmt.Sprintf("%02d-%s", m.ID, m.Slug) {
			return m, nil
		}
	}
	return Manifest{}, fmt.Errorf("no lab %q (./scripts/lab list)", arg)
}

func (r *Runner) env(m Manifest) (*Env, error) {
	e := &Env{
		Root:     r.Root,
		M:        m,
		StateDir: filepath.Join(r.Root, ".polyshop", "labs", fmt.Sprintf("%02d", m.ID)),
		Out:      r.Out,
		GW:       gwclient.Client{Base: r.Gateway, HC: withRetry(&http.Client{Timeout: 30 * time.Second, Transport: labTransport(r.Gateway, m.ID)})},
	}
	owners, err := OwnersConfig()
	if err != nil {
		return nil, err
	}
	owners.Client = withRetry(owners.Client)
	e.Owners = owners
	st, err := loadState(e.Path("state.json"))
	if err != nil {
		return nil, err
	}
	e.st = st
	return e, nil
}

func (e *Env) save() error { return saveState(e.Path("state.json"), e.st) }

func funcs(m Manifest) (Funcs, error) {
	f, ok := registry[m.ID]
	if !ok {
		return f, fmt.Errorf("lab %02d has a manifest but no Go functions (infra/checks/internal/labs/lab%02d.go)", m.ID, m.ID)
	}
	return f, nil
}

// List prints the labs.
func (r *Runner) List() {
	fmt.Fprintf(r.Out, "%-4s %-24s %5s  %s\n", "lab", "slug", "min", "title")
	for _, m := range r.labs {
		title := m.Title
		if m.Stretch {
			title += " (stretch)"
		}
		if !Registered(m.ID) {
			title += " [not runnable yet]"
		}
		fmt.Fprintf(r.Out, "%02d   %-24s %5d  %s\n", m.ID, m.Slug, m.Minutes, title)
	}
}

// Start resets the lab, applies its switches, signs up its users, runs its Start and
// prints the README.
func (r *Runner) Start(ctx context.Context, m Manifest, quiet bool) error {
	f, err := funcs(m)
	if err != nil {
		return err
	}
	if err := r.Reset(ctx, m); err != nil {
		return err
	}
	e, err := r.env(m)
	if err != nil {
		return err
	}
	if len(m.Switches) > 0 {
		var doc any
		_ = json.Unmarshal(m.Switches, &doc)
		err := Eventually(ctx, 60*time.Second, "applying the lab's switches (PUT /api/admin/faults)", func() (bool, error) {
			_, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", doc, nil)
			return err == nil, err
		})
		if err != nil {
			return err
		}
		e.Logf("switches on: %s", compact(m.Switches))
	}
	for _, name := range m.Users {
		u, err := e.signUp(ctx, name)
		if err != nil {
			return err
		}
		e.st.Users[name] = u
		e.Logf("user %s (%s), password %s", u.Email, u.ID, u.Password)
	}
	if err := e.save(); err != nil {
		return err
	}
	if f.Start != nil {
		if err := f.Start(ctx, e); err != nil {
			_ = e.save()
			return fmt.Errorf("lab %02d start: %w", m.ID, err)
		}
	}
	if err := e.save(); err != nil {
		return err
	}
	if !quiet {
		if b, err := os.ReadFile(filepath.Join(m.Dir, "README.md")); err == nil {
			fmt.Fprintf(r.Out, "\n%s\n", b)
		}
		fmt.Fprintf(r.Out, "Lab %02d started. ./scripts/lab hint %d for a hint, ./scripts/lab verify %d to check.\n", m.ID, m.ID, m.ID)
	}
	return nil
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// signUp creates the named user (or, when it exists from an interrupted run, logs in)
// and logs in.
func (e *Env) signUp(ctx context.Context, name string) (User, error) {
	u := User{Name: name, Email: UserEmail(e.M.ID, name), Password: userPassword(e.M.ID, name)}
	var created struct {
		ID string `json:"id"`
	}
	body := map[string]string{"email": u.Email, "password": u.Password, "name": "Lab " + fmt.Sprint(e.M.ID) + " " + name}
	code, err := e.GW.Call(ctx, "POST", "/api/users", "", nil, body, &created)
	if err != nil && code != http.StatusConflict {
		return u, fmt.Errorf("signing up %s: %w", u.Email, err)
	}
	var login struct {
		Token  string `json:"token"`
		UserID string `json:"userId"`
	}
	// The session service learns of a new user from users' events; retry for a moment.
	err = Eventually(ctx, 15*time.Second, "login of "+u.Email, func() (bool, error) {
		_, err := e.GW.Call(ctx, "POST", "/api/sessions", "", nil, map[string]string{"email": u.Email, "password": u.Password}, &login)
		return err == nil, err
	})
	if err != nil {
		return u, err
	}
	u.ID, u.Token = login.UserID, login.Token
	if created.ID != "" && created.ID != u.ID {
		return u, fmt.Errorf("%s: signed up as %s, logged in as %s", u.Email, created.ID, u.ID)
	}
	return u, nil
}

// Hint prints the next hint not shown yet.
func (r *Runner) Hint(m Manifest) error {
	e, err := r.env(m)
	if err != nil {
		return err
	}
	text, n, last := NextHint(m.Hints, e.st.HintsShown)
	e.st.HintsShown = n
	if err := e.save(); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "Hint %d of %d: %s\n", n, len(m.Hints), text)
	if last {
		fmt.Fprintf(r.Out, "(that is the last hint; ./scripts/lab solve %d reaches the end state)\n", m.ID)
	}
	return nil
}

// ErrUnmet is returned by Verify when a point is not met.
var ErrUnmet = errors.New("not done yet")

// Verify prints each unmet point as "FAIL: …" and returns ErrUnmet when there is one.
func (r *Runner) Verify(ctx context.Context, m Manifest) ([]string, error) {
	f, err := funcs(m)
	if err != nil {
		return nil, err
	}
	e, err := r.env(m)
	if err != nil {
		return nil, err
	}
	fails, err := f.Verify(ctx, e)
	_ = e.save()
	if err != nil {
		return nil, fmt.Errorf("lab %02d verify could not check: %w", m.ID, err)
	}
	for _, s := range fails {
		fmt.Fprintln(r.Out, "FAIL:", s)
	}
	if len(fails) > 0 {
		return fails, ErrUnmet
	}
	fmt.Fprintf(r.Out, "PASS: lab %02d %s — every point holds\n", m.ID, m.Title)
	return nil, nil
}

// Solve reaches the lab's end state.
func (r *Runner) Solve(ctx context.Context, m Manifest) error {
	f, err := funcs(m)
	if err != nil {
		return err
	}
	e, err := r.env(m)
	if err != nil {
		return err
	}
	err = f.Solve(ctx, e)
	if serr := e.save(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("lab %02d solve: %w", m.ID, err)
	}
	fmt.Fprintf(r.Out, "Lab %02d solved; ./scripts/lab verify %d checks it.\n", m.ID, m.ID)
	return nil
}

// Reset undoes the lab: its Reset, then its named users deleted, the faults cleared and
// its state folder removed. It works whether or not the lab was started.
func (r *Runner) Reset(ctx context.Context, m Manifest) error {
	f, err := funcs(m)
	if err != nil {
		return err
	}
	e, err := r.env(m)
	if err != nil {
		return err
	}
	if f.Reset != nil {
		if err := f.Reset(ctx, e); err != nil {
			return fmt.Errorf("lab %02d reset: %w", m.ID, err)
		}
	}
	for _, name := range m.Users {
		if err := e.deleteUser(ctx, name); err != nil {
			return err
		}
	}
	if err := e.ClearFaults(ctx); err != nil {
		return err
	}
	return os.RemoveAll(e.StateDir)
}

// deleteUser deletes a named user through the public API (log in, DELETE /api/me); a
// user that cannot log in does not exist.
func (e *Env) deleteUser(ctx context.Context, name string) error {
	email, pw := UserEmail(e.M.ID, name), userPassword(e.M.ID, name)
	var tok string
	var gone bool
	// A gateway restarting (a deployment) answers again within seconds.
	err := Eventually(ctx, 60*time.Second, "logging in "+email+" to delete it", func() (bool, error) {
		var err error
		tok, err = e.GW.Login(ctx, email, pw)
		gone = err != nil && strings.Contains(err.Error(), "= 401")
		return err == nil || gone, err
	})
	if gone {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := e.GW.Call(ctx, "DELETE", "/api/me", tok, nil, nil, nil); err != nil {
		return fmt.Errorf("deleting %s: %w", email, err)
	}
	return nil
}

// UserGone reports whether a lab's named user can no longer log in.
func (e *Env) UserGone(ctx context.Context, name string) (bool, error) {
	_, err := e.GW.Login(ctx, UserEmail(e.M.ID, name), userPassword(e.M.ID, name))
	if err == nil {
		return false, nil
	}
	if strings.Contains(err.Error(), "= 401") {
		return true, nil
	}
	return false, err
}

// ClearFaults sets every switch back to its default (DELETE /api/admin/faults), waiting up
// to 60 s for an owner that is restarting (a crash point, a deployment).
func (e *Env) ClearFaults(ctx context.Context) error {
	return Eventually(ctx, 60*time.Second, "clearing the faults (DELETE /api/admin/faults)", func() (bool, error) {
		_, err := e.AdminCall(ctx, "DELETE", "/api/admin/faults", nil, nil)
		return err == nil, err
	})
}

// labTransport reaches a gateway on loopback from a source address of the lab's own,
// 127.0.0.(100+id): the platform throttles failed logins per client address (sessions:
// 20 in 15 minutes), and checking that a lab's deleted users can no longer log in is a
// failed login. From 127.0.0.1 those checks, lab after lab and after the other tests'
// wrong passwords, would lock the admin out of the labs that follow. A gateway elsewhere
// is dialled as usual.
func labTransport(gateway string, id int) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	u, err := url.Parse(gateway)
	if err != nil {
		return t
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return t
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(100+id%100))}}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", addr)
	}
	return t
}
