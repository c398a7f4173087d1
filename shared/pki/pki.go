// Package pki is Polyshop's local certificate authority for mutual TLS between services:
// one CA, and one certificate and key per identity (each service, plus "operator" for the
// scripts, tools, auditor, labs and tests). It uses only Go's standard library.
//
// The identity is the certificate's CommonName (also as a URI SAN polyshop://<name>). Every
// certificate serves as both server and client certificate; its DNS names are the identity
// (the compose service hostname) and localhost, its IP addresses 127.0.0.1 and ::1.
//
// Layout in the directory: ca.pem, ca.key, <name>.pem, <name>.key (keys mode 0600).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Identities are the names the stack issues certificates for: every service and the
// operator.
var Identities = []string{"users", "sessions", "catalog", "inventory", "orders", "payments", "activity", "search", "gateway", Operator}

// Operator is the identity of the scripts, tools, auditor, labs and tests; services allow
// it on every route.
const Operator = "operator"

// Validity of what Ensure creates. A lab CA: long enough never to expire during a course.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 5 * 365 * 24 * time.Hour
)

// Report says what Ensure did.
type Report struct {
	CACreated bool
	Issued    []string // identities whose certificate was (re)issued
}

// Ensure creates in dir, when missing, the CA and a certificate per name (default:
// Identities). Existing files are kept when they parse and the certificate verifies against
// the CA and is valid for at least another 30 days; a new CA re-issues every certificate.
// Idempotent: a second call changes nothing.
func Ensure(dir string, names ...string) (Report, error) {
	var rep Report
	if len(names) == 0 {
		names = Identities
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, err
	}
	caCert, caKey, err := loadPair(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"))
	if err != nil || !caCert.IsCA || time.Until(caCert.NotAfter) < 30*24*time.Hour {
		if caCert, caKey, err = newCA(dir); err != nil {
			return rep, fmt.Errorf("create the CA: %w", err)
		}
		rep.CACreated = true
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	for _, name := range names {
		certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		if !rep.CACreated {
			if c, _, err := loadPair(certPath, keyPath); err == nil && c.Subject.CommonName == name &&
				time.Until(c.NotAfter) > 30*24*time.Hour && verifies(c, roots) {
				continue
			}
		}
		if err := issue(caCert, caKey, name, certPath, keyPath); err != nil {
			return rep, fmt.Errorf("issue %s: %w", name, err)
		}
		rep.Issued = append(rep.Issued, name)
	}
	return rep, nil
}

func verifies(c *x509.Certificate, roots *x509.CertPool) bool {
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}})
	return err == nil
}

// loadPair reads a PEM certificate and its PEM key and checks that they belong together.
func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New(keyPath + ": not an ECDSA key")
	}
	return pair.Leaf, key, nil
}

func newCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Polyshop local CA", Organization: []string{"Polyshop lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := write(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Polyshop lab"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		URIs:         []*url.URL{{Scheme: "polyshop", Host: name}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return write(certPath, keyPath, der, key)
}

// write stores the key (0600) then the certificate (0644), each through a temporary file
// renamed into place, so a reader never sees half a file.
func write(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFile(path string, b []byte, mode fs.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
