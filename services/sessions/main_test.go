package main

import (
	"testing"

	"polyshop/shared/testenv"
)

// The service reads SESSIONS_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "SESSIONS_HTTP_ADDR", map[string]string{"SESSIONS_MAX_INFLIGHT": "1"},
		"/users/00000000-0000-0000-0000-000000000001/sessions", "/users/00000000-0000-0000-0000-000000000002/sessions")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	testenv.CheckRejectsBadBounds(t, run, "SESSIONS_MAX_INFLIGHT", "SESSIONS_LOGIN_MAX_INFLIGHT")
}

// Logins have a bulkhead inside the service's bound (SESSIONS_LOGIN_MAX_INFLIGHT): with 1, a
// second login is refused at once while other routes are served.
func TestRunBoundsLoginsApart(t *testing.T) {
	testenv.CheckBulkhead(t, run, "SESSIONS_HTTP_ADDR", map[string]string{"SESSIONS_LOGIN_MAX_INFLIGHT": "1"},
		"/sessions", "sessions login", []testenv.Probe{
			// A body refused before any lookup, were the bound not kept (the stack's Redis).
			{Method: "POST", Path: "/sessions", Body: `{}`, Status: 503, RetryAfter: "1"},
			{Method: "GET", Path: "/users/00000000-0000-0000-0000-000000000001/sessions", Status: 200},
		})
}
