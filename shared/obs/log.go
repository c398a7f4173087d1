package obs

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Attribute keys added by the handler that NewLogger returns.
const (
	KeyService       = "service"
	KeyTraceID       = "trace_id"
	KeySpanID        = "span_id"
	KeyCorrelationID = "correlation_id"
)

// NewLogger returns a JSON logger writing to w at the given minimum level. Every record
// carries service; records logged with the ...Context methods also carry trace_id and
// span_id of the span in the context (when it is valid) and correlation_id (when set by
// WithCorrelationID). The logger is safe for concurrent use.
func NewLogger(w io.Writer, service string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(NewHandler(h)).With(KeyService, service)
}

// NewHandler wraps next so that every record handled with a context gains trace_id, span_id
// and correlation_id attributes taken from that context. NewLogger uses it; it is exported
// for services that want another output format.
func NewHandler(next slog.Handler) slog.Handler {
	return contextHandler{next: next}
}

type contextHandler struct {
	next slog.Handler
}

func (h contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(
				slog.String(KeyTraceID, sc.TraceID().String()),
				slog.String(KeySpanID, sc.SpanID().String()),
			)
		}
		if id := CorrelationID(ctx); id != "" {
			r.AddAttrs(slog.String(KeyCorrelationID, id))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{next: h.next.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{next: h.next.WithGroup(name)}
}
