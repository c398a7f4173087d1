package httpapi

import (
	"net/http"
	"net/url"
	"time"

	"polyshop/shared/httpx"
)

// registerUsers adds sign-up, login, logout and the caller's own profile. The user id
// always comes from the session, never from the request, so nobody can reach another
// user's profile.
func (a *API) registerUsers(mux *http.ServeMux) {
	mux.Handle("POST /api/users", httpx.Handler(a.log, func(w http.ResponseWriter, r *http.Request) error {
		return a.forward(w, r, a.up.Users, "/users")
	}))
	mux.Handle("POST /api/sessions", httpx.Handler(a.log, a.login))
	mux.Handle("DELETE /api/sessions/current", httpx.Handler(a.log, a.logout))
	mux.Handle("GET /api/me", a.requireUser(func(w http.ResponseWriter, r *http.Request, p Principal) error {
		return a.forward(w, r, a.up.Users, "/users/"+url.PathEscape(p.UserID))
	}))
	mux.Handle("PUT /api/me/address", a.requireUser(func(w http.ResponseWriter, r *http.Request, p Principal) error {
		return a.forward(w, r, a.up.Users, "/users/"+url.PathEscape(p.UserID)+"/address")
	}))
	mux.Handle("DELETE /api/me", a.requireUser(a.deleteMe))
}

type loginAnswer struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	SessionID string    `json:"sessionId"`
	UserID    string    `json:"userId"`
	Role      string    `json:"role"`
}

// login forwards the credentials and the client's address (for per-address throttling)
// to the sessions service and, on success, also sets the session as an HttpOnly cookie
// for browsers. Problems (401, 429 with Retry-After, 503) pass through.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := httpx.DecodeJSON(r, &req, 16<<10); err != nil {
		return err
	}
	var out loginAnswer
	hdr := http.Header{"X-Forwarded-For": {clientIP(r)}}
	if err := a.doJSON(r.Context(), http.MethodPost, a.up.Sessions, "/sessions", hdr, req, &out); err != nil {
		return err
	}
	maxAge := int(time.Until(out.ExpiresAt).Seconds())
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: out.Token, Path: "/", MaxAge: max(maxAge, 1),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.cookieSecure})
	w.Header().Set("Cache-Control", "no-store")
	return httpx.WriteJSON(w, http.StatusCreated, out)
}

// clearCookie expires the session cookie in the browser.
func (a *API) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.cookieSecure})
}

// logout ends the session of the bearer token or cookie, forgets it in this gateway's
// cache at once, and clears the cookie (also when the session was already gone).
func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	token := tokenOf(r)
	if token == "" {
		return httpx.Unauthorized("Sign in first: send Authorization: Bearer <token> or the session cookie.")
	}
	a.auth.Forget(token)
	a.clearCookie(w)
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	if err := a.doJSON(r.Context(), http.MethodDelete, a.up.Sessions, "/sessions/current", hdr, nil, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteMe deletes the caller's account in the users service. The rest is choreographed:
// users emits users.deleted, on which sessions revokes every session of the user (and
// other services clean up their copies). This gateway forgets the token at once.
func (a *API) deleteMe(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := a.doJSON(r.Context(), http.MethodDelete, a.up.Users, "/users/"+url.PathEscape(p.UserID), nil, nil, nil); err != nil {
		return err
	}
	a.auth.Forget(tokenOf(r))
	a.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
