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

	"polyshop/shared/httpx"
)

// The lab fault switches are owned by the services they act on and stored there (so they
// survive restarts); the gateway only gathers and distributes them. Each section of the
// public document maps to one owner's internal /faults.
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

// unsupportedFaults are SPEC sections that no service implements yet: refused with 422
// rather than accepted and silently ignored.
var unsupportedFaults = map[string]string{
	"crashPoints": "not supported yet: no service implements crash points",
	"duplicates":  "not supported yet: no service implements duplicate delivery",
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
// owner that does not answer is left out and named in "degraded".
func (a *API) collectFaults(ctx context.Context) map[string]any {
	var (
		mu  sync.Mutex
		doc = map[string]any{}
		d   degraded
		wg  sync.WaitGroup
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
	wg.Wait()
	if names := d.list(); names != nil {
		doc["degraded"] = names
	}
	return doc
}

// putFaults validates the whole document first (so a mistake changes nothing), then sends
// each section named to its owner's PUT /faults, which changes only the fields it names.
// It answers 200 with the document as GET shows it afterwards.
func (a *API) putFaults(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var body map[string]json.RawMessage
	if err := httpx.DecodeJSON(r, &body, 64<<10); err != nil {
		return err
	}
	if body == nil {
		return httpx.BadRequest("The request body must be a JSON object, e.g. {\"payments\":{\"down\":true}}.")
	}
	sections, err := validateFaults(body)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(sections))
	)
	for i, s := range sections {
		wg.Go(func() {
			_, errs[i] = a.send(r.Context(), http.MethodPut, s.base(a), "/faults", nil, body[s.name])
		})
	}
	wg.Wait()
	if err := faultsError(sections, errs); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, a.collectFaults(r.Context()))
}

// validateFaults checks every section and field of a PUT body and returns the sections it
// names, in faultSections order, or a 422 naming every invalid field.
func validateFaults(body map[string]json.RawMessage) ([]faultSection, error) {
	var (
		named []faultSection
		bad   []httpx.FieldError
	)
	known := map[string]bool{}
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
		named = append(named, s)
	}
	for _, k := range sortedKeys(body) {
		switch {
		case known[k]:
		case unsupportedFaults[k] != "":
			bad = append(bad, httpx.FieldError{Field: k, Reason: unsupportedFaults[k]})
		default:
			bad = append(bad, httpx.FieldError{Field: k, Reason: "unknown section; the sections are payments, inventory, saga"})
		}
	}
	if len(bad) > 0 {
		return nil, httpx.Unprocessable("Some fault switches are invalid; nothing was changed.", bad...)
	}
	return named, nil
}

// faultsError turns the owners' failures into one problem: the first failing section's,
// its fields prefixed with the section (an owner's 422 on "latencyMs" becomes
// "payments.latencyMs"), saying which other sections were applied nevertheless.
func faultsError(sections []faultSection, errs []error) error {
	var applied []string
	first := -1
	for i, err := range errs {
		switch {
		case err == nil:
			applied = append(applied, sections[i].name)
		case first < 0:
			first = i
		}
	}
	if first < 0 {
		return nil
	}
	err, s := errs[first], sections[first]
	var he *httpx.Error
	if !errors.As(err, &he) {
		return fmt.Errorf("%s faults: %w", s.service, err)
	}
	out := *he
	out.Fields = nil
	for _, f := range he.Fields {
		out.Fields = append(out.Fields, httpx.FieldError{Field: s.name + "." + f.Field, Reason: f.Reason})
	}
	out.Detail = s.name + ": " + he.Detail
	if len(applied) > 0 {
		out.Detail += fmt.Sprintf(" (the sections %s were applied)", strings.Join(applied, ", "))
	}
	return &out
}

// deleteFaults clears every owner's switches (DELETE /faults on each, in parallel): 204, or
// the first owner's failure (the others are cleared nevertheless).
func (a *API) deleteFaults(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(faultSections))
	)
	for i, s := range faultSections {
		wg.Go(func() { _, errs[i] = a.send(r.Context(), http.MethodDelete, s.base(a), "/faults", nil, nil) })
	}
	wg.Wait()
	if err := faultsError(faultSections, errs); err != nil {
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
