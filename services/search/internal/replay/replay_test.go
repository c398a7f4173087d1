package replay_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/services/search/internal/replay"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/testenv/natstest"
)

// TestReplayReadsTheStreamFromTheStartAndThenOnlyNewEvents publishes test-only event types
// on the CATALOG stream (as the catalog user; the search user may not publish there) and
// replays them with the search user.
func TestReplayReadsTheStreamFromTheStartAndThenOnlyNewEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat := natstest.Conn(t, "CATALOG_NATS_URL", "catalog")
	natstest.Stream(t, cat, "catalog")
	typ := natstest.EventType(t, "catalog")
	publish := func(n int) []string {
		var ids []string
		for i := range n {
			e, err := events.New(ctx, typ, uuid.NewString(), int64(i+1), json.RawMessage(`{"i":1}`))
			if err != nil {
				t.Fatal(err)
			}
			if err := cat.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		return ids
	}
	first := publish(7)

	nc := natstest.Conn(t, "SEARCH_NATS_URL", "search")
	src := replay.New(nc.JetStream(), broker.StreamName("catalog"), []string{events.SubjectFor(typ)}, 3, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var got []string
	collect := func(_ context.Context, batch []events.Envelope) error {
		if len(batch) > 3 {
			t.Errorf("batch of %d, want at most 3", len(batch))
		}
		for _, e := range batch {
			got = append(got, e.ID)
		}
		return nil
	}
	n, last, err := src.Replay(ctx, 1, collect)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, first); diff != "" || n != len(first) {
		t.Errorf("first replay: n=%d (-got +want):\n%s", n, diff)
	}
	second := publish(2)
	got = nil
	n, _, err = src.Replay(ctx, last+1, collect)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, second); diff != "" || n != 2 {
		t.Errorf("replay after %d: n=%d (-got +want):\n%s", last, n, diff)
	}
}

// A stream its owner has not created yet (INVENTORY before inventory first starts) holds
// nothing to replay: a rebuild goes on without it.
func TestReplayOfAMissingStreamIsEmpty(t *testing.T) {
	nc := natstest.Conn(t, "SEARCH_NATS_URL", "search")
	src := replay.New(nc.JetStream(), "NOSUCH_"+strings.ToUpper(uuid.NewString()[:8]), []string{"nosuch.x.v1"}, 3, slog.New(slog.NewTextHandler(io.Discard, nil)))
	called := false
	n, last, err := src.Replay(context.Background(), 5, func(context.Context, []events.Envelope) error { called = true; return nil })
	if err != nil || n != 0 || last != 4 || called {
		t.Errorf("Replay = %d, %d, %v (fn called %v); want 0, 4, nil, not called", n, last, err, called)
	}
}
