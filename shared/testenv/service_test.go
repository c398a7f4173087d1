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

func TestStartServiceReportsAnEarlyExit(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { recover() }() // Skipf/Fatalf of the fake stop the goroutine like the real ones
		StartService(ft, func(context.Context, config.Getenv, io.Writer) error {
			return errors.New("engine down")
		}, "FAKE_HTTP_ADDR", nil)
	}()
	if !ft.stopped {
		t.Error("an early exit neither skipped nor failed the test")
	}
}

// fakeT records Skipf and Fatalf instead of stopping the real test.
type fakeT struct {
	testing.TB
	stopped bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Cleanup(func())        {}
func (f *fakeT) Skipf(string, ...any)  { f.stopped = true; panic("skip") }
func (f *fakeT) Fatalf(string, ...any) { f.stopped = true; panic("fatal") }
