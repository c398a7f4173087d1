package pki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnsureCreatesOnceAndKeysArePrivate(t *testing.T) {
	dir := t.TempDir()
	rep, err := Ensure(dir, "users", "operator")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Report{CACreated: true, Issued: []string{"users", "operator"}}, rep); diff != "" {
		t.Errorf("first Ensure (-want +got):\n%s", diff)
	}
	again, err := Ensure(dir, "users", "operator", "search")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Report{Issued: []string{"search"}}, again); diff != "" {
		t.Errorf("second Ensure (-want +got):\n%s", diff)
	}
	for _, f := range []string{"ca.key", "users.key", "operator.key", "search.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "users.pem"), filepath.Join(dir, "users.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf.Subject.CommonName != "users" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "polyshop://users" {
		t.Errorf("identity: CN %q URIs %v", leaf.Subject.CommonName, leaf.URIs)
	}
	for _, host := range []string{"users", "localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("users' certificate for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "catalog", Roots: roots}); err == nil {
		t.Error("users' certificate verifies for host catalog")
	}
}

func TestEnsureReissuesUnderANewCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, "users"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	rep, err := Ensure(dir, "users")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.CACreated || !slices.Equal(rep.Issued, []string{"users"}) {
		t.Errorf("after losing the CA key: %+v, want a new CA and users re-issued", rep)
	}
}
