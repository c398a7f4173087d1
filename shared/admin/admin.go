// Package admin is the operator API every service with an outbox relay or event consumers
// mounts on its internal (loopback) listener: the service's dead letters, which only its
// own handlers can replay, and its parked outbox events.
//
//	GET    /admin/dlq?after=&limit=          200 {"items":[letter...],"nextAfter"?}; 400; 404 when the service has no consumers
//	GET    /admin/dlq/{seq}                  200 letter with "data"; 400; 404
//	POST   /admin/dlq/{seq}/replay           200 {"replayed":letter}; 400; 404; 409 (its consumer is not running here, or the handler failed again: the letter stays)
//	DELETE /admin/dlq/{seq}                  204; 400; 404
//	GET    /admin/outbox/parked?limit=       200 {"items":[parked...]}; 400; 404 when the service has no outbox
//	POST   /admin/outbox/parked/{id}/rearm   204; 404 (not a parked event)
//	GET    /admin/stats                      200 {"records":{"<kind>":n,...}}; 404 when the service counts nothing
//
// Errors are problem+json (shared/httpx); 405 for another method on a known path.
package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"polyshop/shared/broker"
	"polyshop/shared/httpx"
	"polyshop/shared/outbox"
)

// Deps are what the API works on; either may be nil (a service without consumers, or
// without an outbox), and its routes then answer 404.
type Deps struct {
	// Conn is the service's broker connection: its running consumers replay letters.
	Conn *broker.Conn
	// Outbox is the service's outbox store.
	Outbox outbox.Operator
	// Stats counts the service's records (GET /admin/stats); nil: that route answers 404.
	Stats Stats
}

// Wrap serves /admin/ with the operator API and everything else with next.
func Wrap(next http.Handler, log *slog.Logger, d Deps) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	Routes(mux, log, d)
	api := httpx.Chain(mux, httpx.Recover(log), httpx.RequestID, httpx.AccessLog(log))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
			if _, pattern := mux.Handler(r); pattern == "" {
				rec := &status{header: http.Header{}}
				mux.ServeHTTP(rec, r)
				if rec.code == http.StatusMethodNotAllowed {
					e := &httpx.Error{Status: http.StatusMethodNotAllowed, Detail: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)}
					e.Headers = http.Header{"Allow": rec.header.Values("Allow")}
					httpx.WriteProblem(w, r, e, log)
					return
				}
				// Not an operator route: the service's own /admin routes (search's
				// /admin/rebuild and /admin/drift, orders' /admin/rebuild-copies) are next's,
				// and next answers 404 for the rest.
				next.ServeHTTP(w, r)
				return
			}
			api.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type status struct {
	header http.Header
	code   int
}

func (s *status) Header() http.Header         { return s.header }
func (s *status) Write(b []byte) (int, error) { return len(b), nil }
func (s *status) WriteHeader(code int)        { s.code = code }

// Routes registers the operator API on mux.
func Routes(mux *http.ServeMux, log *slog.Logger, d Deps) {
	h := func(fn httpx.HandlerFunc) http.Handler { return httpx.Handler(log, fn) }
	mux.Handle("GET /admin/dlq", h(d.listLetters))
	mux.Handle("GET /admin/dlq/{seq}", h(d.showLetter))
	mux.Handle("POST /admin/dlq/{seq}/replay", h(d.replayLetter))
	mux.Handle("DELETE /admin/dlq/{seq}", h(d.dropLetter))
	mux.Handle("GET /admin/outbox/parked", h(d.listParked))
	mux.Handle("POST /admin/outbox/parked/{id}/rearm", h(d.rearm))
	mux.Handle("GET /admin/stats", h(d.stats))
}

func (d Deps) conn() (*broker.Conn, error) {
	if d.Conn == nil {
		return nil, httpx.NotFound("this service consumes no events")
	}
	return d.Conn, nil
}

func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, httpx.BadRequest(name+" must be an integer", httpx.FieldError{Field: name, Reason: "must be an integer"})
	}
	if n < lo || n > hi {
		return 0, httpx.Unprocessable(fmt.Sprintf("%s must be %d..%d", name, lo, hi), httpx.FieldError{Field: name, Reason: fmt.Sprintf("must be %d..%d", lo, hi)})
	}
	return n, nil
}

func seq(r *http.Request) (uint64, error) {
	n, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || n == 0 {
		return 0, httpx.BadRequest("seq must be a positive integer", httpx.FieldError{Field: "seq", Reason: "must be a positive integer"})
	}
	return n, nil
}

func (d Deps) listLetters(w http.ResponseWriter, r *http.Request) error {
	c, err := d.conn()
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	items, err := c.DeadLetters(r.Context(), uint64(after), limit)
	if err != nil {
		return err
	}
	body := map[string]any{"items": items}
	if len(items) == limit {
		body["nextAfter"] = items[len(items)-1].Seq
	}
	return httpx.WriteJSON(w, http.StatusOK, body)
}

func letterErr(err error) error {
	switch {
	case errors.Is(err, broker.ErrNoDeadLetter):
		return httpx.NotFound("no dead letter with this seq")
	case errors.Is(err, broker.ErrNoConsumer):
		return httpx.Conflict(err.Error())
	}
	return err
}

func (d Deps) showLetter(w http.ResponseWriter, r *http.Request) error {
	c, err := d.conn()
	if err != nil {
		return err
	}
	n, err := seq(r)
	if err != nil {
		return err
	}
	l, err := c.DeadLetter(r.Context(), n)
	if err != nil {
		return letterErr(err)
	}
	return httpx.WriteJSON(w, http.StatusOK, l)
}

func (d Deps) replayLetter(w http.ResponseWriter, r *http.Request) error {
	c, err := d.conn()
	if err != nil {
		return err
	}
	n, err := seq(r)
	if err != nil {
		return err
	}
	l, err := c.ReplayDeadLetter(r.Context(), n)
	switch {
	case errors.Is(err, broker.ErrNoDeadLetter), errors.Is(err, broker.ErrNoConsumer):
		return letterErr(err)
	case err != nil:
		// The handler failed again (or the body is not an event): the letter stays.
		return httpx.Conflict("replay failed; the letter stays: " + err.Error())
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"replayed": l})
}

func (d Deps) dropLetter(w http.ResponseWriter, r *http.Request) error {
	c, err := d.conn()
	if err != nil {
		return err
	}
	n, err := seq(r)
	if err != nil {
		return err
	}
	if err := c.DropDeadLetter(r.Context(), n); err != nil {
		return letterErr(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d Deps) listParked(w http.ResponseWriter, r *http.Request) error {
	if d.Outbox == nil {
		return httpx.NotFound("this service has no outbox")
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	items, err := d.Outbox.Parked(r.Context(), limit)
	if err != nil {
		return err
	}
	if items == nil {
		items = []outbox.Parked{}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (d Deps) rearm(w http.ResponseWriter, r *http.Request) error {
	if d.Outbox == nil {
		return httpx.NotFound("this service has no outbox")
	}
	err := d.Outbox.Rearm(r.Context(), r.PathValue("id"))
	if errors.Is(err, outbox.ErrNotParked) {
		return httpx.NotFound("no parked event with this id")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
