package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// upstream records the requests it gets and answers with fn.
type recUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string // "METHOD path?query"
	hdrs []http.Header
}

func newRecUpstream(t *testing.T, fn http.HandlerFunc) *recUpstream {
	t.Helper()
	u := &recUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		line := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			line += "?" + r.URL.RawQuery
		}
		u.reqs = append(u.reqs, line)
		u.hdrs = append(u.hdrs, r.Header.Clone())
		u.mu.Unlock()
		fn(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.reqs...)
}

const goodToken = "tok-good"

// usersTestSessions validates goodToken (role from the "admin-" prefix) and logs in anyone whose
// password is "right".
func usersTestSessions(t *testing.T, validations *int) *recUpstream {
	var mu sync.Mutex
	revoked := false
	return newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /sessions/validate":
			var req struct{ Token string }
			_ = json.NewDecoder(r.Body).Decode(&req)
			mu.Lock()
			*validations++
			rev := revoked
			mu.Unlock()
			role := "customer"
			if strings.HasPrefix(req.Token, "admin-") {
				role = "admin"
			} else if req.Token != goodToken || rev {
				writeStatusProblem(w, 401)
				return
			}
			writeTestJSON(w, 200, map[string]string{"userId": "u1", "role": role, "sessionId": "s1"})
		case "POST /sessions":
			var req struct{ Email, Password string }
			_ = json.NewDecoder(r.Body).Decode(&req)
			if req.Password != "right" {
				w.Header().Set("Retry-After", "7")
				writeStatusProblem(w, 429)
				return
			}
			writeTestJSON(w, 201, map[string]any{"token": goodToken, "expiresAt": time.Now().Add(time.Hour),
				"sessionId": "s1", "userId": "u1", "role": "customer"})
		case "DELETE /sessions/current":
			mu.Lock()
			revoked = true
			mu.Unlock()
			w.WriteHeader(204)
		default:
			writeStatusProblem(w, 404)
		}
	})
}

func writeStatusProblem(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"type":"about:blank","title":"` + http.StatusText(status) + `","status":` + statusText(status) + `,"detail":"from upstream"}`))
}

func statusText(i int) string { b, _ := json.Marshal(i); return string(b) }

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newGateway(t *testing.T, up Upstreams, opts ...Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(nil, http.DefaultClient, up, opts...).Routes())
	t.Cleanup(srv.Close)
	return srv
}

func gwCall(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMeForwardsWithPrincipal(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	users := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
			t.Errorf("credentials leaked upstream: %v", r.Header)
		}
		writeTestJSON(w, 200, map[string]string{"id": "u1", "path": r.URL.Path})
	})
	gw := newGateway(t, Upstreams{Users: users.URL, Sessions: sess.URL})

	resp, body := gwCall(t, gw, "GET", "/api/me", "")
	if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("no token = %d %s", resp.StatusCode, body)
	}
	resp, _ = gwCall(t, gw, "GET", "/api/me", "", "Authorization", "Bearer nope")
	if resp.StatusCode != 401 {
		t.Errorf("bad token = %d", resp.StatusCode)
	}
	resp, body = gwCall(t, gw, "GET", "/api/me", "", "Authorization", "Bearer "+goodToken)
	if resp.StatusCode != 200 || !strings.Contains(body, `"path":"/users/u1"`) {
		t.Errorf("me = %d %s", resp.StatusCode, body)
	}
	resp, _ = gwCall(t, gw, "PUT", "/api/me/address", `{"street":"x"}`, "Cookie", CookieName+"="+goodToken,
		"Origin", gw.URL) // a browser on the shop's own page sends its origin
	if resp.StatusCode != 200 {
		t.Errorf("address with cookie = %d", resp.StatusCode)
	}
	if diff := cmp.Diff(users.requests(), []string{"GET /users/u1", "PUT /users/u1/address"}); diff != "" {
		t.Errorf("users requests (-got +want):\n%s", diff)
	}
	if got := users.hdrs[1].Get(HeaderUserID); got != "u1" {
		t.Errorf("X-User-Id = %q", got)
	}
	// The two good-token requests within the cache TTL validated once.
	if validations != 2 { // "nope" + one for goodToken
		t.Errorf("validations = %d, want 2 (cache)", validations)
	}
}

func TestLoginSetsCookieAndLogoutClears(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	gw := newGateway(t, Upstreams{Sessions: sess.URL, Users: "http://127.0.0.1:1"})

	resp, body := gwCall(t, gw, "POST", "/api/sessions", `{"email":"a@example.com","password":"wrong"}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || !strings.Contains(body, "from upstream") {
		t.Errorf("throttled login = %d Retry-After %q %s, want the upstream 429 passed through", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = gwCall(t, gw, "POST", "/api/sessions", `{"email":"a@example.com","password":"right"}`)
	if resp.StatusCode != 201 || !strings.Contains(body, goodToken) {
		t.Fatalf("login = %d %s", resp.StatusCode, body)
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == CookieName {
			c = k
		}
	}
	if c == nil || c.Value != goodToken || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge < 3500 {
		t.Errorf("cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, Max-Age about 1h", c)
	}
	if xff := sess.hdrs[1].Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For to sessions = %q, want the client address", xff)
	}
	// Spoofed X-Forwarded-For from the client is ignored.
	gwCall(t, gw, "POST", "/api/sessions", `{"email":"a@example.com","password":"right"}`, "X-Forwarded-For", "6.6.6.6")
	if xff := sess.hdrs[2].Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the peer address, not the client's claim", xff)
	}

	if resp, _ := gwCall(t, gw, "GET", "/api/me/activity", "", "Authorization", "Bearer "+goodToken); resp.StatusCode == 401 {
		t.Fatal("token refused before logout")
	}
	resp, _ = gwCall(t, gw, "DELETE", "/api/sessions/current", "", "Authorization", "Bearer "+goodToken)
	if resp.StatusCode != 204 {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	cleared := false
	for _, k := range resp.Cookies() {
		cleared = cleared || (k.Name == CookieName && k.MaxAge < 0)
	}
	if !cleared {
		t.Error("logout did not clear the cookie")
	}
	// Forgotten at once by this gateway, even within the cache TTL.
	if resp, _ := gwCall(t, gw, "GET", "/api/me", "", "Authorization", "Bearer "+goodToken); resp.StatusCode != 401 {
		t.Errorf("me after logout = %d, want 401", resp.StatusCode)
	}
}

func TestAdminOnly(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	catalog := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 201, map[string]string{"ok": "yes"}) })
	gw := newGateway(t, Upstreams{Sessions: sess.URL, Catalog: catalog.URL})
	if resp, _ := gwCall(t, gw, "POST", "/api/products", `{}`, "Authorization", "Bearer "+goodToken); resp.StatusCode != 403 {
		t.Errorf("customer write = %d, want 403", resp.StatusCode)
	}
	if resp, _ := gwCall(t, gw, "POST", "/api/products", `{}`); resp.StatusCode != 401 {
		t.Errorf("anonymous write = %d, want 401", resp.StatusCode)
	}
	if resp, _ := gwCall(t, gw, "POST", "/api/products", `{}`, "Authorization", "Bearer admin-x"); resp.StatusCode != 201 {
		t.Errorf("admin write = %d, want 201", resp.StatusCode)
	}
}

func TestUnavailableUpstream(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	gw := newGateway(t, Upstreams{Sessions: sess.URL, Users: "http://127.0.0.1:1"})
	resp, body := gwCall(t, gw, "GET", "/api/me", "", "Authorization", "Bearer "+goodToken)
	if resp.StatusCode != 503 || !strings.Contains(body, "users service is unavailable") {
		t.Errorf("users down = %d %s, want 503 naming users", resp.StatusCode, body)
	}
	gw2 := newGateway(t, Upstreams{Sessions: "http://127.0.0.1:1"})
	resp, body = gwCall(t, gw2, "GET", "/api/me", "", "Authorization", "Bearer "+goodToken)
	if resp.StatusCode != 503 || !strings.Contains(body, "sessions service is unavailable") {
		t.Errorf("sessions down = %d %s, want 503 naming sessions", resp.StatusCode, body)
	}
}

// TestInternalEndpointsUnreachable checks that no internal path of any service can be
// reached through the gateway, however it is spelled.
func TestInternalEndpointsUnreachable(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	users := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 200, map[string]string{}) })
	gw := newGateway(t, Upstreams{Users: users.URL, Sessions: sess.URL})
	client := &http.Client{} // follows the ServeMux's clean-path redirects
	for _, tt := range []struct{ method, path string }{
		{"POST", "/credentials/verify"},
		{"POST", "/api/../credentials/verify"},
		{"POST", "/api/%2e%2e/credentials/verify"},
		{"POST", "/sessions/validate"},
		{"POST", "/api/sessions/validate"},
		{"GET", "/users/u1"},
		{"PUT", "/admin"},
		{"GET", "/api/users/u1"},
		{"DELETE", "/users/u1/sessions"},
		{"GET", "/api/me/../../users/u1"},
	} {
		req, _ := http.NewRequest(tt.method, gw.URL+tt.path, strings.NewReader(`{"token":"`+goodToken+`"}`))
		req.Header.Set("Authorization", "Bearer "+goodToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			t.Errorf("%s %s = %d, want 404", tt.method, tt.path, resp.StatusCode)
		}
	}
	if got := users.requests(); len(got) != 0 {
		t.Errorf("internal requests reached users: %v", got)
	}
	if validations != 0 {
		t.Errorf("sessions saw %d validations through internal paths", validations)
	}
}
