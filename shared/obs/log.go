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
// and correlation_id attributes taken from that context, always at the top level of the
// record, even under WithGroup. NewLogger uses it; it is exported for services that want
// another output format.
func NewHandler(next slog.Handler) slog.Handler {
	return &contextHandler{root: next, next: next}
}

// contextHandler remembers the WithAttrs and WithGroup calls made on it, so that under a
// group it can still put the ids at the top level by replaying them on root.
type contextHandler struct {
	root slog.Handler // the wrapped handler before any WithAttrs or WithGroup
	next slog.Handler // root with every op applied
	ops  []func(slog.Handler) slog.Handler
	// grouped is set once a group is open: attributes added to a record would land in it.
	grouped bool
}

func (h *contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	ids := contextAttrs(ctx)
	if len(ids) == 0 {
		return h.next.Handle(ctx, r)
	}
	if !h.grouped {
		r.AddAttrs(ids...)
		return h.next.Handle(ctx, r)
	}
	next := h.root.WithAttrs(ids)
	for _, op := range h.ops {
		next = op(next)
	}
	return next.Handle(ctx, r)
}

func contextAttrs(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	var attrs []slog.Attr
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs,
			slog.String(KeyTraceID, sc.TraceID().String()),
			slog.String(KeySpanID, sc.SpanID().String()),
		)
	}
	if id := CorrelationID(ctx); id != "" {
		attrs = append(attrs, slog.String(KeyCorrelationID, id))
	}
	return attrs
}

func (h *contextHandler) with(op func(slog.Handler) slog.Handler, group bool) slog.Handler {
	return &contextHandler{
		root:    h.root,
		next:    op(h.next),
		ops:     append(h.ops[:len(h.ops):len(h.ops)], op),
		grouped: h.grouped || group,
	}
}

func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(func(n slog.Handler) slog.Handler { return n.WithAttrs(attrs) }, false)
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(func(n slog.Handler) slog.Handler { return n.WithGroup(name) }, true)
}
