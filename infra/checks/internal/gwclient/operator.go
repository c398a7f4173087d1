package gwclient

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"polyshop/shared/httpx"
	"polyshop/shared/pki"
)

// The operator identity: how the tools (audit, chaos, dlq, probe), the lab runner and the
// tests call the internal services. When the platform runs with mutual TLS
// (POLYSHOP_TLS=on in infra/local.env), every internal route except /healthz and /readyz
// needs a client certificate; operator's is allowed on every route of every service.

// TLSOn reports whether the platform's internal services serve mutual TLS
// (POLYSHOP_TLS=on). getenv nil means os.Getenv (tests pass testenv.Getenv).
func TLSOn(getenv func(string) string) bool {
	if getenv == nil {
		getenv = os.Getenv
	}
	return strings.EqualFold(getenv("POLYSHOP_TLS"), "on")
}

// TLSDir is the directory of the local CA and the certificates: POLYSHOP_TLS_DIR, else
// $POLYSHOP_STATE/tls, else .polyshop/tls of the repository (found from the working
// directory upwards, by its go.work), else ../tls next to the running executable (tools
// built into .polyshop/bin).
func TLSDir(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv("POLYSHOP_TLS_DIR"); d != "" {
		return d
	}
	if d := getenv("POLYSHOP_STATE"); d != "" {
		return filepath.Join(d, "tls")
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
				return filepath.Join(d, ".polyshop", "tls")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		return filepath.Join(filepath.Dir(filepath.Dir(exe)), "tls")
	}
	return filepath.Join(".polyshop", "tls")
}

// OperatorClient returns the HTTP client of the operator identity with the given timeout:
// with mutual TLS on, it presents <TLSDir>/operator.pem and trusts only <TLSDir>/ca.pem;
// with it off, a plain client. Pair it with InternalURL for the base URLs.
func OperatorClient(getenv func(string) string, timeout time.Duration) (*http.Client, error) {
	if !TLSOn(getenv) {
		return &http.Client{Timeout: timeout}, nil
	}
	dir := TLSDir(getenv)
	cfg, err := httpx.TLSFiles{
		Cert: filepath.Join(dir, pki.Operator+".pem"),
		Key:  filepath.Join(dir, pki.Operator+".key"),
		CA:   filepath.Join(dir, "ca.pem"),
	}.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("operator identity (POLYSHOP_TLS=on): %w", err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Timeout: timeout, Transport: t}, nil
}

// MustOperatorClient is OperatorClient for a tool's main: it exits with the error.
func MustOperatorClient(getenv func(string) string, timeout time.Duration) *http.Client {
	c, err := OperatorClient(getenv, timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return c
}

// InternalURL is the base URL of an internal service: https://<addr> with mutual TLS on,
// http://<addr> otherwise, addr from <SERVICE>_HTTP_ADDR or def. The gateway's public
// port is never TLS: use its own address for it.
func InternalURL(getenv func(string) string, service, def string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	addr := getenv(strings.ToUpper(service) + "_HTTP_ADDR")
	if addr == "" {
		addr = def
	}
	if TLSOn(getenv) {
		return "https://" + addr
	}
	return "http://" + addr
}
