package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"polyshop/shared/broker"
	"polyshop/shared/testenv"
)

// TestStartWhileTheBrokerIsDown: a service whose broker is down at start still starts —
// Connect returns a connection that keeps trying, EnsureStream waits for it — and once a
// server appears on the address the connection comes up and the stream is created without
// anything else being called. The server is a real nats-server (the stack's binary), on a
// port of the test's own.
func TestStartWhileTheBrokerIsDown(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".polyshop", "bin", "nats-server")
	if _, err := os.Stat(bin); err != nil {
		testenv.Require(t, "nats", err) // ./scripts/stack up builds it
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := broker.Connect(ctx, "nats://127.0.0.1:"+strconv.Itoa(port), "users", log)
	if err != nil {
		t.Fatalf("Connect with the broker down = %v, want a connection that keeps trying", err)
	}
	defer c.Close()
	if err := c.Ready(ctx); err == nil {
		t.Fatal("Ready with the broker down = nil, want an error")
	}
	if err := c.EnsureStream(ctx, "users"); err != nil {
		t.Fatalf("EnsureStream with the broker down = %v, want it deferred", err)
	}

	srv := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })

	for c.Ready(ctx) != nil {
		if ctx.Err() != nil {
			t.Fatal("the connection did not come up after the server started")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		if _, err := c.JetStream().Stream(ctx, broker.StreamName("users")); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the stream asked for while the broker was down was never created")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConnectRefusedCredentialsFailAtOnce: a refusal by the server is a configuration
// error, not an outage: Connect fails instead of retrying forever.
func TestConnectRefusedCredentialsFailAtOnce(t *testing.T) {
	url := testenv.Getenv("USERS_NATS_URL")
	wrong := strings.Replace(url, testenv.Getenv("USERS_NATS_PASSWORD"), "not-the-password", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := broker.Connect(ctx, wrong, "users", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		c.Close()
		t.Fatal("Connect with a wrong password = nil, want an error")
	}
	if strings.Contains(err.Error(), "no servers") {
		testenv.Require(t, "nats", err)
	}
}
