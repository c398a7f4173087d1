// Package events defines Polyshop's event contract: the CloudEvents 1.0 envelope in JSON
// structured mode, the versioned event type names, the NATS subject of each type, and the
// typed payload of every domain event. It is the one place where event schemas live.
//
// A producer builds an envelope with New inside the same atomic unit as its state change
// (the outbox), and a consumer turns bytes from the broker back into an envelope with Parse,
// then into the typed payload with Decode:
//
//	env, err := events.New(ctx, events.TypeUserAddressChanged, user.ID, user.Version,
//		events.UserAddressChanged{UserID: user.ID, Address: addr, ChangedAt: now})
//
//	env, err := events.Parse(msg.Data)
//	var p events.UserAddressChanged
//	err = env.Decode(&p)
//
// Types follow polyshop.<owner>.<event>.v<N>. A breaking change to a payload gets a new
// type with the next version number; both versions are published until every consumer has
// moved over. Adding an optional field is not breaking for producers, but Decode is strict,
// so consumers must be rebuilt with the new schema before producers emit the field.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/obs"
)

// Fixed attribute values of every Polyshop event.
const (
	SpecVersion     = "1.0"
	DataContentType = "application/json"
	// TypePrefix starts every event type; the NATS subject is the type without it.
	TypePrefix = "polyshop."
	// SourcePrefix followed by the owning service's name is an event's source.
	SourcePrefix = "/polyshop/"
)

// Envelope is one event in CloudEvents 1.0 JSON structured mode. CorrelationID, CausationID,
// TraceParent and Sequence are CloudEvents extension attributes.
type Envelope struct {
	// SpecVersion is always "1.0".
	SpecVersion string `json:"specversion"`
	// ID is a UUIDv7, unique per event; the broker de-duplicates on it and inboxes key on it.
	ID string `json:"id"`
	// Source is "/polyshop/<owner>", the service that owns the aggregate.
	Source string `json:"source"`
	// Type is the versioned event type, such as "polyshop.users.address_changed.v1".
	Type string `json:"type"`
	// Subject is the id of the aggregate that changed.
	Subject string `json:"subject"`
	// Time is when the change happened, in UTC.
	Time time.Time `json:"time"`
	// DataContentType is always "application/json".
	DataContentType string `json:"datacontenttype"`
	// CorrelationID ties together everything caused by one user-visible operation.
	CorrelationID string `json:"correlationid,omitempty"`
	// CausationID is the id of the event, command or request that caused this event.
	CausationID string `json:"causationid,omitempty"`
	// TraceParent is the W3C traceparent of the span that produced the event.
	TraceParent string `json:"traceparent,omitempty"`
	// Sequence is the aggregate's version after the change (1, 2, 3, …). Projections drop
	// events whose sequence is not newer than what they have applied.
	Sequence int64 `json:"sequence"`
	// Data is the typed payload as a JSON object.
	Data json.RawMessage `json:"data"`
}

// ErrInvalid is matched (with errors.Is) by every error that Parse, Validate, New and Decode
// return for malformed events. Consumers treat it as permanent: redelivery cannot fix it, so
// the message goes to the dead-letter subject at once.
var ErrInvalid = errors.New("invalid event")

// FieldError reports which attribute of an event is malformed and why.
type FieldError struct {
	// Field is the envelope attribute ("id", "time", …) or "data.<json path>" for payloads.
	Field string
	// Reason says what is wrong, in words meant for a log line.
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
}

// Is reports true for ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

var (
	// typePattern: polyshop.<owner>.<name>[.<name>…].v<N>, lowercase, snake_case names.
	typePattern = regexp.MustCompile(`^polyshop\.([a-z][a-z0-9]*)(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$`)
	// extensionPattern is CloudEvents' rule for attribute names.
	extensionPattern = regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	// traceParentPattern is the W3C Trace Context traceparent header, version 00 layout.
	traceParentPattern = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
)

// SubjectFor returns the NATS subject events of type typ are published on: the type without
// the "polyshop." prefix, so "polyshop.users.registered.v1" goes to "users.registered.v1".
func SubjectFor(typ string) string {
	return strings.TrimPrefix(typ, TypePrefix)
}

// OwnerOf returns the owning service named in an event type ("users" for
// "polyshop.users.registered.v1"), or "" when typ is not a Polyshop event type.
func OwnerOf(typ string) string {
	m := typePattern.FindStringSubmatch(typ)
	if m == nil {
		return ""
	}
	return m[1]
}

// NATSSubject returns the subject the event is published on; see SubjectFor.
func (e Envelope) NATSSubject() string { return SubjectFor(e.Type) }

// Owner returns the service that owns the event's aggregate, taken from its type.
func (e Envelope) Owner() string { return OwnerOf(e.Type) }

// New builds the envelope of a domain event of type typ about the aggregate subject, whose
// version after the change is seq. data is the typed payload (for a registered type it must
// be that type's payload struct, by value or pointer) or a json.RawMessage holding an object.
//
// The id is a fresh UUIDv7 and the time is now, in UTC with microsecond precision so it
// survives a round trip through PostgreSQL. From ctx come the correlation id (a new one when
// ctx has none), the causation id, and the traceparent of the current span.
func New(ctx context.Context, typ, subject string, seq int64, data any) (Envelope, error) {
	if want := payloadType(typ); want != nil {
		got := reflect.TypeOf(data)
		if got != nil && got.Kind() == reflect.Pointer {
			got = got.Elem()
		}
		if got != want && got != reflect.TypeFor[json.RawMessage]() {
			return Envelope{}, invalid("data", "%s carries events.%s, not %v", typ, want.Name(), got)
		}
	}
	var raw json.RawMessage
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	default:
		b, err := json.Marshal(data)
		if err != nil {
			return Envelope{}, fmt.Errorf("encode %s data: %w", typ, err)
		}
		raw = b
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("new event id: %w", err)
	}
	corr := obs.CorrelationID(ctx)
	if corr == "" {
		c, err := uuid.NewV7()
		if err != nil {
			return Envelope{}, fmt.Errorf("new correlation id: %w", err)
		}
		corr = c.String()
	}
	e := Envelope{
		SpecVersion:     SpecVersion,
		ID:              id.String(),
		Source:          SourcePrefix + OwnerOf(typ),
		Type:            typ,
		Subject:         subject,
		Time:            time.Now().UTC().Truncate(time.Microsecond),
		DataContentType: DataContentType,
		CorrelationID:   corr,
		CausationID:     obs.CausationID(ctx),
		TraceParent:     traceParent(ctx),
		Sequence:        seq,
		Data:            raw,
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// traceParent uses the W3C propagator directly rather than the global one, so the header is
// recorded even in a process that has not called obs.SetupTracing.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}

// Context returns parent carrying what a handler of e needs to continue the chain: the
// remote span context from e's traceparent (so a span started from it joins the producer's
// trace), e's correlation id, and e's id as the causation id of whatever the handler emits.
func (e Envelope) Context(parent context.Context) context.Context {
	ctx := parent
	if e.TraceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": e.TraceParent})
	}
	if e.CorrelationID != "" {
		ctx = obs.WithCorrelationID(ctx, e.CorrelationID)
	}
	return obs.WithCausationID(ctx, e.ID)
}

// Validate reports the first attribute of e that breaks the contract, as a *FieldError.
func (e Envelope) Validate() error {
	switch {
	case e.SpecVersion != SpecVersion:
		if e.SpecVersion == "" {
			return invalid("specversion", "missing")
		}
		return invalid("specversion", "%q is not supported, want %q", e.SpecVersion, SpecVersion)
	case e.ID == "":
		return invalid("id", "missing")
	}
	if _, err := uuid.Parse(e.ID); err != nil || len(e.ID) != 36 {
		return invalid("id", "%q is not a UUID", e.ID)
	}
	switch {
	case e.Type == "":
		return invalid("type", "missing")
	case !typePattern.MatchString(e.Type):
		return invalid("type", "%q does not match polyshop.<owner>.<event>.v<N>", e.Type)
	case e.Source == "":
		return invalid("source", "missing")
	case e.Source != SourcePrefix+e.Owner():
		return invalid("source", "%q does not match the owner in type %s, want %q", e.Source, e.Type, SourcePrefix+e.Owner())
	case e.Subject == "":
		return invalid("subject", "missing")
	case e.Time.IsZero():
		return invalid("time", "missing")
	case e.DataContentType != DataContentType:
		return invalid("datacontenttype", "%q is not supported, want %q", e.DataContentType, DataContentType)
	case e.TraceParent != "" && !traceParentPattern.MatchString(e.TraceParent):
		return invalid("traceparent", "%q is not a W3C traceparent", e.TraceParent)
	case e.Sequence < 1:
		return invalid("sequence", "%d is less than 1", e.Sequence)
	}
	return validateData(e.Data)
}

func validateData(data json.RawMessage) error {
	d := bytes.TrimSpace(data)
	if len(d) == 0 || bytes.Equal(d, []byte("null")) {
		return invalid("data", "missing")
	}
	if d[0] != '{' {
		return invalid("data", "must be a JSON object")
	}
	if !json.Valid(d) {
		return invalid("data", "not valid JSON")
	}
	return nil
}

// attributes maps each known attribute to the Envelope field it is decoded into.
func (e *Envelope) attributes() map[string]any {
	return map[string]any{
		"specversion":     &e.SpecVersion,
		"id":              &e.ID,
		"source":          &e.Source,
		"type":            &e.Type,
		"subject":         &e.Subject,
		"time":            &e.Time,
		"datacontenttype": &e.DataContentType,
		"correlationid":   &e.CorrelationID,
		"causationid":     &e.CausationID,
		"traceparent":     &e.TraceParent,
		"sequence":        &e.Sequence,
		"data":            &e.Data,
	}
}

// Parse decodes an event in CloudEvents JSON structured mode and validates it. Attribute
// names are case-sensitive. Unknown extension attributes (lowercase letters and digits, as
// CloudEvents requires) are accepted and dropped; any other unknown member is an error. A
// missing datacontenttype means application/json. Errors are *FieldError naming the
// attribute. Parse does not look inside data: Decode does, into the payload type.
func Parse(b []byte) (Envelope, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Envelope{}, invalid("(envelope)", "not a JSON object")
		}
		return Envelope{}, invalid("(envelope)", "not valid JSON: %v", err)
	}
	var e Envelope
	attrs := e.attributes()
	// Check specversion first: an envelope of another version may not follow any other rule.
	if sv, ok := members["specversion"]; ok {
		if err := json.Unmarshal(sv, &e.SpecVersion); err != nil {
			return Envelope{}, invalid("specversion", "must be a string")
		}
	}
	if e.SpecVersion != SpecVersion {
		return Envelope{}, e.Validate()
	}
	for name, v := range members {
		dst, known := attrs[name]
		switch {
		case name == "data_base64":
			return Envelope{}, invalid(name, "binary data is not supported, data must be a JSON object")
		case !known && !extensionPattern.MatchString(name):
			return Envelope{}, invalid(name, "not a CloudEvents attribute name (lowercase letters and digits)")
		case !known:
			continue // an extension this version does not use
		case name == "data":
			e.Data = append(json.RawMessage(nil), v...)
			continue
		}
		if bytes.Equal(v, []byte("null")) {
			continue // reported as missing below when the attribute is required
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return Envelope{}, invalid(name, "%s", describeDecodeError(name, err))
		}
	}
	if _, ok := members["datacontenttype"]; !ok {
		e.DataContentType = DataContentType
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

func describeDecodeError(name string, err error) string {
	var typeErr *json.UnmarshalTypeError
	switch {
	case name == "time":
		return "not an RFC 3339 timestamp"
	case errors.As(err, &typeErr):
		return fmt.Sprintf("got JSON %s, want %s", typeErr.Value, jsonKind(typeErr.Type))
	default:
		return err.Error()
	}
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// Decode decodes e's data into v, a pointer to the payload type, strictly: unknown fields,
// a type mismatch or trailing data are a *FieldError naming the payload field.
func (e Envelope) Decode(v any) error {
	if err := validateData(e.Data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return invalid("data."+typeErr.Field, "got JSON %s, want %s (%s)", typeErr.Value, jsonKind(typeErr.Type), e.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return invalid("data."+field, "unknown field in %s", e.Type)
		default:
			return invalid("data", "decode %s: %v", e.Type, err)
		}
	}
	if dec.More() {
		return invalid("data", "trailing data after the JSON object")
	}
	return nil
}

// Payload decodes e's data into a new value of the payload type registered for e.Type and
// returns a pointer to it (such as *UserRegistered). It fails for an unregistered type.
func (e Envelope) Payload() (any, error) {
	p := PayloadFor(e.Type)
	if p == nil {
		return nil, invalid("type", "%q has no registered payload", e.Type)
	}
	if err := e.Decode(p); err != nil {
		return nil, err
	}
	return p, nil
}
