// Package obs sets up observability for a Polyshop service: a log/slog JSON logger that adds
// the service name, trace and span ids and the correlation id to every record, OpenTelemetry
// tracing configured from the environment with W3C Trace Context propagation, and context
// helpers that carry correlation and causation ids across HTTP and broker hops.
package obs

import (
	"context"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	causationKey
)

// WithCorrelationID returns a copy of ctx carrying id as the correlation id: the id shared by
// every request, log record and event that belongs to one user-visible operation.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id carried by ctx, or "" when there is none.
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// WithCausationID returns a copy of ctx carrying id as the causation id: the id of the event
// or command being handled, which becomes the causationid of every event it produces.
func WithCausationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, causationKey, id)
}

// CausationID returns the causation id carried by ctx, or "" when there is none.
func CausationID(ctx context.Context) string {
	id, _ := ctx.Value(causationKey).(string)
	return id
}
