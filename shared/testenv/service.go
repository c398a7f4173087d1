package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"polyshop/shared/config"
)

// RunFunc is a service's run function, as its main.go declares it.
type RunFunc func(ctx context.Context, getenv config.Getenv, stdout io.Writer) error

// Service is a service started in-process by StartService.
type Service struct {
	// Addr is the host:port it listens on.
	Addr string
	// URL is its base URL: https://Addr when it was started with mutual TLS
	// (<SVC>_TLS_CERT/KEY/CA, see PKI.Env), else http://Addr.
	URL    string
	cancel context.CancelFunc
	done   chan error
	log    lockedBuffer
	err    error
	once   sync.Once
}

// StartService runs a service's run function with the stack's settings (Getenv, so exactly
// infra/local.env), overridden by env, on a free loopback port given to it as addrVar
// (e.g. "USERS_HTTP_ADDR"), and returns once its /readyz answers 200. If run returns first,
// the test fails — unless an engine of the service (an address in one of its <SVC>_*
// settings) does not accept connections: then it is skipped, or failed under CI=true
// (Require). A configuration error or a bug is never skipped. The service is stopped at
// cleanup; Stop stops it earlier.
func StartService(t testing.TB, run RunFunc, addrVar string, env map[string]string) *Service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{Addr: ln.Addr().String(), done: make(chan error, 1)}
	ln.Close()
	getenv := func(k string) string {
		if k == addrVar {
			return s.Addr
		}
		if v, ok := env[k]; ok {
			return v
		}
		return Getenv(k)
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- run(ctx, getenv, &s.log) }()
	t.Cleanup(func() { s.Stop() })

	// With mutual TLS, /readyz is polled over HTTPS trusting the service's CA; it needs no
	// client certificate.
	prefix, _, _ := strings.Cut(addrVar, "_")
	client := &http.Client{Timeout: 2 * time.Second}
	s.URL = "http://" + s.Addr
	if ca := getenv(prefix + "_TLS_CA"); ca != "" {
		pool, err := certPool(ca)
		if err != nil {
			t.Fatal(err)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		s.URL = "https://" + s.Addr
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		select {
		case err := <-s.done:
			s.done <- err
			if down := unreachable(engineAddrs(prefix+"_", getenv, env)); down != nil {
				Require(t, "the service's engines", fmt.Errorf("%w (run returned: %v)", down, err))
			}
			t.Fatalf("run returned before /readyz answered: %v\n%s", err, s.Log())
		default:
		}
		if resp, err := client.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer 200 within 60s:\n%s", s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// engineAddrs returns the host:port of every engine named in a setting that starts with
// prefix: URLs with a host (postgres://, nats://, redis://, mongodb://, http://) and
// comma-separated host:port lists (*_HOSTS).
func engineAddrs(prefix string, getenv func(string) string, overrides map[string]string) []string {
	var addrs []string
	all := names()
	for k := range overrides {
		if !slices.Contains(all, k) {
			all = append(all, k)
		}
	}
	for _, name := range all {
		if !strings.HasPrefix(name, prefix) || strings.HasSuffix(name, "_HTTP_ADDR") {
			continue
		}
		v := getenv(name)
		if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
			if u.Port() != "" {
				addrs = append(addrs, u.Host)
			}
			continue
		}
		if strings.HasSuffix(name, "_HOSTS") {
			for _, h := range strings.Split(v, ",") {
				if _, _, err := net.SplitHostPort(strings.TrimSpace(h)); err == nil {
					addrs = append(addrs, strings.TrimSpace(h))
				}
			}
		}
	}
	return addrs
}

// unreachable returns an error naming the first address that refuses a TCP connection
// within a second, or nil when every one accepts.
func unreachable(addrs []string) error {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return fmt.Errorf("engine at %s unreachable: %w", a, err)
		}
		c.Close()
	}
	return nil
}

// Stop cancels the service's context and returns what run returned: nil after a graceful
// shutdown. Calling it again returns the same result.
func (s *Service) Stop() error {
	s.once.Do(func() {
		s.cancel()
		s.err = <-s.done
	})
	return s.err
}

// Log returns everything the service has logged so far.
func (s *Service) Log() string { return s.log.String() }

// CheckNoSecrets fails the test if the value of any of the named variables (as Getenv reads
// them) appears in the service's log.
func (s *Service) CheckNoSecrets(t testing.TB, vars ...string) {
	t.Helper()
	log := s.Log()
	for _, v := range vars {
		if secret := Getenv(v); secret != "" && strings.Contains(log, secret) {
			t.Errorf("the value of %s appears in the service's log", v)
		}
	}
}

// lockedBuffer is a bytes.Buffer the service's logger and the test can share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// certPool reads a PEM CA file.
func certPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
