package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"polyshop/shared/httpx"
)

// The console's operator actions: each service's dead letters (show, replay, drop) and
// parked outbox events (list, re-arm), forwarded to the named service's shared operator API
// (package shared/admin) on its loopback listener. Only the service whose consumer failed
// can replay its letter (the replay runs that consumer's handler), so the gateway names the
// service in the path rather than the DLQ stream.

// registerOperator adds the /api/admin/dlq/... and /api/admin/outbox/{service}/... routes.
func (a *API) registerOperator(mux *http.ServeMux) {
	mux.Handle("GET /api/admin/dlq/{service}", a.requireAdmin(a.operatorCall(false, func(*http.Request) string { return "/admin/dlq" })))
	mux.Handle("GET /api/admin/dlq/{service}/{seq}", a.requireAdmin(a.operatorCall(true, letterPath(""))))
	mux.Handle("POST /api/admin/dlq/{service}/{seq}/replay", a.requireAdmin(a.operatorCall(true, letterPath("/replay"))))
	mux.Handle("DELETE /api/admin/dlq/{service}/{seq}", a.requireAdmin(a.operatorCall(true, letterPath(""))))
	mux.Handle("GET /api/admin/outbox/{service}/parked", a.requireAdmin(a.operatorCall(false, func(*http.Request) string { return "/admin/outbox/parked" })))
	mux.Handle("POST /api/admin/outbox/{service}/parked/{id}/rearm", a.requireAdmin(a.operatorCall(false, func(r *http.Request) string {
		return "/admin/outbox/parked/" + url.PathEscape(r.PathValue("id")) + "/rearm"
	})))
}

func letterPath(suffix string) func(*http.Request) string {
	return func(r *http.Request) string { return "/admin/dlq/" + r.PathValue("seq") + suffix }
}

// operatorBase is the base URL of the service named in the path; 404 for another name.
func (a *API) operatorBase(r *http.Request) (string, error) {
	name := r.PathValue("service")
	for _, s := range consoleServices {
		if s.Name == name {
			if base := s.base(a); base != "" {
				return base, nil
			}
			break
		}
	}
	return "", httpx.NotFound("No service named " + strconv.Quote(name) + "; the services are users, sessions, catalog, inventory, orders, payments, activity and search.")
}

// operatorCall forwards the request (method, query) to the named service at path(r); the
// service's answer and problems pass through, a service that does not answer is a 503.
// withSeq checks {seq} first (400 unless a positive integer), so nothing else reaches the
// owner's path.
func (a *API) operatorCall(withSeq bool, path func(*http.Request) string) func(http.ResponseWriter, *http.Request, Principal) error {
	return func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		base, err := a.operatorBase(r)
		if err != nil {
			return err
		}
		if withSeq {
			if n, err := strconv.ParseUint(r.PathValue("seq"), 10, 64); err != nil || n == 0 {
				return httpx.BadRequest("seq must be a positive integer.", httpx.FieldError{Field: "seq", Reason: "must be a positive integer"})
			}
		}
		return a.forward(w, r, base, path(r))
	}
}
