package httpapi

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"polyshop/shared/httpx"
)

// Limits the gateway applies at the edge, before any route runs.
const (
	// MaxBodyBytes is the largest request body accepted (413 above it). Every public body
	// is a small JSON document.
	MaxBodyBytes = 1 << 20
	// MaxTokenBytes is the longest session token looked at (401 above it): real tokens are
	// 43 characters; a 10 KiB "token" is not one, and must not travel to sessions.
	MaxTokenBytes = 512
)

// edge guards every public request: bodies over MaxBodyBytes are refused with 413 (the
// body is read here, so a route never sees a partial one), oversized tokens with 401, and
// writes authenticated by the session cookie must come from the shop's own origin
// (cross-site request forgery): an unsafe method with the cookie and no Authorization
// header needs an Origin naming this host (403 otherwise) and, with a body, Content-Type
// application/json (415 otherwise). Bearer-token clients are not affected: a browser never
// attaches an Authorization header to a forged request.
func (a *API) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkEdge(w, r); err != nil {
			httpx.WriteProblem(w, r, err, a.log)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func checkEdge(w http.ResponseWriter, r *http.Request) error {
	if len(rawToken(r)) > MaxTokenBytes {
		return httpx.Unauthorized("The session token is malformed: sign in again.")
	}
	if r.ContentLength > MaxBodyBytes {
		return tooLarge()
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil {
			return httpx.BadRequest("The request body could not be read.")
		}
		if len(b) > MaxBodyBytes {
			return tooLarge()
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
	}
	if cookieAuthenticatedWrite(r) {
		if !sameOrigin(r) {
			return httpx.Forbidden("Cross-site request refused: a write with the session cookie must come from this shop's own pages (Origin).")
		}
		if r.ContentLength > 0 {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				return &httpx.Error{Status: http.StatusUnsupportedMediaType,
					Detail: "Send the body as JSON: Content-Type: application/json."}
			}
		}
	}
	return nil
}

func tooLarge() error {
	return &httpx.Error{Status: http.StatusRequestEntityTooLarge,
		Detail: "The request body is larger than 1 MiB."}
}

// rawToken is the bearer token or the cookie's value, untrimmed, for the size check.
func rawToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return h
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

func cookieAuthenticatedWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	if r.Header.Get("Authorization") != "" {
		return false
	}
	_, err := r.Cookie(CookieName)
	return err == nil
}

// sameOrigin reports whether the request's Origin names the host it was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
