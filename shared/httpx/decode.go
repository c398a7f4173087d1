package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// DefaultMaxBodyBytes is the body limit DecodeJSON applies when given 0.
const DefaultMaxBodyBytes = 1 << 20

// DecodeJSON decodes the request body into v strictly, so that a client's mistake gets a
// precise answer instead of being silently ignored. Every failure is an *Error:
//   - a Content-Type other than application/json (or a +json type): 415; none is accepted;
//   - an empty body, malformed JSON (with the byte offset), a value of the wrong type (naming
//     the field), an unknown field (naming it) or anything after the first JSON value: 400;
//   - a body larger than maxBytes (DefaultMaxBodyBytes when maxBytes <= 0): 413.
//
// It only checks the shape of the JSON; validating values is the handler's job.
func DecodeJSON(r *http.Request, v any, maxBytes int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType,
				Detail: fmt.Sprintf("Content-Type %q is not supported; send application/json.", ct)}
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	body := http.MaxBytesReader(nil, r.Body, maxBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, maxBytes)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return BadRequest("The request body must contain a single JSON value; found more after it.")
	default:
		return decodeError(err, maxBytes)
	}
}

func decodeError(err error, maxBytes int64) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
		invalid   *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("The request body is larger than %d bytes.", maxBytes)}
	case errors.Is(err, io.EOF):
		return BadRequest("The request body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("The request body is malformed JSON: it ends unexpectedly.")
	case errors.As(err, &syntaxErr):
		return BadRequest(fmt.Sprintf("The request body is malformed JSON at byte offset %d: %s.",
			syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "invalid character ")))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return BadRequest(fmt.Sprintf("The request body must be %s, not JSON %s.",
				kindOf(typeErr), typeErr.Value))
		}
		return BadRequest("A field has the wrong type.", FieldError{
			Field:  typeErr.Field,
			Reason: fmt.Sprintf("must be %s, not %s", kindOf(typeErr), typeErr.Value),
		})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return BadRequest("The request body has a field this endpoint does not accept.",
			FieldError{Field: field, Reason: "unknown field"})
	case errors.As(err, &invalid):
		return fmt.Errorf("decode request: %w", err) // a programming error: 500
	default:
		// Errors from a field's own UnmarshalJSON (time.Time, custom types) name no field.
		return BadRequest(fmt.Sprintf("The request body has an invalid value: %v.", err))
	}
}

func kindOf(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	default:
		return "an object"
	}
}
