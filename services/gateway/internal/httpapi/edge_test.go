package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEdgeRefusesBadInputWith4xx: oversized tokens and bodies get 401 and 413, never a
// 5xx, and never reach an upstream.
func TestEdgeRefusesBadInputWith4xx(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	users := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 201, map[string]string{"id": "u9"})
	})
	gw := newGateway(t, Upstreams{Users: users.URL, Sessions: sess.URL})
	big := strings.Repeat("a", 10<<10)
	huge := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`

	for _, tt := range []struct {
		name, method, path, body string
		hdr                      []string
		chunked                  bool
		want                     int
	}{
		{name: "10 KiB bearer token", method: "GET", path: "/api/me", hdr: []string{"Authorization", "Bearer " + big}, want: 401},
		{name: "10 KiB cookie", method: "GET", path: "/api/me", hdr: []string{"Cookie", CookieName + "=" + big}, want: 401},
		{name: "2 MiB body with Content-Length", method: "POST", path: "/api/users", body: huge, want: 413},
		{name: "2 MiB body, chunked", method: "POST", path: "/api/users", body: huge, chunked: true, want: 413},
		{name: "1 MiB body is still too large with its JSON", method: "POST", path: "/api/users", body: `{"a":"` + strings.Repeat("x", 1<<20) + `"}`, want: 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(bytes.NewReader([]byte(tt.body))) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(tt.method, gw.URL+tt.path, body)
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct{ Status int }
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("answer is not a problem (%v, %s)", err, resp.Header.Get("Content-Type"))
			}
			if resp.StatusCode != tt.want || p.Status != tt.want {
				t.Errorf("status = %d (problem %d), want %d", resp.StatusCode, p.Status, tt.want)
			}
		})
	}
	if n := len(users.requests()); n != 0 {
		t.Errorf("upstream users got %d requests, want none", n)
	}
	if validations != 0 {
		t.Errorf("oversized tokens were sent to sessions %d times", validations)
	}
}

// TestCookieWritesNeedTheShopsOrigin: a write carrying only the session cookie — what a
// forged cross-site request carries — needs Origin naming the gateway and a JSON body;
// bearer-token clients are not asked for either.
func TestCookieWritesNeedTheShopsOrigin(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	users := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, 200, map[string]string{"id": "u1"})
	})
	gw := newGateway(t, Upstreams{Users: users.URL, Sessions: sess.URL})
	cookie := CookieName + "=" + goodToken
	send := func(contentType string, hdr ...string) int {
		t.Helper()
		req, _ := http.NewRequest("PUT", gw.URL+"/api/me/address", strings.NewReader(`{"street":"x"}`))
		req.Header.Set("Content-Type", contentType)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	got := map[string]int{
		"cookie, no Origin":              send("application/json", "Cookie", cookie),
		"cookie, other site's Origin":    send("application/json", "Cookie", cookie, "Origin", "http://evil.example"),
		"cookie, Origin null":            send("application/json", "Cookie", cookie, "Origin", "null"),
		"cookie, same Origin, text body": send("text/plain", "Cookie", cookie, "Origin", gw.URL),
		"cookie, same Origin, JSON":      send("application/json", "Cookie", cookie, "Origin", gw.URL),
		"bearer, no Origin":              send("application/json", "Authorization", "Bearer "+goodToken),
	}
	want := map[string]int{
		"cookie, no Origin":              403,
		"cookie, other site's Origin":    403,
		"cookie, Origin null":            403,
		"cookie, same Origin, text body": 415,
		"cookie, same Origin, JSON":      200,
		"bearer, no Origin":              200,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("statuses (-got +want):\n%s", diff)
	}
	if n := len(users.requests()); n != 2 {
		t.Errorf("upstream got %d writes, want 2 (the allowed ones)", n)
	}
}

// TestPublicPortHidesMetricsAndCheckDetails: /metrics and the checks behind /readyz are on
// the loopback admin listener only.
func TestPublicPortHidesMetricsAndCheckDetails(t *testing.T) {
	var validations int
	sess := usersTestSessions(t, &validations)
	gw := newGateway(t, Upstreams{Users: sess.URL, Sessions: sess.URL})
	resp, body := gwCall(t, gw, "GET", "/metrics", "")
	if resp.StatusCode != 404 {
		t.Errorf("public /metrics = %d, want 404", resp.StatusCode)
	}
	resp, body = gwCall(t, gw, "GET", "/readyz", "")
	if strings.Contains(body, "checks") {
		t.Errorf("public /readyz shows the checks: %s", body)
	}
	admin := httptest.NewServer(New(nil, nil, Upstreams{Users: sess.URL, Sessions: sess.URL},
		WithChecks(map[string]func(context.Context) error{"users": func(context.Context) error { return nil }})).AdminRoutes())
	t.Cleanup(admin.Close)
	resp, body = gwCall(t, admin, "GET", "/readyz", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"checks"`) {
		t.Errorf("admin /readyz = %d %s, want the checks", resp.StatusCode, body)
	}
	resp, _ = gwCall(t, admin, "GET", "/metrics", "")
	if resp.StatusCode != 200 {
		t.Errorf("admin /metrics = %d", resp.StatusCode)
	}
}
