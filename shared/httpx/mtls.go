package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
)

// Mutual TLS between services. A service with TLS settings (<SVC>_TLS_CERT, <SVC>_TLS_KEY,
// <SVC>_TLS_CA) serves HTTPS only, asks every client for a certificate signed by the CA
// (tls.VerifyClientCertIfGiven) and lets a request through only when its caller, the
// certificate's CommonName, is allowed on the route by the service's caller table; without
// those settings it serves plain HTTP to anyone, as before (unit tests, testenv.StartService).
// The local CA and the certificates are made by shared/pki (./scripts/stack up, compose's pki
// service).

// Operator is the identity of the scripts, tools, auditor, labs and tests: allowed on every
// route of every service.
const Operator = "operator"

// TLSFiles are the PEM files of a service's identity and of the CA it trusts.
type TLSFiles struct {
	Cert, Key, CA string
}

// TLSFromEnv reads <prefix>_TLS_CERT, <prefix>_TLS_KEY and <prefix>_TLS_CA (prefix such as
// "USERS"). All three unset: TLS is off (the zero TLSFiles). Only some set: an error.
func TLSFromEnv(getenv func(string) string, prefix string) (TLSFiles, error) {
	f := TLSFiles{Cert: getenv(prefix + "_TLS_CERT"), Key: getenv(prefix + "_TLS_KEY"), CA: getenv(prefix + "_TLS_CA")}
	set := 0
	for _, v := range []string{f.Cert, f.Key, f.CA} {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return TLSFiles{}, fmt.Errorf("%s_TLS_CERT, %s_TLS_KEY and %s_TLS_CA must be set together (or none: plain HTTP)", prefix, prefix, prefix)
	}
	return f, nil
}

// Enabled reports whether TLS is configured.
func (f TLSFiles) Enabled() bool { return f.Cert != "" }

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("TLS CA %s: no PEM certificate", f.CA)
	}
	return pair, pool, nil
}

// ServerConfig is the server side: the service's certificate, and client certificates
// verified against the CA when given (a client without one still gets through the
// handshake, so /healthz and /readyz answer it; Authorize refuses it everywhere else).
// Nil when TLS is off.
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}, nil
}

// ClientConfig is the client side: the service's certificate presented to its peers, and
// only the CA trusted for theirs. Nil when TLS is off.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: pool}, nil
}

// Callers is a service's caller table: for each route pattern (http.ServeMux syntax, "GET
// /export/addresses", "/" for every route no other pattern matches) the identities allowed
// to call it. Operator is allowed everywhere and need not be listed; a route that matches
// no pattern is refused to everyone else. /healthz and /readyz are open to all.
type Callers map[string][]string

// OpenPaths are served without a client certificate: the runner's and compose's health checks.
var OpenPaths = []string{"/healthz", "/readyz"}

// CallerFrom returns the verified identity (certificate CommonName) of the request's
// client, or "" when it presented none (or the connection is not TLS).
func CallerFrom(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ""
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName
}

// Authorize is the middleware enforcing a caller table: /healthz and /readyz pass; a
// request without a verified client certificate gets 401; a caller the table does not
// allow on the route gets 403 (both problem+json, and a warning in the log).
func Authorize(callers Callers, log *slog.Logger) Middleware {
	if log == nil {
		log = slog.Default()
	}
	table := http.NewServeMux()
	allowed := make(map[string][]string, len(callers))
	for pattern, ids := range callers {
		table.Handle(pattern, http.NotFoundHandler()) // panics on a malformed table, at start
		allowed[pattern] = ids
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slices.Contains(OpenPaths, r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			caller := CallerFrom(r)
			if caller == "" {
				log.WarnContext(r.Context(), "caller refused: no client certificate", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				e := Unauthorized("a client certificate signed by the Polyshop CA is required (mutual TLS)")
				WriteProblem(w, r, e, log)
				return
			}
			if caller != Operator {
				_, pattern := table.Handler(r)
				if !slices.Contains(allowed[pattern], caller) {
					log.WarnContext(r.Context(), "caller refused: not allowed on this route", "caller", caller, "method", r.Method, "path", r.URL.Path, "route", pattern)
					WriteProblem(w, r, Forbidden(fmt.Sprintf("%s may not call %s %s", caller, r.Method, r.URL.Path)), log)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WithMTLS makes Serve and Listen serve HTTPS with cfg (TLSFiles.ServerConfig) and guard
// the handler with Authorize(callers). A nil cfg changes nothing: plain HTTP for everyone.
func WithMTLS(cfg *tls.Config, callers Callers) ServeOption {
	return func(c *serveConfig) {
		c.tls = cfg
		c.callers = callers
	}
}

// WithClientTLS makes NewClient present cfg's certificate and trust cfg's CA
// (TLSFiles.ClientConfig). A nil cfg changes nothing.
func WithClientTLS(cfg *tls.Config) ClientOption {
	return func(c *clientConfig) { c.tls = cfg }
}

// ServiceTLS reads the service's TLS settings (TLSFromEnv with the service's name upper-cased)
// and returns its server and client configurations, both nil when TLS is off.
func ServiceTLS(getenv func(string) string, service string) (server, client *tls.Config, err error) {
	f, err := TLSFromEnv(getenv, strings.ToUpper(service))
	if err != nil {
		return nil, nil, err
	}
	if server, err = f.ServerConfig(); err != nil {
		return nil, nil, err
	}
	if client, err = f.ClientConfig(); err != nil {
		return nil, nil, err
	}
	return server, client, nil
}
