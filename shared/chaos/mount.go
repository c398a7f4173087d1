package chaos

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"polyshop/shared/httpx"
)

// Mount serves the chaos routes (see Handler: /faults/chaos, and /outbox when outbox is
// set) inside the shared middleware chain, httpx.Standard with the service's log and
// metrics registry, so they are access-logged, traced and counted like every other route
// (the collectors are the service's own: registering them again reuses them). Every other
// request goes to next untouched; next is the service's API, which has its own chain. A
// known chaos path with another method is a 405 problem.
func (s *Switches) Mount(next http.Handler, reg prometheus.Registerer, outbox OutboxFunc) http.Handler {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	s.routes(mux, outbox)
	std := httpx.Standard(s.service, s.log, reg, mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/faults/chaos" || (outbox != nil && r.URL.Path == "/outbox") {
			std.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
