// Package natstest gives integration tests a broker connection as a given service and
// names that do not collide with other tests sharing the same NATS server.
//
// Each service's NATS user may only create its own streams (<OWNER> and DLQ_<OWNER>) and
// publish under its own name, so tests cannot create private streams. They share the
// owner's stream instead and isolate themselves by subject: EventType returns a test-only
// event type whose subject no real consumer filters on, and Durable creates consumer names
// that are deleted when the test ends.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/broker"
	"polyshop/shared/testenv"
)

// Conn connects to the NATS server at the URL in the setting urlVar (such as
// USERS_NATS_URL, read with testenv.Getenv) as service, and closes the connection when the
// test ends. An unreachable server skips the test, or fails it under CI=true.
func Conn(t testing.TB, urlVar, service string) *broker.Conn {
	t.Helper()
	url := testenv.Getenv(urlVar)
	if url == "" {
		testenv.Require(t, "nats", fmt.Errorf("%s is not set", urlVar))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := broker.Connect(ctx, url, service, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		err = c.Ready(ctx)
		if err != nil {
			c.Close()
		}
	}
	testenv.Require(t, "nats", err)
	t.Cleanup(c.Close)
	return c
}

// Stream ensures owner's stream exists (the connection must belong to owner) and returns
// its name.
func Stream(t testing.TB, c *broker.Conn, owner string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.EnsureStream(ctx, owner); err != nil {
		t.Fatalf("ensure stream of %s: %v", owner, err)
	}
	return broker.StreamName(owner)
}

// EventType returns an event type unique to the test, "polyshop.<owner>.test_<unique>.v1",
// whose NATS subject ("<owner>.test_<unique>.v1") only this test consumes.
func EventType(t testing.TB, owner string) string {
	t.Helper()
	return "polyshop." + owner + "." + testenv.UniqueName(t, "test") + ".v1"
}

// Durable returns a durable consumer name unique to the test, starting with prefix, and
// deletes that consumer from stream when the test ends (a consumer that was never created
// is fine).
func Durable(t testing.TB, c *broker.Conn, stream, prefix string) string {
	t.Helper()
	name := testenv.UniqueName(t, prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.JetStream().DeleteConsumer(ctx, stream, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("delete consumer %s on %s: %v", name, stream, err)
		}
	})
	return name
}
