package gwclient

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/pki"
)

func TestInternalURLAndTLSDir(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantURL, want string
	}{
		{"off by default", map[string]string{}, "http://127.0.0.1:8081", ""},
		{"on", map[string]string{"POLYSHOP_TLS": "on", "POLYSHOP_TLS_DIR": "/x/tls"}, "https://127.0.0.1:8081", "/x/tls"},
		{"address from the environment", map[string]string{"USERS_HTTP_ADDR": "127.0.0.1:9", "POLYSHOP_STATE": "/s"}, "http://127.0.0.1:9", "/s/tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got := []string{InternalURL(getenv, "users", "127.0.0.1:8081"), ""}
			if tt.want != "" {
				got[1] = TLSDir(getenv)
			}
			if diff := cmp.Diff([]string{tt.wantURL, tt.want}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOperatorClientPresentsTheOperatorCertificate(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Ensure(dir, pki.Operator); err != nil {
		t.Fatal(err)
	}
	on := func(k string) string { return map[string]string{"POLYSHOP_TLS": "on", "POLYSHOP_TLS_DIR": dir}[k] }
	c, err := OperatorClient(on, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Transport.(*http.Transport).TLSClientConfig
	if cfg == nil || len(cfg.Certificates) != 1 || cfg.Certificates[0].Leaf.Subject.CommonName != pki.Operator || cfg.RootCAs == nil {
		t.Fatalf("TLS config %+v: want operator's certificate and the CA", cfg)
	}
	if _, err := OperatorClient(func(k string) string {
		return map[string]string{"POLYSHOP_TLS": "on", "POLYSHOP_TLS_DIR": filepath.Join(dir, "missing")}[k]
	}, time.Second); err == nil {
		t.Error("no error without the operator's files")
	}
	off, err := OperatorClient(func(string) string { return "" }, time.Second)
	if err != nil || off.Transport != nil {
		t.Errorf("TLS off: %v, transport %v; want a plain client", err, off.Transport)
	}
}
