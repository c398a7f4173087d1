package obs

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"polyshop/shared/config"
)

// SetupTracing installs the global OpenTelemetry tracer provider and the W3C Trace Context
// and Baggage propagators for service.
//
// When OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, spans are
// batched to that OTLP/HTTP endpoint; the exporter reads the other standard OTEL_EXPORTER_OTLP_*
// variables itself. Otherwise spans are still created and sampled, so trace ids appear in logs
// and traceparent flows through HTTP headers and events, but nothing is exported.
// OTEL_SERVICE_NAME, when set, overrides service.
//
// Call shutdown before exit to flush buffered spans; it is safe to call more than once.
func SetupTracing(ctx context.Context, service string, getenv config.Getenv) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))

	r := config.New(getenv)
	service = r.String("OTEL_SERVICE_NAME", service)
	endpoint := r.String("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	tracesEndpoint := r.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")

	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service),
	))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if endpoint != "" || tracesEndpoint != "" {
		// The exporter reads the endpoint and headers from the process environment itself;
		// pass the endpoint explicitly so a getenv other than os.Getenv is honoured too.
		var eopts []otlptracehttp.Option
		if tracesEndpoint != "" {
			eopts = append(eopts, otlptracehttp.WithEndpointURL(tracesEndpoint))
		} else {
			eopts = append(eopts, otlptracehttp.WithEndpointURL(joinPath(endpoint, "/v1/traces")))
		}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("shut down tracing: %w", err)
		}
		return nil
	}, nil
}

func joinPath(base, path string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + path
}

// Tracer returns a tracer named name (by convention the instrumenting package's import path)
// from the global provider, so it follows whatever SetupTracing installed, even when called
// before it.
func Tracer(name string) trace.Tracer {
	return otel.Tracer(name)
}
