package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"polyshop/shared/config"
)

// fakeRun is a minimal service: /readyz answers 200 once it listens on its address.
func fakeRun(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	ln, err := net.Listen("tcp", getenv("FAKE_HTTP_ADDR"))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "listening, greeting", getenv("FAKE_GREETING"))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(ln)
	<-ctx.Done()
	return srv.Close()
}

func TestStartServiceWaitsForReadinessAndStops(t *testing.T) {
	s := StartService(t, fakeRun, "FAKE_HTTP_ADDR", map[string]string{"FAKE_GREETING": "hello"})
	resp, err := http.Get("http://" + s.Addr + "/readyz")
	if err != nil {
		t.Fatalf("service not reachable after StartService: %v", err)
	}
	resp.Body.Close()
	if err := s.Stop(); err != nil {
		t.Errorf("Stop = %v, want nil", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop = %v, want the same nil", err)
	}
	if got, want := s.Log(), "listening, greeting hello\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// TestStartServiceEarlyExit: a service that returns before it is ready is skipped (failed
// under CI=true) only when one of its engines refuses connections; any other early return
// (a configuration error, a bug) fails the test everywhere.
func TestStartServiceEarlyExit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := ln.Addr().String()
	t.Cleanup(func() { ln.Close() })
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := dead.Addr().String()
	dead.Close()

	for _, tt := range []struct {
		name     string
		env      map[string]string
		wantSkip bool
	}{
		{"engine refuses connections", map[string]string{"FAKE_DATABASE_URL": "postgres://u:p@" + down + "/db"}, !InCI()},
		{"engines reachable: a bug", map[string]string{"FAKE_DATABASE_URL": "postgres://u:p@" + up + "/db"}, false},
		{"no engine at all", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			func() {
				defer func() { recover() }() // Skipf/Fatalf of the fake stop the goroutine like the real ones
				StartService(ft, func(context.Context, config.Getenv, io.Writer) error {
					return errors.New("boom")
				}, "FAKE_HTTP_ADDR", tt.env)
			}()
			if ft.skipped != tt.wantSkip || ft.skipped == ft.failed {
				t.Errorf("skipped %v, failed %v; want skipped %v", ft.skipped, ft.failed, tt.wantSkip)
			}
		})
	}
}

// fakeT records Skipf and Fatalf instead of stopping the real test.
type fakeT struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Cleanup(func())        {}
func (f *fakeT) Skipf(string, ...any)  { f.skipped = true; panic("skip") }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
