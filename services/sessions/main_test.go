package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"polyshop/shared/testenv"

	"github.com/google/go-cmp/cmp"
)

// The service reads SESSIONS_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "SESSIONS_HTTP_ADDR", map[string]string{"SESSIONS_MAX_INFLIGHT": "1"},
		"/users/00000000-0000-0000-0000-000000000001/sessions", "/users/00000000-0000-0000-0000-000000000002/sessions")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	for _, name := range []string{"SESSIONS_MAX_INFLIGHT", "SESSIONS_LOGIN_MAX_INFLIGHT"} {
		for _, v := range []string{"0", "-1", "many"} {
			getenv := func(k string) string {
				if k == name {
					return v
				}
				return testenv.Getenv(k)
			}
			err := run(context.Background(), getenv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: run = %v, want an error naming %s", name, v, err, name)
			}
		}
	}
}

// Logins have a bulkhead inside the service's bound (SESSIONS_LOGIN_MAX_INFLIGHT): with 1, a
// second login is refused at once while other routes are served.
func TestRunBoundsLoginsApart(t *testing.T) {
	s := testenv.StartService(t, run, "SESSIONS_HTTP_ADDR", map[string]string{"SESSIONS_LOGIN_MAX_INFLIGHT": "1"})
	finish := testenv.HoldPost(t, s, "/sessions", "sessions login", "{}")

	type answer struct {
		Status     int
		RetryAfter string
	}
	for _, tc := range []struct {
		method, path, body string
		want               answer
	}{
		// A body refused before any lookup, were the bound not kept (the stack's Redis).
		{"POST", "/sessions", `{}`, answer{503, "1"}},
		{"GET", "/users/00000000-0000-0000-0000-000000000001/sessions", "", answer{200, ""}},
	} {
		req, err := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := answer{resp.StatusCode, resp.Header.Get("Retry-After")}
		if diff := cmp.Diff(got, tc.want); diff != "" {
			t.Errorf("%s %s while /sessions is held (-got +want):\n%s", tc.method, tc.path, diff)
		}
	}
	if code := finish(); code == 0 || code == http.StatusServiceUnavailable {
		t.Errorf("POST /sessions (admitted first): status %d, want it served", code)
	}
}
