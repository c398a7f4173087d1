package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/gateway/internal/eventhub"
	"polyshop/shared/events"
	"polyshop/shared/testenv/natstest"
)

// The live event view against a real NATS server. The hub reads the tests' own stream
// TEST_USERS (natstest: subjects test.users.>, published as the NATS user test), on a
// test-only subject (natstest.EventType), so no real consumer ever sees these messages and
// the test sees no real ones; the hub reads as the gateway.

// eventsRig is a gateway API with a hub on a test subject and a sessions stub whose tokens
// are "user-<id>" (customer <id>) and "admin-<id>" (admin).
// usersStream is the test stream standing for USERS.
var usersStream = natstest.StreamName("users")

type eventsRig struct {
	srv     *httptest.Server
	subject string
	publish func(t *testing.T, n int, data map[string]any) uint64 // returns the stream sequence
}

func newEventsRig(t *testing.T, buffer int) *eventsRig {
	t.Helper()
	pub := natstest.TestConn(t)
	natstest.Stream(t, pub, "users")
	// The hub reads the test stream as the test user: the gateway's own NATS user may read
	// the owner streams only (infra/nats/nats.conf).
	gw := pub
	subject := events.SubjectFor(natstest.EventType(t, "users"))

	hub := eventhub.New(gw.JetStream(), eventhub.Config{Streams: []string{usersStream}, FilterSubjects: []string{subject}, Buffer: buffer})
	ctx, cancel := context.WithCancel(context.Background())
	go hub.Run(ctx)
	t.Cleanup(func() { cancel(); <-hub.Done() })

	sessions := newRecUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Token string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		role, id, ok := strings.Cut(req.Token, "-")
		if !ok || (role != "user" && role != "admin") {
			writeStatusProblem(w, 401)
			return
		}
		if role == "user" {
			role = "customer"
		}
		writeTestJSON(w, 200, map[string]string{"userId": id, "role": role, "sessionId": "s-" + id})
	})
	api := New(nil, nil, Upstreams{Sessions: sessions.URL}, WithEvents(hub, gw.JetStream()),
		WithEventHeartbeat(20*time.Millisecond), WithAuthCacheTTL(0))
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(srv.Close)

	// Wait until the hub has attached (Subscribe answers ErrNotReady before).
	for {
		s, err := hub.Subscribe(context.Background(), nil, 0, nil)
		if err == nil {
			s.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rig := &eventsRig{srv: srv, subject: subject}
	rig.publish = func(t *testing.T, n int, data map[string]any) uint64 {
		t.Helper()
		data["n"] = n
		body, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": fmt.Sprintf("test-%s-%d", t.Name(), n),
			"source": "/polyshop/users", "type": "polyshop." + subject, "subject": fmt.Sprint(data["subject"]),
			"time": time.Now().UTC(), "data": data})
		ack, err := pub.JetStream().Publish(context.Background(), subject, body)
		if err != nil {
			t.Fatalf("publish %d: %v", n, err)
		}
		return ack.Sequence
	}
	return rig
}

// sseEvent is one SSE message: its id and its data (nil for an id-only update).
type sseEvent struct {
	id   string
	data *eventhub.Event
	raw  string
}

// readUntil reads GET /api/events as token (with lastEventID, when set) until the position
// in the id reaches USERS:until, and returns the data messages received.
func (rig *eventsRig) readUntil(t *testing.T, token, query, lastEventID string, until uint64) ([]sseEvent, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rig.srv.URL+"/api/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /api/events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var out []sseEvent
	cur := sseEvent{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			cur.raw = line[6:]
			var e eventhub.Event
			if err := json.Unmarshal([]byte(cur.raw), &e); err != nil {
				t.Fatalf("data is not an event: %v: %s", err, cur.raw)
			}
			cur.data = &e
		case line == "":
			if cur.data != nil {
				out = append(out, cur)
			}
			if cur.id != "" {
				pos, err := eventhub.ParsePosition(cur.id)
				if err != nil {
					t.Fatalf("bad id %q: %v", cur.id, err)
				}
				if pos[usersStream] >= until {
					return out, cur.id
				}
			}
			cur = sseEvent{}
		}
	}
	t.Fatalf("stream ended before USERS:%d (%v)", until, sc.Err())
	return nil, ""
}

func numbers(evs []sseEvent) []int {
	var out []int
	for _, e := range evs {
		var d struct{ N int }
		_ = json.Unmarshal(e.data.Data, &d)
		out = append(out, d.N)
	}
	return out
}

func TestEventsShowEachUserOnlyTheirOwnAggregates(t *testing.T) {
	rig := newEventsRig(t, 100)
	start := rig.publish(t, 0, map[string]any{"userId": "nobody"}) // the resume point
	rig.publish(t, 1, map[string]any{"userId": "alice", "email": "alice@example.test", "subject": "alice"})
	rig.publish(t, 2, map[string]any{"userId": "bob", "email": "bob-secret@example.test", "subject": "bob"})
	rig.publish(t, 3, map[string]any{"productId": "p1", "subject": "p1"}) // shop-wide: admins only
	rig.publish(t, 4, map[string]any{"userId": "alice", "orderId": "order-a", "subject": "order-a"})
	rig.publish(t, 5, map[string]any{"orderId": "order-a", "subject": "order-a"}) // no userId: known order
	rig.publish(t, 6, map[string]any{"userId": "bob", "orderId": "order-b", "address": "Bob's street 1", "subject": "order-b"})
	last := rig.publish(t, 7, map[string]any{"orderId": "order-b", "subject": "order-b"})
	from := fmt.Sprintf(usersStream+":%d", start)

	tests := []struct {
		name, token, query string
		want               []int
		mustNotContain     []string
	}{
		{"alice sees her user and her order's chain", "user-alice", "", []int{1, 4, 5}, []string{"bob", "Bob's street"}},
		{"bob sees his own, never alice's", "user-bob", "", []int{2, 6, 7}, []string{"alice"}},
		{"a user with no events sees nothing", "user-carol", "", nil, []string{"alice", "bob"}},
		{"admin sees everything", "admin-root", "", []int{1, 2, 3, 4, 5, 6, 7}, nil},
		{"admin filtered by order", "admin-root", "?orderId=order-b", []int{6, 7}, nil},
		{"a user's order filter cannot widen what they see", "user-alice", "?orderId=order-b", nil, []string{"bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := rig.readUntil(t, tc.token, tc.query, from, last)
			if diff := cmp.Diff(numbers(got), tc.want); diff != "" {
				t.Errorf("events (-got +want):\n%s", diff)
			}
			for _, e := range got {
				for _, s := range tc.mustNotContain {
					if strings.Contains(e.raw, s) {
						t.Errorf("event %s carries %q, which this viewer must never receive", e.raw, s)
					}
				}
			}
		})
	}
}

func TestEventsResumeFromLastEventIDWithoutGaps(t *testing.T) {
	// A buffer of 3 forces most of the resumed part to come from JetStream, not memory.
	rig := newEventsRig(t, 3)
	start := rig.publish(t, 0, map[string]any{"userId": "alice"})
	var seqs []uint64
	for n := 1; n <= 10; n++ {
		seqs = append(seqs, rig.publish(t, n, map[string]any{"userId": "alice"}))
	}
	first, id := rig.readUntil(t, "user-alice", "", fmt.Sprintf(usersStream+":%d", start), seqs[3])
	if diff := cmp.Diff(numbers(first), []int{1, 2, 3, 4}); diff != "" {
		t.Fatalf("first connection (-got +want):\n%s", diff)
	}
	// Disconnected: more happens, including other users' events and more than the buffer.
	for n := 11; n <= 20; n++ {
		owner := "alice"
		if n%3 == 0 {
			owner = "bob"
		}
		seqs = append(seqs, rig.publish(t, n, map[string]any{"userId": owner}))
	}
	tests := []struct {
		name, lastEventID string
		want              []int
	}{
		{"resume after the 4th", id, []int{5, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 19, 20}},
		{"resume from the very start", fmt.Sprintf(usersStream+":%d", start), []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 19, 20}},
		{"resume at the end", fmt.Sprintf(usersStream+":%d", seqs[len(seqs)-1]), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := rig.readUntil(t, "user-alice", "", tc.lastEventID, seqs[len(seqs)-1])
			if diff := cmp.Diff(numbers(got), tc.want); diff != "" {
				t.Errorf("resumed events (-got +want):\n%s", diff)
			}
		})
	}
	t.Run("ids only move forward", func(t *testing.T) {
		got, _ := rig.readUntil(t, "admin-root", "", fmt.Sprintf(usersStream+":%d", start), seqs[len(seqs)-1])
		var prev uint64
		for _, e := range got {
			pos, _ := eventhub.ParsePosition(e.id)
			if pos[usersStream] != e.data.Seq || pos[usersStream] <= prev {
				t.Errorf("id %s for seq %d after %d", e.id, e.data.Seq, prev)
			}
			prev = pos[usersStream]
		}
	})
}

func TestEventsRejectsBadParameters(t *testing.T) {
	rig := newEventsRig(t, 10)
	tests := []struct {
		name, token, query, lastEventID string
		want                            int
	}{
		{"no session", "", "", "", http.StatusUnauthorized},
		{"unknown stream", "user-a", "?stream=NOPE", "", http.StatusBadRequest},
		{"backlog too large", "user-a", "?backlog=999999", "", http.StatusBadRequest},
		{"malformed Last-Event-ID", "user-a", "", "USERS=4", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, rig.srv.URL+"/api/events"+tc.query, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.lastEventID != "" {
				req.Header.Set("Last-Event-ID", tc.lastEventID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
