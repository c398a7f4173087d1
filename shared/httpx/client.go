package httpx

import (
	"crypto/tls"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"polyshop/shared/obs"
)

// NewClient returns an HTTP client for service-to-service calls with the given overall
// timeout per request. Each request gets a client span and a traceparent header (otelhttp),
// and the X-Correlation-Id and X-Request-Id of the request's context, so the callee's logs
// join the caller's. The client is safe for concurrent use; build one per service.
// WithClientTLS makes it present the service's certificate to https:// peers (mutual TLS).
func NewClient(timeout time.Duration, opts ...ClientOption) *http.Client {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	base := http.DefaultTransport
	if cfg.tls != nil || cfg.idlePerHost > 0 {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg.tls
		if cfg.idlePerHost > 0 {
			t.MaxIdleConnsPerHost = cfg.idlePerHost
			t.MaxIdleConns = max(t.MaxIdleConns, 8*cfg.idlePerHost)
		}
		base = t
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: otelhttp.NewTransport(idTransport{base: base}),
	}
}

// ClientOption configures NewClient.
type ClientOption func(*clientConfig)

type clientConfig struct {
	tls         *tls.Config
	idlePerHost int
}

// WithMaxIdleConnsPerHost keeps up to n idle connections per upstream (net/http keeps 2).
// A client that sends many concurrent requests to the same few services (the gateway)
// needs it: with 2, every request beyond them opens a new connection and closes it after,
// which under load costs a handshake per request and leaves sockets in TIME_WAIT.
func WithMaxIdleConnsPerHost(n int) ClientOption {
	return func(c *clientConfig) { c.idlePerHost = n }
}

// idTransport adds the correlation and request ids from the request's context.
type idTransport struct {
	base http.RoundTripper
}

func (t idTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	corr, reqID := obs.CorrelationID(r.Context()), RequestIDFrom(r.Context())
	if (corr != "" && r.Header.Get(HeaderCorrelationID) == "") || (reqID != "" && r.Header.Get(HeaderRequestID) == "") {
		r = r.Clone(r.Context()) // a RoundTripper must not modify the caller's request
		if corr != "" && r.Header.Get(HeaderCorrelationID) == "" {
			r.Header.Set(HeaderCorrelationID, corr)
		}
		if reqID != "" && r.Header.Get(HeaderRequestID) == "" {
			r.Header.Set(HeaderRequestID, reqID)
		}
	}
	return t.base.RoundTrip(r)
}
