// Package httpx holds the HTTP plumbing every Polyshop service shares: handlers that return
// errors, RFC 9457 problem+json responses with field details, strict JSON request decoding,
// middleware (request and correlation ids, access log, Prometheus metrics, OpenTelemetry
// tracing, panic recovery), /healthz, /readyz and /metrics, a server with graceful shutdown,
// and a client for service-to-service calls that forwards ids and trace context.
//
// Handler is the one place where errors become HTTP responses: a handler returns an *Error
// for anything the caller can fix or should know about, and any other error becomes a 500
// with a generic body while its cause is logged once.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	// Field is the JSON path of the field ("email", "items.0.quantity") or the name of a
	// query parameter or header.
	Field string `json:"field"`
	// Reason is a human-readable explanation, such as "must be a valid email address".
	Reason string `json:"reason"`
}

// Error is an error with an HTTP status, written as an RFC 9457 problem.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Type is a URI identifying the kind of problem; empty means "about:blank", whose
	// meaning is the status code itself.
	Type string
	// Title is a short summary of the kind of problem; empty means the status text.
	Title string
	// Detail explains this occurrence to the client, in a sentence it can show a user.
	Detail string
	// Fields lists invalid request fields, written as the "errors" member.
	Fields []FieldError
	// Headers are added to the response, such as Retry-After.
	Headers http.Header
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.title())
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Reason)
	}
	return b.String()
}

func (e *Error) title() string {
	if e.Title != "" {
		return e.Title
	}
	return http.StatusText(e.Status)
}

func newError(status int, detail string, fields []FieldError) *Error {
	return &Error{Status: status, Detail: detail, Fields: fields}
}

// BadRequest returns a 400 problem, optionally naming the invalid fields.
func BadRequest(detail string, fields ...FieldError) *Error {
	return newError(http.StatusBadRequest, detail, fields)
}

// Unauthorized returns a 401 problem: missing or invalid credentials.
func Unauthorized(detail string) *Error {
	e := newError(http.StatusUnauthorized, detail, nil)
	e.Headers = http.Header{"Www-Authenticate": {`Bearer realm="polyshop"`}}
	return e
}

// Forbidden returns a 403 problem: authenticated but not allowed.
func Forbidden(detail string) *Error { return newError(http.StatusForbidden, detail, nil) }

// NotFound returns a 404 problem.
func NotFound(detail string) *Error { return newError(http.StatusNotFound, detail, nil) }

// Conflict returns a 409 problem: the request conflicts with the current state.
func Conflict(detail string) *Error { return newError(http.StatusConflict, detail, nil) }

// Unprocessable returns a 422 problem: well-formed, but semantically invalid.
func Unprocessable(detail string, fields ...FieldError) *Error {
	return newError(http.StatusUnprocessableEntity, detail, fields)
}

// TooManyRequests returns a 429 problem with a Retry-After header of retryAfter, rounded up
// to whole seconds (at least 1).
func TooManyRequests(detail string, retryAfter time.Duration) *Error {
	e := newError(http.StatusTooManyRequests, detail, nil)
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	e.Headers = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	return e
}

// Unavailable returns a 503 problem: a dependency is down or the service is shutting down.
func Unavailable(detail string) *Error {
	return newError(http.StatusServiceUnavailable, detail, nil)
}

// Problem is the RFC 9457 problem details body that WriteProblem writes and ReadProblem
// reads.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	RequestID string       `json:"requestId,omitempty"`
}

// ContentTypeProblem is the media type of problem responses.
const ContentTypeProblem = "application/problem+json"

// internalDetail is all a client learns about an unexpected error.
const internalDetail = "An unexpected error occurred. Quote the request id when reporting it."

// WriteProblem writes err as a problem+json response. An *Error (found with errors.As) is
// written as it is, with its headers. Any other error becomes a 500 with a generic detail,
// and its cause is logged once with log.ErrorContext, so the log line carries the trace and
// correlation ids; 5xx *Errors are logged at warning level.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	var he *Error
	if !errors.As(err, &he) {
		if log != nil {
			log.ErrorContext(r.Context(), "request failed",
				"method", r.Method, "path", r.URL.Path, "err", err)
		}
		he = &Error{Status: http.StatusInternalServerError, Detail: internalDetail}
	} else if he.Status >= 500 && log != nil {
		log.WarnContext(r.Context(), "request failed",
			"method", r.Method, "path", r.URL.Path, "status", he.Status, "err", he)
	}
	p := Problem{
		Type:      he.Type,
		Title:     he.title(),
		Status:    he.Status,
		Detail:    he.Detail,
		Instance:  r.URL.Path,
		Errors:    he.Fields,
		RequestID: RequestIDFrom(r.Context()),
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	for k, vs := range he.Headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(he.Status)
	_ = json.NewEncoder(w).Encode(p) // the status is out; a client gone away is not our error
}

// WriteJSON writes v as a JSON response with the given status. It encodes before writing,
// so an encoding error is returned with nothing written (and Handler turns it into a 500);
// errors writing to the client are not returned, since nothing can be done about them.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// HandlerFunc is an HTTP handler that returns an error instead of writing one.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler adapts fn to an http.Handler that writes fn's error with WriteProblem. If fn has
// already started the response when it fails, the error is only logged.
func Handler(log *slog.Logger, fn HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recordPattern(r)
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		err := fn(sw, r)
		if err == nil {
			return
		}
		if sw.status != 0 {
			if log != nil {
				log.ErrorContext(r.Context(), "request failed after the response started",
					"method", r.Method, "path", r.URL.Path, "status", sw.status, "err", err)
			}
			return
		}
		WriteProblem(sw, r, err, log)
	})
}

// ReadProblem turns an upstream error response back into an *Error, for a client that
// passes it on or maps it. It reads (at most 64 KiB of) and closes nothing: the caller still
// closes resp.Body. A body that is not a problem becomes the detail, trimmed. It returns nil
// for a status below 400.
func ReadProblem(resp *http.Response) *Error {
	if resp.StatusCode < 400 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p Problem
	if (mt == ContentTypeProblem || mt == "application/json") && json.Unmarshal(body, &p) == nil && p.Title != "" {
		e.Title, e.Detail, e.Fields = p.Title, p.Detail, p.Errors
		if p.Type != "about:blank" {
			e.Type = p.Type
		}
	} else {
		e.Detail = strings.TrimSpace(string(body))
		if len(e.Detail) > 200 {
			e.Detail = e.Detail[:200] + "…"
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		e.Headers = http.Header{"Retry-After": {ra}}
	}
	return e
}
