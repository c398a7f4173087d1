package testenv

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"polyshop/shared/httpx"
	"polyshop/shared/pki"
)

// PKI is a test certificate authority with a certificate per identity (shared/pki:
// every service and the operator) in a temporary directory, for services started with
// mutual TLS by StartService.
type PKI struct {
	Dir string
}

// NewPKI creates the CA and the certificates in a temporary directory of t.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	return &PKI{Dir: dir}
}

// Files returns identity's certificate, key and the CA.
func (p *PKI) Files(identity string) httpx.TLSFiles {
	return httpx.TLSFiles{
		Cert: filepath.Join(p.Dir, identity+".pem"),
		Key:  filepath.Join(p.Dir, identity+".key"),
		CA:   filepath.Join(p.Dir, "ca.pem"),
	}
}

// Env returns the settings that make service serve (and call its peers) with mutual TLS:
// <SVC>_TLS_CERT, <SVC>_TLS_KEY, <SVC>_TLS_CA. Pass them to StartService.
func (p *PKI) Env(service string) map[string]string {
	f, prefix := p.Files(service), strings.ToUpper(service)
	return map[string]string{prefix + "_TLS_CERT": f.Cert, prefix + "_TLS_KEY": f.Key, prefix + "_TLS_CA": f.CA}
}

// Client returns a client that trusts the CA and presents identity's certificate, or no
// certificate when identity is "".
func (p *PKI) Client(t testing.TB, identity string) *http.Client {
	t.Helper()
	name := identity
	if name == "" {
		name = pki.Operator
	}
	cfg, err := p.Files(name).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if identity == "" {
		cfg.Certificates = nil
	}
	return httpx.NewClient(10*time.Second, httpx.WithClientTLS(cfg))
}
