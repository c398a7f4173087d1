package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
)

func TestInOrderHoldsBackAnAggregateAfterItsFirstFailure(t *testing.T) {
	ctx := context.Background()
	env := func(subject string, seq int64) string {
		e, err := events.New(ctx, events.TypeUserDeleted, subject, seq, events.UserDeleted{UserID: subject})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var published []string
	publish := func(_ context.Context, e events.Envelope) error {
		if e.Subject == "b" && e.Sequence == 1 {
			return errors.New("broker down")
		}
		published = append(published, e.Subject)
		return nil
	}
	var o outbox.InOrder
	stored := []struct{ agg, id, env string }{
		{"a", "a1", env("a", 1)}, {"b", "b1", env("b", 1)}, {"b", "b2", env("b", 2)},
		{"a", "a2", env("a", 2)}, {"c", "c1", "{not json"},
	}
	var ok []bool
	for _, s := range stored {
		sent, err := o.Publish(ctx, publish, s.agg, s.id, s.env)
		if err != nil {
			t.Fatalf("Publish %s: %v (ctx is live)", s.id, err)
		}
		ok = append(ok, sent)
	}
	if diff := cmp.Diff(ok, []bool{true, false, false, true, false}); diff != "" {
		t.Errorf("published (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(published, []string{"a", "a"}); diff != "" {
		t.Errorf("handed to publish (-got +want):\n%s", diff)
	}
	if err := o.Err(); !errors.Is(err, outbox.ErrNotPublished) || !strings.HasPrefix(err.Error(), "outbox: event not published: b1:") {
		t.Errorf("Err = %v, want the first failure (b1) wrapping ErrNotPublished", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var o2 outbox.InOrder
	failing := func(ctx context.Context, _ events.Envelope) error { return ctx.Err() }
	if sent, err := o2.Publish(cancelled, failing, "a", "a1", env("a", 1)); sent || !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with an ended ctx = %v, %v; want false, context.Canceled", sent, err)
	}
}
