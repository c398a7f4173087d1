// Package httpapi is the users service's internal HTTP API (documented in openapi.yaml):
// routes, JSON shapes, and the one table that maps domain errors to HTTP statuses.
// It is reached only by other services (the gateway, sessions), never by end users.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/services/users/internal/users"
	"polyshop/shared/httpx"
)

// API serves the users service's HTTP endpoints.
type API struct {
	svc    *users.Service
	log    *slog.Logger
	checks map[string]func(context.Context) error
	reg    *prometheus.Registry
	limits httpx.Limits
	// hashInflight bounds the routes that hash a password (hashing).
	hashInflight int
}

// Defaults of the in-flight bounds (USERS_MAX_INFLIGHT, USERS_HASH_MAX_INFLIGHT).
//
// Every request waits on PostgreSQL through a pool of 16 connections (shared/pgpool) that
// the outbox relay shares: 32 in flight is twice what can run at once, enough to keep the
// pool busy, and beyond it a request would only queue for a connection.
//
// Sign-up and credential checks each compute an argon2id hash (19 MiB, tens of
// milliseconds of a core) and only USERS_HASH_CONCURRENCY (2) run at once; the others wait
// up to USERS_HASH_WAIT for a slot. Without a bulkhead of their own, a burst of logins would
// fill every slot of the service with requests waiting for a hash and the reads by id
// (the gateway's and orders' lookups) would be shed behind them. 8 is the two hashing plus
// three hashes' worth of waiting each: the wait stays well under USERS_HASH_WAIT.
const (
	DefaultMaxInflight  = 32
	DefaultHashInflight = 8
)

// Option configures an API.
type Option func(*API)

// WithLimits sets the service's in-flight bound (httpx.Shed). The export (a rebuild pages
// through it) stays outside it, as do /healthz, /readyz and /metrics.
func WithLimits(l httpx.Limits) Option { return func(a *API) { a.limits = l } }

// WithHashInflight sets the bulkhead of the routes that hash a password (POST /users,
// POST /credentials/verify): at most n of them are served at once, inside the service's
// bound, and the next is shed at once with 503 + Retry-After.
func WithHashInflight(n int) Option { return func(a *API) { a.hashInflight = n } }

// New returns the API for svc; checks are the readiness checks of /readyz and reg the
// metrics registry of /metrics (a new one when nil).
func New(svc *users.Service, log *slog.Logger, checks map[string]func(context.Context) error, reg *prometheus.Registry, opts ...Option) *API {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &API{svc: svc, log: log, checks: checks, reg: reg,
		limits: httpx.Limits{MaxInflight: DefaultMaxInflight}, hashInflight: DefaultHashInflight}
	for _, o := range opts {
		o(a)
	}
	a.limits.Exempt = httpx.Paths("/export/")
	return a
}

// Handler returns every route wrapped in the shared middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(a.log, fn) }
	mux.Handle("POST /users", h(a.signUp))
	mux.Handle("GET /users/{id}", h(a.getUser))
	mux.Handle("PUT /users/{id}/address", h(a.changeAddress))
	mux.Handle("DELETE /users/{id}", h(a.deleteUser))
	mux.Handle("POST /credentials/verify", h(a.verify))
	mux.Handle("GET /export/addresses", h(a.exportAddresses))
	httpx.Health{Checks: a.checks}.Register(mux, a.reg)
	// The routes that hash share a bulkhead, so hashing cannot take every slot.
	limits := a.limits
	limits.Bulkheads = []httpx.Bulkhead{
		{Name: "hashing", Match: httpx.Routes("POST /users", "POST /credentials/verify"), MaxInflight: max(a.hashInflight, 1)},
	}
	// Unknown paths, internal ones of other services included, are 404 problems.
	return httpx.StandardLimited("users", a.log, a.reg, limits, mux)
}

// userJSON is a user as the API shows it: never any password material.
type userJSON struct {
	ID        string         `json:"id"`
	Email     string         `json:"email"`
	Name      string         `json:"name"`
	Role      string         `json:"role"`
	Address   *users.Address `json:"address"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	Version   int64          `json:"version"`
}

func toJSON(u users.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), Address: u.Address,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, Version: u.Version}
}

type signUpRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (a *API) signUp(w http.ResponseWriter, r *http.Request) error {
	var req signUpRequest
	if err := httpx.DecodeJSON(r, &req, 16<<10); err != nil {
		return err
	}
	u, err := a.svc.SignUp(r.Context(), users.SignUpInput{Email: req.Email, Password: req.Password, Name: req.Name, ClientAddr: httpx.ClientAddr(r)})
	if err != nil {
		return problem(err)
	}
	w.Header().Set("Location", "/users/"+u.ID)
	return httpx.WriteJSON(w, http.StatusCreated, toJSON(u))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toJSON(u))
}

type addressRequest struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

func (a *API) changeAddress(w http.ResponseWriter, r *http.Request) error {
	var req addressRequest
	if err := httpx.DecodeJSON(r, &req, 16<<10); err != nil {
		return err
	}
	u, err := a.svc.ChangeAddress(r.Context(), r.PathValue("id"), users.Address{
		Street: req.Street, City: req.City, PostalCode: req.PostalCode, Country: req.Country})
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, toJSON(u))
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.Delete(r.Context(), r.PathValue("id")); err != nil {
		return problem(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type credentialsRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type credentialsResponse struct {
	UserID string `json:"userId"`
	Role   string `json:"role"`
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) error {
	var req credentialsRequest
	if err := httpx.DecodeJSON(r, &req, 16<<10); err != nil {
		return err
	}
	u, err := a.svc.VerifyCredentials(r.Context(), req.Email, req.Password)
	if err != nil {
		return problem(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, credentialsResponse{UserID: u.ID, Role: string(u.Role)})
}

// problem is the one table from domain errors to HTTP problems. Anything it does not know
// is returned as is and becomes a logged 500.
func problem(err error) error {
	var invalid users.Invalid
	var verr *users.ValidationError
	var throttled *users.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return httpx.TooManyRequests("Too many sign-ups for this "+throttled.Scope+"; try again later.", throttled.RetryAfter)
	case errors.Is(err, users.ErrBusy):
		e := httpx.Unavailable("Too many password checks in progress; try again in a moment.")
		e.Headers = http.Header{"Retry-After": {"1"}}
		return e
	case errors.As(err, &invalid):
		fields := make([]httpx.FieldError, len(invalid))
		for i, v := range invalid {
			fields[i] = httpx.FieldError{Field: v.Field, Reason: v.Reason}
		}
		return httpx.Unprocessable("Some fields are invalid; see errors.", fields...)
	case errors.As(err, &verr):
		return httpx.Unprocessable("A field is invalid; see errors.", httpx.FieldError{Field: verr.Field, Reason: verr.Reason})
	case errors.Is(err, users.ErrNotFound):
		return httpx.NotFound("No such user.")
	case errors.Is(err, users.ErrEmailTaken):
		e := httpx.Conflict("An account with this email already exists.")
		e.Fields = []httpx.FieldError{{Field: "email", Reason: "is already registered"}}
		return e
	case errors.Is(err, users.ErrBadCredentials):
		return httpx.Unauthorized("Invalid email or password.")
	}
	return err
}
