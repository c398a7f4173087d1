package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"polyshop/shared/httpx"
)

// fakeSessions accepts the token "good" as the user u-1.
func fakeSessions(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Token string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.URL.Path != "/sessions/validate" || in.Token != "good" {
			httpx.WriteProblem(w, r, httpx.Unauthorized("bad token"), nil)
			return
		}
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{
			"userId": "01a2154a-0000-7000-8000-000000000001", "role": "customer", "sessionId": "s-1",
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeActivity records the request URIs it gets and answers with status and body.
type fakeActivity struct {
	mu   sync.Mutex
	uris []string
}

func (f *fakeActivity) server(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.uris = append(f.uris, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestMeActivity(t *testing.T) {
	const page = `{"items":[{"eventId":"e","type":"polyshop.sessions.started.v1","subject":"s","summary":"Signed in","occurredAt":"2026-11-26T00:00:00Z"}],"nextCursor":"abc"}`
	const problem = `{"type":"about:blank","title":"Unprocessable Entity","status":422,"errors":[{"field":"limit","reason":"must be from 1 to 100"}]}`
	for _, tc := range []struct {
		name       string
		token      string
		query      string
		upStatus   int
		upType     string
		upBody     string
		upDown     bool
		wantStatus int
		wantType   string
		wantBody   string
		wantCalls  []string
	}{
		{
			name: "forwards to the principal's feed with the query", token: "good", query: "?limit=5&cursor=abc",
			upStatus: 200, upType: "application/json", upBody: page,
			wantStatus: 200, wantType: "application/json", wantBody: page,
			wantCalls: []string{"GET /users/01a2154a-0000-7000-8000-000000000001/activity?limit=5&cursor=abc"},
		},
		{
			name: "upstream problem passes through", token: "good", query: "?limit=0",
			upStatus: 422, upType: httpx.ContentTypeProblem, upBody: problem,
			wantStatus: 422, wantType: httpx.ContentTypeProblem, wantBody: problem,
			wantCalls: []string{"GET /users/01a2154a-0000-7000-8000-000000000001/activity?limit=0"},
		},
		{name: "no token", wantStatus: 401, wantType: httpx.ContentTypeProblem},
		{name: "bad token", token: "bad", wantStatus: 401, wantType: httpx.ContentTypeProblem},
		{name: "activity down", token: "good", upDown: true, wantStatus: 503, wantType: httpx.ContentTypeProblem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fa := &fakeActivity{}
			act := fa.server(t, tc.upStatus, tc.upType, tc.upBody)
			if tc.upDown {
				act.Close()
			}
			api := New(nil, nil, Upstreams{Sessions: fakeSessions(t).URL, Activity: act.URL})
			gw := httptest.NewServer(api.Routes())
			defer gw.Close()

			req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/me/activity"+tc.query, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Type") != tc.wantType {
				t.Fatalf("status %d %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantStatus, tc.wantType, body)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body = %s, want %s", body, tc.wantBody)
			}
			fa.mu.Lock()
			defer fa.mu.Unlock()
			if !slices.Equal(fa.uris, tc.wantCalls) {
				t.Errorf("activity calls = %q, want %q", fa.uris, tc.wantCalls)
			}
		})
	}
}
