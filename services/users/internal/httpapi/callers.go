package httpapi

import "polyshop/shared/httpx"

// Callers is who may call which route when the service runs with mutual TLS
// (USERS_TLS_*; httpx.Authorize, README "Who may call what"): the caller is the client
// certificate's name. operator (scripts, tools, auditor, labs, tests) may call every route
// and /healthz, /readyz need no certificate. The gateway, the edge that authenticated the
// person, gets every route no other line names ("/"); the shared operator API (/admin/dlq,
// /admin/outbox, /admin/stats), /faults and /metrics included, for its console.
// Derived from the clients in the code:
// sessions (internal/usersclient) checks credentials; orders rebuilds its address copies from the export.
var Callers = httpx.Callers{
	"POST /credentials/verify": {"sessions"},
	"GET /export/addresses":    {"orders"},
	"GET /users/{id}":          {"orders", "gateway"}, // orders: the address at order time while orders.addressCopy is sync (lab)
	"/":                        {"gateway"},
}
