// Package httpapi is the gateway's public HTTP API: the only entry point for people and
// labs. It authenticates at the edge (sessions service), composes and forwards requests to
// the owning services' internal APIs, and never exposes an internal endpoint: every public
// route is registered explicitly under /api, there is no catch-all proxy.
//
// Each area registers its routes in its own file (users.go, catalog.go, activity.go,
// stock.go, faults.go, orders.go, events.go, console.go, web.go …)
// with a register function that Routes calls; adding an area is one line in Routes.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/shared/httpx"
)

// Upstreams are the base URLs of the internal services (such as http://127.0.0.1:8081).
type Upstreams struct {
	Users, Sessions, Catalog, Search, Activity, Inventory, Orders, Payments string
}

// Principal is the signed-in caller, as the sessions service vouches for it.
type Principal struct {
	UserID, Role, SessionID string
}

// API is the gateway's HTTP API. It is safe for concurrent use.
type API struct {
	log          *slog.Logger
	client       *http.Client
	up           Upstreams
	auth         *Authenticator
	reg          *prometheus.Registry
	checks       map[string]func(context.Context) error
	cookieSecure bool
	// composeTimeout bounds each secondary call of a composed answer.
	composeTimeout time.Duration
	extra          []func(*http.ServeMux)
	// ops: the live event view and the consistency console (events.go, console.go).
	ops operator
	// categories: the catalog's category registry, for GET /api/products (catalog.go).
	categories categoryCache
	// limits bound the public requests in flight (httpx.Shed); see WithLimits.
	limits httpx.Limits
}

// DefaultMaxInflight bounds the public requests the gateway serves at once. The gateway
// itself does little work per request; what it holds in flight are requests waiting on
// the owners, which bound their own (search and catalog 32 each) and answer 503 at once
// beyond. 128 leaves room for every owner's share without building a queue of its own.
const DefaultMaxInflight = 128

// WithLimits sets the bound on public requests in flight and their deadline (httpx.Shed;
// httpx.DefaultMaxInflight when not set). GET /api/events, a long-lived stream, is always
// outside them.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// Option configures an API.
type Option func(*API)

// WithAuthCacheTTL sets how long a validated token is trusted without asking the sessions
// service again (default and maximum 1s, so a logout or revocation is effective within a
// second everywhere; 0 disables the cache).
func WithAuthCacheTTL(d time.Duration) Option {
	return func(a *API) { a.auth = NewAuthenticator(a.client, a.up.Sessions, d) }
}

// WithSecureCookie marks the session cookie Secure (for deployments behind HTTPS).
func WithSecureCookie(secure bool) Option { return func(a *API) { a.cookieSecure = secure } }

// WithRegistry sets the Prometheus registry served on /metrics.
func WithRegistry(reg *prometheus.Registry) Option { return func(a *API) { a.reg = reg } }

// WithChecks sets the readiness checks of /readyz.
func WithChecks(checks map[string]func(context.Context) error) Option {
	return func(a *API) { a.checks = checks }
}

// WithRoutes registers extra routes (for tests and for areas wired in main).
func WithRoutes(register func(*http.ServeMux)) Option {
	return func(a *API) { a.extra = append(a.extra, register) }
}

// New returns the API calling the services at up with client (use httpx.NewClient, which
// propagates trace and correlation ids).
func New(log *slog.Logger, client *http.Client, up Upstreams, opts ...Option) *API {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if client == nil {
		client = httpx.NewClient(10 * time.Second)
	}
	a := &API{log: log, client: client, up: up, composeTimeout: DefaultComposeTimeout,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}}
	a.auth = NewAuthenticator(client, up.Sessions, DefaultAuthCacheTTL)
	for _, o := range opts {
		o(a)
	}
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
	}
	return a
}

// Routes returns every public route wrapped in the shared middleware.
func (a *API) Routes() http.Handler {
	mux := http.NewServeMux()
	a.registerUsers(mux)
	a.registerCatalog(mux)
	a.registerActivity(mux)
	a.registerStock(mux)
	a.registerFaults(mux)
	a.registerOrders(mux)
	a.registerEvents(mux)
	a.registerConsole(mux)
	a.registerOperator(mux)
	a.registerWeb(mux)
	for _, register := range a.extra {
		register(mux)
	}
	// The public port says only whether the gateway is ready; the checks' details and the
	// metrics are on the loopback admin listener (AdminRoutes).
	health := httpx.Health{Checks: a.checks}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		res := health.Check(r.Context())
		status := http.StatusOK
		if res.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		_ = httpx.WriteJSON(w, status, map[string]string{"status": res.Status})
	})
	// Unknown paths, internal ones of other services included, are 404 problems.
	limits := a.limits
	limits.Exempt = httpx.Paths("/api/events")
	limits.Bulkheads = a.bulkheads()
	return httpx.StandardLimited("gateway", a.log, a.reg, limits, mux, a.edge)
}

// AdminRoutes are the operator's routes, served on a loopback listener of their own:
// /healthz, /readyz with every check's result, and /metrics.
func (a *API) AdminRoutes() http.Handler {
	mux := http.NewServeMux()
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	return httpx.Standard("gateway-admin", a.log, prometheus.NewRegistry(), mux)
}

// principalKey carries the Principal of an authenticated request.
type principalKey struct{}

// PrincipalFrom returns the Principal that requireUser put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// requireUser runs fn for a request carrying a valid session token (Authorization: Bearer
// or the session cookie); without one it answers 401, and 503 when the sessions service
// cannot answer. fn's error is written as a problem.
func (a *API) requireUser(fn func(w http.ResponseWriter, r *http.Request, p Principal) error) http.Handler {
	return httpx.Handler(a.log, func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.authenticate(r)
		if err != nil {
			return err
		}
		return fn(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), p)
	})
}

// requireAdmin is requireUser for admins only: 403 for anyone else who is signed in.
func (a *API) requireAdmin(fn func(w http.ResponseWriter, r *http.Request, p Principal) error) http.Handler {
	return a.requireUser(func(w http.ResponseWriter, r *http.Request, p Principal) error {
		if p.Role != "admin" {
			return httpx.Forbidden("This needs an admin account.")
		}
		return fn(w, r, p)
	})
}

func (a *API) authenticate(r *http.Request) (Principal, error) {
	token := tokenOf(r)
	if token == "" {
		return Principal{}, httpx.Unauthorized("Sign in first: send Authorization: Bearer <token> or the session cookie.")
	}
	return a.auth.Validate(r.Context(), token)
}

// Headers forwarded to and from upstreams. Everything else stays at the edge: cookies,
// Authorization, hop-by-hop headers, and Location (it names internal paths).
var (
	forwardRequestHeaders  = []string{"Content-Type", "Accept", "If-Match", "If-None-Match", "Idempotency-Key"}
	forwardResponseHeaders = []string{"Content-Type", "ETag", "Retry-After", "Cache-Control", "Last-Modified"}
)

// Headers the gateway sets on upstream requests for an authenticated caller, so owners can
// scope data to the caller; upstreams trust them because only the gateway reaches them.
const (
	HeaderUserID   = "X-User-Id"
	HeaderUserRole = "X-User-Role"
)

// forward sends r's method, query and body to base+path with the internal client, and
// copies the upstream's status, selected headers and body back. Upstream problems pass
// through as they are; an unreachable upstream is a 503 problem naming it. The client's
// address goes along as X-Forwarded-For, the principal (if any) as X-User-Id/X-User-Role.
func (a *API) forward(w http.ResponseWriter, r *http.Request, base, path string) error {
	target := strings.TrimRight(base, "/") + path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	var body io.Reader
	if r.Body != nil && r.Body != http.NoBody {
		body = http.MaxBytesReader(w, r.Body, 1<<20)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, body)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	for _, h := range forwardRequestHeaders {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set("X-Forwarded-For", clientIP(r))
	if p, ok := PrincipalFrom(r.Context()); ok {
		req.Header.Set(HeaderUserID, p.UserID)
		req.Header.Set(HeaderUserRole, p.Role)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return a.unavailable(base, err)
	}
	defer resp.Body.Close()
	for _, h := range forwardResponseHeaders {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return nil
}

// getJSON GETs base+path and decodes a 2xx JSON answer into v. An upstream error answer is
// returned as an *httpx.Error (so it passes through), an unreachable upstream as a 503.
func (a *API) getJSON(ctx context.Context, base, path string, v any) error {
	return a.doJSON(ctx, http.MethodGet, base, path, nil, nil, v)
}

// doJSON sends in (when not nil) as JSON to base+path and decodes the answer into out
// (when not nil); errors as getJSON.
func (a *API) doJSON(ctx context.Context, method, base, path string, hdr http.Header, in, out any) error {
	err := callJSON(ctx, a.client, method, strings.TrimRight(base, "/")+path, hdr, in, out)
	var ue *unreachableError
	if errors.As(err, &ue) {
		return a.unavailable(base, ue.err)
	}
	return err
}

// unreachableError is a transport failure: the upstream gave no HTTP answer.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return "upstream unreachable: " + e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// callJSON is doJSON on a full URL; a transport failure is an *unreachableError.
func callJSON(ctx context.Context, client *http.Client, method, url string, hdr http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return &unreachableError{err}
	}
	defer resp.Body.Close()
	if perr := httpx.ReadProblem(resp); perr != nil {
		return perr
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
	}
	return nil
}

// unavailable is the 503 problem for an upstream that did not answer; the cause is logged.
func (a *API) unavailable(base string, cause error) error {
	name := a.nameOf(base)
	e := httpx.Unavailable(fmt.Sprintf("The %s service is unavailable; try again shortly.", name))
	e.Headers = http.Header{"Retry-After": {"1"}}
	a.log.Warn("upstream unavailable", "upstream", name, "err", cause)
	return e
}

func (a *API) nameOf(base string) string {
	for name, b := range map[string]string{"users": a.up.Users, "sessions": a.up.Sessions, "catalog": a.up.Catalog,
		"search": a.up.Search, "activity": a.up.Activity, "inventory": a.up.Inventory, "orders": a.up.Orders,
		"payments": a.up.Payments} {
		if b == base && b != "" {
			return name
		}
	}
	return "upstream"
}

// clientIP is the address of the peer that connected to the gateway. The gateway is the
// edge, so a client-sent X-Forwarded-For is ignored: trusting it would let anyone dodge
// the per-address login throttle.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
