package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"polyshop/shared/chaos"
	"polyshop/shared/httpx"
)

// The lab fault switches are owned by the services they act on and stored there (so they
// survive restarts); the gateway only gathers and distributes them. Each section of the
// public document maps to one owner's internal /faults; crashPoints, duplicates and
// patterns go to the chaos switches (/faults/chaos, package shared/chaos) of the services
// that have them.
type faultSection struct {
	name    string // section of the public document
	service string // owner, as named in "degraded" and in 503 problems
	base    func(a *API) string
	fields  map[string]fieldRule
}

// fieldRule checks one switch's value; it returns the reason it is invalid, or "".
type fieldRule func(v json.RawMessage) string

var faultSections = []faultSection{
	{name: "payments", service: "payments", base: func(a *API) string { return a.up.Payments },
		fields: map[string]fieldRule{"declineRate": rate, "errorRate": rate, "latencyMs": latencyMs, "down": boolean}},
	{name: "inventory", service: "inventory", base: func(a *API) string { return a.up.Inventory },
		fields: map[string]fieldRule{"latencyMs": latencyMs, "down": boolean}},
	{name: "saga", service: "orders", base: func(a *API) string { return a.up.Orders },
		fields: map[string]fieldRule{"stepTimeoutMs": positiveInt}},
}

// chaosOwner is a service with chaos switches: crash points named "<service>.<point>",
// pattern switches named "<service>.<switch>" (shared/chaos/patterns.go) and, for the saga's
// owners, a duplicate count for the events and commands its relay publishes.
type chaosOwner struct {
	service    string
	base       func(a *API) string
	duplicates bool // its relay honours duplicates (users' does not: its events are not saga messages)
}

var chaosOwners = []chaosOwner{
	{service: "inventory", base: func(a *API) string { return a.up.Inventory }, duplicates: true},
	{service: "orders", base: func(a *API) string { return a.up.Orders }, duplicates: true},
	{service: "payments", base: func(a *API) string { return a.up.Payments }, duplicates: true},
	{service: "users", base: func(a *API) string { return a.up.Users }},
}

// chaosOwnerNames lists the chaos owners for problems: "inventory, orders, payments or users".
func chaosOwnerNames() string {
	names := make([]string, len(chaosOwners))
	for i, o := range chaosOwners {
		names[i] = o.service
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// faultCall is one owner request that a PUT or DELETE makes.
type faultCall struct {
	label   string // what it changes, for the "applied" note and problems ("payments", "crashPoints@orders")
	service string
	base    string
	path    string
	body    any    // nil for DELETE
	prefix  string // put before the owner's field names in a passed-through 422
}

func (a *API) runCalls(ctx context.Context, method string, calls []faultCall) error {
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(calls))
	)
	for i, c := range calls {
		wg.Go(func() { _, errs[i] = a.send(ctx, method, c.base, c.path, nil, c.body) })
	}
	wg.Wait()
	return faultsError(calls, errs)
}

func rate(v json.RawMessage) string {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || !isNumber(v) || f < 0 || f > 1 {
		return "must be a number from 0 to 1"
	}
	return ""
}

func latencyMs(v json.RawMessage) string {
	n, ok := integer(v)
	if !ok || n < 0 || n > 20000 {
		return "must be an integer from 0 to 20000"
	}
	return ""
}

func positiveInt(v json.RawMessage) string {
	n, ok := integer(v)
	if !ok || n < 1 {
		return "must be a positive integer (milliseconds)"
	}
	return ""
}

func boolean(v json.RawMessage) string {
	if s := string(v); s != "true" && s != "false" {
		return "must be true or false"
	}
	return ""
}

func isNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

func integer(v json.RawMessage) (int64, bool) {
	if !isNumber(v) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// registerFaults adds GET/PUT/DELETE /api/admin/faults, admin only.
func (a *API) registerFaults(mux *http.ServeMux) {
	mux.Handle("GET /api/admin/faults", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		return httpx.WriteJSON(w, http.StatusOK, a.collectFaults(r.Context()))
	}))
	mux.Handle("PUT /api/admin/faults", a.requireAdmin(a.putFaults))
	mux.Handle("DELETE /api/admin/faults", a.requireAdmin(a.deleteFaults))
}

// collectFaults gathers every owner's switches, in parallel under the compose deadline; an
// owner that does not answer is left out and named in "degraded". crashPoints are the
// armed points of every chaos owner together; duplicates is the highest count of any saga
// owner; patterns are every owner's pattern switches with their current values (defaults
// included).
func (a *API) collectFaults(ctx context.Context) map[string]any {
	var (
		mu          sync.Mutex
		doc         = map[string]any{}
		crashPoints = map[string]float64{}
		patterns    = map[string]string{}
		duplicates  = 0
		d           degraded
		wg          sync.WaitGroup
	)
	for _, s := range faultSections {
		wg.Go(func() {
			var v json.RawMessage
			if err := a.part(ctx, s.base(a), "/faults", &v); err != nil {
				a.missing(ctx, &d, s.service, err)
				return
			}
			mu.Lock()
			doc[s.name] = v
			mu.Unlock()
		})
	}
	for _, o := range chaosOwners {
		wg.Go(func() {
			var v struct {
				CrashPoints map[string]float64 `json:"crashPoints"`
				Duplicates  int                `json:"duplicates"`
				Patterns    map[string]string  `json:"patterns"`
			}
			if err := a.part(ctx, o.base(a), "/faults/chaos", &v); err != nil {
				a.missing(ctx, &d, o.service, err)
				return
			}
			mu.Lock()
			for k, p := range v.CrashPoints {
				crashPoints[k] = p
			}
			for k, p := range v.Patterns {
				patterns[k] = p
			}
			if o.duplicates {
				duplicates = max(duplicates, v.Duplicates)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	doc["crashPoints"] = crashPoints
	doc["patterns"] = patterns
	if duplicates > 0 {
		doc["duplicates"] = duplicates
	}
	if names := d.list(); names != nil {
		doc["degraded"] = names
	}
	return doc
}

// putFaults validates the whole document first (so a mistake changes nothing), then sends
// each section named to its owner's PUT /faults, which changes only the fields it names,
// and crashPoints and patterns (each to the service it names) and duplicates (to every
// saga owner) to PUT /faults/chaos. It answers 200 with the document as GET shows it afterwards.
func (a *API) putFaults(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var body map[string]json.RawMessage
	if err := httpx.DecodeJSON(r, &body, 64<<10); err != nil {
		return err
	}
	if body == nil {
		return httpx.BadRequest("The request body must be a JSON object, e.g. {\"payments\":{\"down\":true}}.")
	}
	calls, err := a.faultCalls(body)
	if err != nil {
		return err
	}
	if err := a.runCalls(r.Context(), http.MethodPut, calls); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, a.collectFaults(r.Context()))
}

// faultCalls checks every section and field of a PUT body and returns the owner requests
// it means, or a 422 naming every invalid field.
func (a *API) faultCalls(body map[string]json.RawMessage) ([]faultCall, error) {
	var (
		calls []faultCall
		bad   []httpx.FieldError
	)
	known := map[string]bool{"crashPoints": true, "duplicates": true, "patterns": true}
	for _, s := range faultSections {
		known[s.name] = true
		raw, ok := body[s.name]
		if !ok {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			bad = append(bad, httpx.FieldError{Field: s.name, Reason: "must be an object"})
			continue
		}
		for _, f := range sortedKeys(fields) {
			rule, ok := s.fields[f]
			if !ok {
				bad = append(bad, httpx.FieldError{Field: s.name + "." + f,
					Reason: "unknown field; " + s.name + " has " + strings.Join(sortedKeys(s.fields), ", ")})
				continue
			}
			if reason := rule(fields[f]); reason != "" {
				bad = append(bad, httpx.FieldError{Field: s.name + "." + f, Reason: reason})
			}
		}
		calls = append(calls, faultCall{label: s.name, service: s.service, base: s.base(a), path: "/faults",
			body: raw, prefix: s.name + "."})
	}

	// Chaos switches: one PUT /faults/chaos per owner concerned.
	chaos := map[string]map[string]any{}
	if raw, ok := body["crashPoints"]; ok {
		var points map[string]json.RawMessage
		if err := json.Unmarshal(raw, &points); err != nil || points == nil {
			bad = append(bad, httpx.FieldError{Field: "crashPoints", Reason: `must be an object {"<service>.<point>": 0..1}`})
		}
		for _, name := range sortedKeys(points) {
			field := "crashPoints." + name
			service, _, _ := strings.Cut(name, ".")
			if !slices.ContainsFunc(chaosOwners, func(o chaosOwner) bool { return o.service == service }) {
				bad = append(bad, httpx.FieldError{Field: field, Reason: "unknown service; crash points are named <service>.<point> with service " + chaosOwnerNames()})
				continue
			}
			if reason := rate(points[name]); reason != "" {
				bad = append(bad, httpx.FieldError{Field: field, Reason: "must be a probability from 0 to 1"})
				continue
			}
			if chaos[service] == nil {
				chaos[service] = map[string]any{}
			}
			cp, _ := chaos[service]["crashPoints"].(map[string]json.RawMessage)
			if cp == nil {
				cp = map[string]json.RawMessage{}
				chaos[service]["crashPoints"] = cp
			}
			cp[name] = points[name]
		}
	}
	if raw, ok := body["patterns"]; ok {
		var pats map[string]json.RawMessage
		if err := json.Unmarshal(raw, &pats); err != nil || pats == nil {
			bad = append(bad, httpx.FieldError{Field: "patterns", Reason: `must be an object {"<service>.<switch>": "<value>"}`})
		}
		for _, name := range sortedKeys(pats) {
			field := "patterns." + name
			p, known := chaosPattern(name)
			if !known {
				bad = append(bad, httpx.FieldError{Field: field, Reason: "unknown pattern switch; the switches are " + strings.Join(chaosPatternNames(), ", ")})
				continue
			}
			var v string
			if err := json.Unmarshal(pats[name], &v); err != nil || !slices.Contains(p.Values, v) {
				bad = append(bad, httpx.FieldError{Field: field, Reason: "must be one of " + strings.Join(p.Values, ", ")})
				continue
			}
			service := p.Service()
			if chaos[service] == nil {
				chaos[service] = map[string]any{}
			}
			ps, _ := chaos[service]["patterns"].(map[string]string)
			if ps == nil {
				ps = map[string]string{}
				chaos[service]["patterns"] = ps
			}
			ps[name] = v
		}
	}
	if raw, ok := body["duplicates"]; ok {
		if n, isInt := integer(raw); !isInt || n < 1 || n > 3 {
			bad = append(bad, httpx.FieldError{Field: "duplicates", Reason: "must be an integer from 1 to 3"})
		} else {
			for _, o := range chaosOwners {
				if !o.duplicates {
					continue
				}
				if chaos[o.service] == nil {
					chaos[o.service] = map[string]any{}
				}
				chaos[o.service]["duplicates"] = n
			}
		}
	}
	for _, o := range chaosOwners {
		if c := chaos[o.service]; c != nil {
			calls = append(calls, faultCall{label: "chaos switches of " + o.service, service: o.service, base: o.base(a),
				path: "/faults/chaos", body: c})
		}
	}

	for _, k := range sortedKeys(body) {
		if !known[k] {
			bad = append(bad, httpx.FieldError{Field: k, Reason: "unknown section; the sections are payments, inventory, saga, crashPoints, duplicates, patterns"})
		}
	}
	if len(bad) > 0 {
		return nil, httpx.Unprocessable("Some fault switches are invalid; nothing was changed.", bad...)
	}
	return calls, nil
}

// faultsError turns the owners' failures into one problem: the first failing call's, its
// fields prefixed (an owner's 422 on "latencyMs" becomes "payments.latencyMs"), saying
// which other changes were applied nevertheless.
func faultsError(calls []faultCall, errs []error) error {
	var applied []string
	first := -1
	for i, err := range errs {
		switch {
		case err == nil:
			applied = append(applied, calls[i].label)
		case first < 0:
			first = i
		}
	}
	if first < 0 {
		return nil
	}
	err, c := errs[first], calls[first]
	var he *httpx.Error
	if !errors.As(err, &he) {
		return fmt.Errorf("%s %s: %w", c.service, c.path, err)
	}
	out := *he
	out.Fields = nil
	for _, f := range he.Fields {
		out.Fields = append(out.Fields, httpx.FieldError{Field: c.prefix + f.Field, Reason: f.Reason})
	}
	out.Detail = c.label + ": " + he.Detail
	if len(applied) > 0 {
		out.Detail += fmt.Sprintf(" (applied nevertheless: %s)", strings.Join(applied, ", "))
	}
	return &out
}

// deleteFaults clears every owner's switches (DELETE /faults and /faults/chaos on each, in
// parallel): 204, or the first owner's failure (the others are cleared nevertheless).
func (a *API) deleteFaults(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var calls []faultCall
	for _, s := range faultSections {
		calls = append(calls, faultCall{label: s.name, service: s.service, base: s.base(a), path: "/faults"})
	}
	for _, o := range chaosOwners {
		calls = append(calls, faultCall{label: "chaos switches of " + o.service, service: o.service, base: o.base(a), path: "/faults/chaos"})
	}
	if err := a.runCalls(r.Context(), http.MethodDelete, calls); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// chaosPattern returns the pattern switch named name when its service is a chaos owner.
func chaosPattern(name string) (chaos.Pattern, bool) {
	p, ok := chaos.LookupPattern(name)
	if !ok || !slices.ContainsFunc(chaosOwners, func(o chaosOwner) bool { return o.service == p.Service() }) {
		return chaos.Pattern{}, false
	}
	return p, true
}

// chaosPatternNames lists the pattern switches the gateway forwards.
func chaosPatternNames() []string {
	var out []string
	for _, p := range chaos.Patterns {
		if _, ok := chaosPattern(p.Name); ok {
			out = append(out, p.Name)
		}
	}
	return out
}
