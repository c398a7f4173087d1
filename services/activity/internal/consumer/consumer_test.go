package consumer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/activity/internal/activity"
	"polyshop/services/activity/internal/activity/activitytest"
	"polyshop/services/activity/internal/consumer"
	"polyshop/services/activity/internal/cqlstore/cqltest"
	"polyshop/shared/events"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/natstest"
)

// waitFor polls cond until it holds or 15 s pass. It waits for asynchronous delivery; it
// asserts nothing about how long that takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// End to end: events of the real users types, published in the test namespace (as the
// test user, on test.users.* in TEST_USERS), reach the projection through the activity
// consumers pointed at that namespace; no live consumer ever sees them.
func TestConsumerEndToEnd(t *testing.T) {
	st := cqltest.Store(t)
	svc := activity.NewService(st, cqltest.Logger(), activity.Options{})
	tc := natstest.TestConn(t)
	natstest.Stream(t, tc, "users")
	users := natstest.Publisher{C: tc}
	act := natstest.TestConn(t) // its dead letters, if any, go to DLQ_TEST, not the live DLQ_ACTIVITY

	prefix := testenv.UniqueName(t, "activity_test")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, sub := range activity.Subscriptions() {
			err := act.JetStream().DeleteConsumer(ctx, natstest.StreamName(sub.Owner), prefix+"-"+sub.Owner)
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("delete consumer: %v", err)
			}
		}
	})
	// Concurrency 1: the USERS consumer handles events in stream order, so once a later
	// marker event is visible, every event published before it has been handled.
	g := consumer.Start(context.Background(), act, svc.Apply, consumer.Options{
		DurablePrefix: prefix, Concurrency: 1, DeliverNew: true, RetryEvery: 200 * time.Millisecond,
		StreamOf: natstest.StreamName, SubjectPrefix: natstest.Namespace,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	waitFor(t, "the USERS consumer", func() bool { return slices.Contains(g.Attached(), prefix+"-users") })

	ctx := context.Background()
	publish := func(e events.Envelope) {
		t.Helper()
		if err := users.Publish(ctx, e); err != nil {
			t.Fatalf("publish %s: %v", e.Type, err)
		}
	}
	feed := func(uid string) []activity.Entry {
		t.Helper()
		p, err := svc.UserFeed(ctx, uid, "100", "")
		if err != nil {
			t.Fatal(err)
		}
		return p.Items
	}

	uid := activitytest.ID(t)
	now := time.Now().UTC()
	reg := activitytest.UserRegistered(t, uid, now)
	publish(reg)
	publish(activitytest.UserAddressChanged(t, uid, now.Add(time.Second)))
	waitFor(t, "two entries in the feed", func() bool { return len(feed(uid)) == 2 })
	if got := feed(uid); got[0].Summary != "Address changed (Berlin, DE)" || got[1].EventID != reg.ID {
		t.Errorf("feed = %+v, want the address change, then the registration", got)
	}

	// Deletion, then a late event of the deleted user, then a marker for another user.
	publish(activitytest.UserDeleted(t, uid, now.Add(2*time.Second)))
	publish(activitytest.UserAddressChanged(t, uid, now.Add(3*time.Second)))
	marker := activitytest.ID(t)
	publish(activitytest.UserRegistered(t, marker, now.Add(4*time.Second)))
	waitFor(t, "the marker user's entry", func() bool { return len(feed(marker)) == 1 })
	if got := feed(uid); len(got) != 0 {
		t.Errorf("deleted user's feed = %+v, want empty", got)
	}
}
