package main

import (
	"testing"

	"polyshop/shared/testenv"
)

// The service reads USERS_MAX_INFLIGHT and bounds its requests with it: with 1, a request
// made while another is being served is refused at once with 503 and Retry-After.
func TestRunBoundsRequestsInFlight(t *testing.T) {
	testenv.CheckInflightBound(t, run, "USERS_HTTP_ADDR", map[string]string{"USERS_MAX_INFLIGHT": "1"},
		"/users/00000000-0000-0000-0000-000000000001", "/users/00000000-0000-0000-0000-000000000002")
}

// A bound that is not a positive integer stops the start with an error that names it.
func TestRunRejectsABadInflightBound(t *testing.T) {
	testenv.CheckRejectsBadBounds(t, run, "USERS_MAX_INFLIGHT", "USERS_HASH_MAX_INFLIGHT")
}

// Password hashing has a bulkhead inside the service's bound (USERS_HASH_MAX_INFLIGHT): with
// 1, a second request that would hash is refused at once while reads by id are served.
func TestRunBoundsHashingApart(t *testing.T) {
	testenv.CheckBulkhead(t, run, "USERS_HTTP_ADDR", map[string]string{"USERS_HASH_MAX_INFLIGHT": "1"},
		"/credentials/verify", "users hashing", []testenv.Probe{
			// Bodies that nothing is stored for, were the bound not kept (the stack's database).
			{Method: "POST", Path: "/credentials/verify", Body: `{}`, Status: 503, RetryAfter: "1"},
			{Method: "GET", Path: "/users/00000000-0000-0000-0000-000000000001", Status: 404},
		})
}
