package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"polyshop/shared/httpx"
)

// CookieName is the HttpOnly session cookie set at login.
const CookieName = "polyshop_session"

// DefaultAuthCacheTTL is how long a validated token is trusted without asking the sessions
// service. It is also the maximum: a logout, a revocation or an account deletion must take
// effect everywhere within one second.
const DefaultAuthCacheTTL = time.Second

// Authenticator validates session tokens with the sessions service
// (POST /sessions/validate), caching positive answers for a short TTL. Only successes are
// cached, keyed by the token's SHA-256. It is safe for concurrent use.
type Authenticator struct {
	client *http.Client
	base   string
	ttl    time.Duration

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	p   Principal
	exp time.Time
}

// NewAuthenticator returns an Authenticator asking the sessions service at base; ttl is
// capped at DefaultAuthCacheTTL, and 0 disables the cache.
func NewAuthenticator(client *http.Client, base string, ttl time.Duration) *Authenticator {
	ttl = min(max(ttl, 0), DefaultAuthCacheTTL)
	return &Authenticator{client: client, base: strings.TrimRight(base, "/"), ttl: ttl, cache: map[[32]byte]cached{}}
}

// Validate returns the Principal of token, a 401 *httpx.Error when the token is not a live
// session, or a 503 when the sessions service does not answer.
func (au *Authenticator) Validate(ctx context.Context, token string) (Principal, error) {
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	if au.ttl > 0 {
		au.mu.Lock()
		c, ok := au.cache[key]
		au.mu.Unlock()
		if ok && now.Before(c.exp) {
			return c.p, nil
		}
	}
	var out struct {
		UserID    string `json:"userId"`
		Role      string `json:"role"`
		SessionID string `json:"sessionId"`
	}
	err := callJSON(ctx, au.client, http.MethodPost, au.base+"/sessions/validate", nil, map[string]string{"token": token}, &out)
	var he *httpx.Error
	var ue *unreachableError
	switch {
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		au.Forget(token)
		return Principal{}, httpx.Unauthorized("The session is invalid, expired or revoked; sign in again.")
	case errors.As(err, &ue) || (errors.As(err, &he) && he.Status >= 500):
		e := httpx.Unavailable("The sessions service is unavailable; try again shortly.")
		e.Headers = http.Header{"Retry-After": {"1"}}
		return Principal{}, e
	case err != nil:
		// Any other answer is a fault between gateway and sessions, not the caller's: 500.
		return Principal{}, fmt.Errorf("validate token: %s", err.Error())
	}
	p := Principal{UserID: out.UserID, Role: out.Role, SessionID: out.SessionID}
	if au.ttl > 0 {
		au.mu.Lock()
		if len(au.cache) > 10000 {
			for k, c := range au.cache {
				if now.After(c.exp) {
					delete(au.cache, k)
				}
			}
		}
		au.cache[key] = cached{p: p, exp: now.Add(au.ttl)}
		au.mu.Unlock()
	}
	return p, nil
}

// Forget drops token from the cache, so this gateway instance refuses it at once after a
// logout or account deletion (other instances within the cache TTL).
func (au *Authenticator) Forget(token string) {
	key := sha256.Sum256([]byte(token))
	au.mu.Lock()
	delete(au.cache, key)
	au.mu.Unlock()
}

// tokenOf returns the session token of r: the Authorization Bearer token, else the cookie.
func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}
