// Package httpapi is the sessions service's internal HTTP API (documented in openapi.yaml)
// and the one table from domain errors to HTTP statuses. Only the gateway calls it.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/sessions/internal/sessions"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
)

// API serves the sessions endpoints.
type API struct {
	svc    *sessions.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
	// loginInflight bounds POST /sessions (a bulkhead).
	loginInflight int
}

// Defaults of the in-flight bounds (SESSIONS_MAX_INFLIGHT, SESSIONS_LOGIN_MAX_INFLIGHT).
//
// Validating a token (every authenticated request of the gateway) is one Redis round trip
// of well under a millisecond, so the service as a whole keeps httpx's default of 64: at a
// few thousand answers a second that is a queue of a few tens of milliseconds at most.
// A login waits on the users service's credential check, an argon2id hash that users runs
// two at a time and bounds to 8 in flight (USERS_HASH_MAX_INFLIGHT): more logins in flight
// here would only wait to be refused there, while holding slots that validations need. So
// logins have a bulkhead of their own of 8.
const (
	DefaultMaxInflight   = 64
	DefaultLoginInflight = 8
)

// Option configures an API.
type Option func(*API)

// WithLimits sets the in-flight bound (httpx.Shed). /healthz, /readyz and /metrics stay
// outside it.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// WithLoginInflight sets the bulkhead of POST /sessions: at most n logins are served at
// once, inside the service's bound, and the next is shed at once with 503 + Retry-After.
func WithLoginInflight(n int) Option { return func(a *API) { a.loginInflight = n } }

// New returns the API; checks feed /readyz and reg /metrics (a new registry when nil).
func New(svc *sessions.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}, loginInflight: DefaultLoginInflight}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Handler returns the routes wrapped in the shared middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("POST /sessions", h(a.login))
	mux.Handle("POST /sessions/validate", h(a.validate))
	mux.Handle("DELETE /sessions/current", h(a.logout))
	mux.Handle("GET /users/{id}/sessions", h(a.list))
	mux.Handle("DELETE /users/{id}/sessions", h(a.revokeAll))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	// Logins wait on users' password hashing: a bulkhead keeps them from taking the slots
	// that validations need.
	limits := a.limits
	limits.Bulkheads = []httpx.Bulkhead{
		{Name: "login", Match: httpx.Routes("POST /sessions"), MaxInflight: max(a.loginInflight, 1)},
	}
	// Unknown paths, internal ones of other services included, are 404 problems.
	return httpx.StandardLimited("sessions", a.log, a.reg, limits, mux)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	SessionID string    `json:"sessionId"`
	UserID    string    `json:"userId"`
	Role      string    `json:"role"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := httpx.DecodeJSON(r, &req, 16<<10); err != nil {
		return err
	}
	sess, token, err := a.svc.Login(r.Context(), req.Email, req.Password, httpx.ClientAddr(r))
	if err != nil {
		return problem(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusCreated, loginResponse{Token: token, ExpiresAt: sess.ExpiresAt,
		SessionID: sess.ID, UserID: sess.UserID, Role: sess.Role})
}

type validateRequest struct {
	Token string `json:"token"`
}

type principalJSON struct {
	UserID    string    `json:"userId"`
	Role      string    `json:"role"`
	SessionID string    `json:"sessionId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func (a *API) validate(w http.ResponseWriter, r *http.Request) error {
	var req validateRequest
	if err := httpx.DecodeJSON(r, &req, 4<<10); err != nil {
		return err
	}
	sess, err := a.svc.Validate(r.Context(), req.Token)
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, principalJSON{UserID: sess.UserID, Role: sess.Role,
		SessionID: sess.ID, ExpiresAt: sess.ExpiresAt})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	token := bearer(r)
	if token == "" {
		return httpx.Unauthorized("Send the session token as Authorization: Bearer <token>.")
	}
	if err := a.svc.Logout(r.Context(), token); err != nil {
		return problem(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type sessionJSON struct {
	SessionID  string    `json:"sessionId"`
	ClientAddr string    `json:"clientAddr"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	list, err := a.svc.List(r.Context(), r.PathValue("id"))
	if err != nil {
		return problem(err)
	}
	out := struct {
		Sessions []sessionJSON `json:"sessions"`
	}{Sessions: []sessionJSON{}}
	for _, s := range list {
		out.Sessions = append(out.Sessions, sessionJSON{SessionID: s.ID, ClientAddr: s.ClientAddr,
			CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt})
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) revokeAll(w http.ResponseWriter, r *http.Request) error {
	n, err := a.svc.RevokeAll(r.Context(), r.PathValue("id"), events.SessionEndRevoked)
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

// problem is the one table from domain errors to HTTP problems; anything else is a 500.
func problem(err error) error {
	var throttled *sessions.ThrottledError
	var field *sessions.FieldError
	switch {
	case errors.As(err, &throttled):
		return httpx.TooManyRequests("Too many failed logins for this "+throttled.Scope+"; try again later.", throttled.RetryAfter)
	case errors.As(err, &field):
		return httpx.Unprocessable("A field is invalid; see errors.", httpx.FieldError{Field: field.Field, Reason: field.Reason})
	case errors.Is(err, sessions.ErrBadCredentials):
		return httpx.Unauthorized("Invalid email or password.")
	case errors.Is(err, sessions.ErrNotFound):
		return httpx.Unauthorized("The session token is invalid, expired or revoked.")
	case errors.Is(err, sessions.ErrUnavailable):
		e := httpx.Unavailable("The users service is unavailable; try again shortly.")
		e.Headers = http.Header{"Retry-After": {"1"}}
		return errors.Join(e, err) // the cause is logged, the client sees the 503
	}
	return err
}
