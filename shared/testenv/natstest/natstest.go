// Package natstest gives integration tests a broker connection and names that do not
// collide with other tests sharing the same NATS server — and keeps tests off the live
// owner streams.
//
// Tests publish only in their own namespace: subjects "test.<owner>.>" in streams
// "TEST_<OWNER>", as the NATS user "test" (TEST_NATS_URL), which may publish nowhere else
// (infra/nats/nats.conf). The owners' live streams (USERS, CATALOG, …) are consumed by the
// running platform and keep their events for 30 days, so a test event there would reach
// real read models. A test that publishes:
//   - connects with TestConn and creates its owner's test stream with Stream;
//   - uses EventType for a test-only type, already in the namespace
//     ("polyshop.test.users.test_<unique>.v1" on "test.users.test_<unique>.v1"), so the
//     broker's Publish and an outbox relay need nothing else;
//   - or sends an event of a real type with Publish / Publisher, on Subject(type)
//     ("test.users.registered.v1"), and points the consumer under test at that subject and
//     at StreamName(owner).
//
// Conn connects as a service: for tests that only read the live streams, or that check the
// service's own permissions.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/testenv"
)

// Namespace starts every subject tests publish on.
const Namespace = "test."

// User is the NATS user (and broker service name) of tests; its dead letters go to
// DLQ_TEST.
const User = "test"

// URLVar is the setting holding the test user's NATS URL.
const URLVar = "TEST_NATS_URL"

// StreamMaxAge is how long a test stream keeps messages: long enough for any test run,
// short enough that a day of benchmarks does not fill the disk (at 24 hours the users test
// stream had grown to 2.5 million messages, 1.6 GB).
const StreamMaxAge = time.Hour

// TestConn connects as the test user (TEST_NATS_URL), the only connection a test publishes
// with, and closes it when the test ends. An unreachable server skips the test, or fails it
// under CI=true.
func TestConn(t testing.TB) *broker.Conn {
	t.Helper()
	return Conn(t, URLVar, User)
}

// Conn connects to the NATS server at the URL in the setting urlVar (such as
// USERS_NATS_URL, read with testenv.Getenv) as service, and closes the connection when the
// test ends. An unreachable server skips the test, or fails it under CI=true. Tests never
// publish with a service's connection: see TestConn.
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
	if err != nil && service == User && strings.Contains(strings.ToLower(err.Error()), "authorization") {
		// A server started before infra/nats/nats.conf had the test user: not a skip.
		t.Fatalf("NATS refuses the test user (%v): restart it with ./scripts/stack up nats", err)
	}
	testenv.Require(t, "nats", err)
	t.Cleanup(c.Close)
	return c
}

// StreamName returns the test stream of owner's namespace: "TEST_<OWNER>".
func StreamName(owner string) string { return "TEST_" + broker.StreamName(owner) }

// Stream creates (or updates) owner's test stream, capturing "test.<owner>.>", and returns
// its name. c must be a TestConn.
func Stream(t testing.TB, c *broker.Conn, owner string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := StreamName(owner)
	_, err := c.JetStream().CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{Namespace + owner + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     StreamMaxAge,
		Duplicates: broker.DuplicateWindow,
	})
	if err != nil {
		t.Fatalf("ensure test stream %s (as %s; only the test user may): %v", name, c.Service(), err)
	}
	return name
}

// EventType returns an event type unique to the test in owner's test namespace,
// "polyshop.test.<owner>.test_<unique>.v1", whose subject "test.<owner>.test_<unique>.v1"
// only this test consumes.
func EventType(t testing.TB, owner string) string {
	t.Helper()
	return events.TypePrefix + Namespace + owner + "." + testenv.UniqueName(t, "test") + ".v1"
}

// Subject returns the subject a test sends events of type typ on: the type's own subject
// when it is already in the namespace (EventType), else the namespace followed by it
// ("polyshop.users.registered.v1" → "test.users.registered.v1").
func Subject(typ string) string {
	s := events.SubjectFor(typ)
	if strings.HasPrefix(s, Namespace) {
		return s
	}
	return Namespace + s
}

// Subjects returns Subject of each type.
func Subjects(types ...string) []string {
	out := make([]string, len(types))
	for i, typ := range types {
		out[i] = Subject(typ)
	}
	return out
}

// Publisher publishes events into the test namespace (on Subject(e.Type)) through C, a
// TestConn. It satisfies outbox.Publisher, so a real relay can run against it.
type Publisher struct{ C *broker.Conn }

// Publish publishes e on Subject(e.Type) and waits for the stream's acknowledgement.
func (p Publisher) Publish(ctx context.Context, e events.Envelope) error {
	return p.C.PublishOn(ctx, Subject(e.Type), e)
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
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete consumer %s on %s: %v", name, stream, err)
		}
	})
	return name
}
