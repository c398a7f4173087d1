package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"polyshop/services/sessions/internal/httpapi"
	"polyshop/services/sessions/internal/redisstore"
	"polyshop/services/sessions/internal/sessions"
	"polyshop/services/sessions/internal/usersclient"
	"polyshop/shared/broker"
	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/redisoutbox"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/redistest"
)

const password = "correct horse 9"

// fakeUsers stands in for the users service's POST /credentials/verify: every email in
// accounts with the password above is valid.
func fakeUsers(t testing.TB, accounts map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Email, Password string }
		if r.URL.Path != "/credentials/verify" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		id, ok := accounts[req.Email]
		if !ok || req.Password != password {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"userId": id, "role": "customer"})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type env struct {
	srv   *httptest.Server
	svc   *sessions.Service
	store *redisstore.Store
	rdb   *redis.Client
}

func setup(t testing.TB, accounts map[string]string, cfg sessions.Config) env {
	t.Helper()
	rdb, prefix := redistest.Client(t, "SESSIONS_REDIS_URL")
	store := redisstore.New(rdb, prefix)
	users := fakeUsers(t, accounts)
	svc := sessions.NewService(store, usersclient.New(users.URL, users.Client()), cfg)
	api := httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return env{srv: srv, svc: svc, store: store, rdb: rdb}
}

func (e env) do(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func login(email, pw string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	return string(b)
}

func TestLoginValidateLogout(t *testing.T) {
	user := uuid.NewString()
	e := setup(t, map[string]string{"ann@example.com": user}, sessions.Config{TTL: time.Hour, AccountMaxFailures: 5, ClientMaxFailures: 20, Window: time.Minute})
	status, _, body := e.do(t, "POST", "/sessions", login("ann@example.com", password), "X-Forwarded-For", "198.51.100.7, 10.0.0.1")
	if status != http.StatusCreated {
		t.Fatalf("login = %d %v", status, body)
	}
	token := body["token"].(string)
	if len(token) != 43 {
		t.Errorf("token %q is not 32 bytes of base64url", token)
	}
	// Only the hash of the token is stored.
	if n := e.rdb.Exists(context.Background(), e.store.OutboxStream()[:len(e.store.OutboxStream())-len("outbox")]+"s:"+token).Val(); n != 0 {
		t.Error("the raw token is a key")
	}
	status, _, v := e.do(t, "POST", "/sessions/validate", `{"token":"`+token+`"}`)
	if status != 200 {
		t.Fatalf("validate = %d %v", status, v)
	}
	want := map[string]any{"userId": user, "role": "customer", "sessionId": body["sessionId"]}
	delete(v, "expiresAt")
	if diff := cmp.Diff(v, want); diff != "" {
		t.Errorf("validate (-got +want):\n%s", diff)
	}
	status, _, list := e.do(t, "GET", "/users/"+user+"/sessions", "")
	if status != 200 || len(list["sessions"].([]any)) != 1 {
		t.Fatalf("list = %d %v", status, list)
	}
	if got := list["sessions"].([]any)[0].(map[string]any)["clientAddr"]; got != "198.51.100.7" {
		t.Errorf("clientAddr = %v, want the first X-Forwarded-For entry", got)
	}

	// The token with its last character changed (to "A", or "B" when it already ends in
	// "A": one token in 64 did, and the test then "validated" the real token).
	last := "A"
	if strings.HasSuffix(token, "A") {
		last = "B"
	}
	for _, bad := range []string{`{"token":"nope"}`, `{"token":""}`, `{"token":"` + token[:42] + last + `"}`} {
		if status, _, _ := e.do(t, "POST", "/sessions/validate", bad); status != 401 {
			t.Errorf("validate %s = %d, want 401", bad, status)
		}
	}
	if status, _, _ := e.do(t, "DELETE", "/sessions/current", ""); status != 401 {
		t.Errorf("logout without token = %d, want 401", status)
	}
	if status, _, _ := e.do(t, "DELETE", "/sessions/current", "", "Authorization", "Bearer "+token); status != 204 {
		t.Fatalf("logout = %d", status)
	}
	if status, _, _ := e.do(t, "POST", "/sessions/validate", `{"token":"`+token+`"}`); status != 401 {
		t.Errorf("validate after logout = %d, want 401", status)
	}
}

func TestBadInput(t *testing.T) {
	e := setup(t, nil, sessions.DefaultConfig)
	tests := []struct {
		body   string
		status int
	}{
		{`{"email":"a@example.com"}`, 422},
		{`{"password":"x"}`, 422},
		{`{"email":"a@example.com","password":"x","extra":1}`, 400},
		{`not json`, 400},
		{login("a@example.com", "wrong password 1"), 401},
	}
	for _, tt := range tests {
		status, hdr, body := e.do(t, "POST", "/sessions", tt.body)
		if status != tt.status || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("login %s = %d %s %v, want %d problem", tt.body, status, hdr.Get("Content-Type"), body, tt.status)
		}
	}
}

func TestThrottling(t *testing.T) {
	accounts := map[string]string{"ann@example.com": uuid.NewString(), "bob@example.com": uuid.NewString()}
	e := setup(t, accounts, sessions.Config{TTL: time.Hour, AccountMaxFailures: 3, ClientMaxFailures: 5, Window: time.Minute})
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }

	// Two failures, then a success resets the account counter.
	for range 2 {
		if s, _, _ := e.do(t, "POST", "/sessions", login("Ann@example.com", "wrong password 1"), from("192.0.2.1")...); s != 401 {
			t.Fatalf("failure = %d", s)
		}
	}
	if s, _, _ := e.do(t, "POST", "/sessions", login("ann@example.com", password), from("192.0.2.1")...); s != 201 {
		t.Fatalf("success = %d", s)
	}
	// Now three failures from different addresses block the account, even with the right
	// password, with Retry-After.
	for i := range 3 {
		if s, _, _ := e.do(t, "POST", "/sessions", login("ann@example.com", "wrong password 1"), from("192.0.2."+string(rune('2'+i)))...); s != 401 {
			t.Fatalf("failure %d = %d", i, s)
		}
	}
	s, hdr, body := e.do(t, "POST", "/sessions", login("ANN@example.com", password), from("192.0.2.9")...)
	if s != 429 || hdr.Get("Retry-After") == "" || hdr.Get("Retry-After") == "0" {
		t.Fatalf("blocked account = %d Retry-After %q %v, want 429 with Retry-After", s, hdr.Get("Retry-After"), body)
	}
	// Another account is not blocked.
	if s, _, _ := e.do(t, "POST", "/sessions", login("bob@example.com", password), from("192.0.2.9")...); s != 201 {
		t.Fatalf("other account = %d, want 201", s)
	}
	// Five failures from one address (across accounts) block that address.
	for i := range 5 {
		if s, _, _ := e.do(t, "POST", "/sessions", login("x"+string(rune('a'+i))+"@example.com", "wrong password 1"), from("203.0.113.5")...); s != 401 {
			t.Fatalf("client failure %d = %d", i, s)
		}
	}
	if s, _, _ := e.do(t, "POST", "/sessions", login("bob@example.com", password), from("203.0.113.5")...); s != 429 {
		t.Errorf("blocked client = %d, want 429", s)
	}
}

// TestParallelWrongLoginsAreCountedFirst: a burst of parallel wrong passwords for one
// account gets at most the limit checked against users; every other attempt is refused with
// 429 before any password is verified. The same holds for one client address.
func TestParallelWrongLoginsAreCountedFirst(t *testing.T) {
	for _, tt := range []struct {
		name           string
		cfg            sessions.Config
		email, from    func(i int) string
		limit, workers int
	}{
		{name: "account", cfg: sessions.Config{TTL: time.Hour, AccountMaxFailures: 5, ClientMaxFailures: 1000, Window: time.Minute},
			email: func(int) string { return "ann@example.com" }, from: func(i int) string { return fmt.Sprintf("198.51.100.%d", i) },
			limit: 5, workers: 50},
		{name: "client", cfg: sessions.Config{TTL: time.Hour, AccountMaxFailures: 1000, ClientMaxFailures: 20, Window: time.Minute},
			email: func(i int) string { return fmt.Sprintf("u%d@example.com", i) }, from: func(int) string { return "198.51.100.7" },
			limit: 20, workers: 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var verified atomic.Int64
			users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				verified.Add(1)
				time.Sleep(20 * time.Millisecond) // a slow hash: every attempt is in flight at once
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401}`))
			}))
			t.Cleanup(users.Close)
			rdb, prefix := redistest.Client(t, "SESSIONS_REDIS_URL")
			svc := sessions.NewService(redisstore.New(rdb, prefix), usersclient.New(users.URL, users.Client()), tt.cfg)
			// Every worker's login must reach the throttle: the login bulkhead is opened wide.
			srv := httptest.NewServer(httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil,
				httpapi.WithLoginInflight(tt.workers)).Handler())
			t.Cleanup(srv.Close)

			statuses := make([]int, tt.workers)
			var wg sync.WaitGroup
			for i := range tt.workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest("POST", srv.URL+"/sessions", bytes.NewBufferString(login(tt.email(i), "wrong password 1")))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-Forwarded-For", tt.from(i))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				}()
			}
			wg.Wait()
			count := map[int]int{}
			for _, s := range statuses {
				count[s]++
			}
			if diff := cmp.Diff(count, map[int]int{401: tt.limit, 429: tt.workers - tt.limit}); diff != "" {
				t.Errorf("statuses (-got +want):\n%s", diff)
			}
			if got := verified.Load(); got != int64(tt.limit) {
				t.Errorf("passwords verified = %d, want %d (the limit)", got, tt.limit)
			}
		})
	}
}

// TestLoginRacingDeletionLeavesNoSession forces the race: the account is deleted (and
// users.deleted handled, revoking every session) after users verified the password but
// before the session is written. The login must fail and leave no session.
func TestLoginRacingDeletionLeavesNoSession(t *testing.T) {
	userID := uuid.NewString()
	rdb, prefix := redistest.Client(t, "SESSIONS_REDIS_URL")
	store := redisstore.New(rdb, prefix)
	var svc *sessions.Service
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The password is right; while users answers, the account is deleted.
		del, err := events.New(context.Background(), events.TypeUserDeleted, userID, 2,
			events.UserDeleted{UserID: userID, DeletedAt: time.Now().UTC()})
		if err != nil {
			t.Error(err)
		}
		if err := svc.HandleUserDeleted(context.Background(), del); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"userId": userID, "role": "customer"})
	}))
	t.Cleanup(users.Close)
	svc = sessions.NewService(store, usersclient.New(users.URL, users.Client()), sessions.DefaultConfig)
	srv := httptest.NewServer(httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil).Handler())
	t.Cleanup(srv.Close)
	e := env{srv: srv, svc: svc, store: store, rdb: rdb}

	if status, _, body := e.do(t, "POST", "/sessions", login("gone@example.com", password)); status != http.StatusUnauthorized {
		t.Errorf("login racing deletion = %d %v, want 401", status, body)
	}
	live, err := svc.List(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 0 {
		t.Errorf("sessions of the deleted user = %d, want 0", len(live))
	}
}

// TestRevokeOnUserDeleted publishes users.deleted on the real NATS, in the tests' own
// namespace (test.users.deleted.v1 in TEST_USERS: the live USERS stream and its consumers
// never see it), and checks that the consumer revokes the user's sessions, idempotently.
func TestRevokeOnUserDeleted(t *testing.T) {
	user := uuid.NewString()
	e := setup(t, map[string]string{"ann@example.com": user}, sessions.DefaultConfig)
	var tokens []string
	for range 2 {
		_, _, body := e.do(t, "POST", "/sessions", login("ann@example.com", password))
		tokens = append(tokens, body["token"].(string))
	}
	tc := natstest.TestConn(t)
	stream := natstest.Stream(t, tc, "users")
	nc := natstest.TestConn(t) // dead letters, if any, go to DLQ_TEST
	durable := natstest.Durable(t, nc, stream, "sessions_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	handled := make(chan string, 10)
	sub, err := nc.Consume(ctx, broker.ConsumerSpec{Stream: stream, Durable: durable, DeliverNew: true,
		Subjects: natstest.Subjects(events.TypeUserDeleted)}, func(ctx context.Context, ev events.Envelope) error {
		err := e.svc.HandleUserDeleted(ctx, ev)
		if err == nil {
			handled <- ev.Subject
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })

	ev, err := events.New(ctx, events.TypeUserDeleted, user, 3, events.UserDeleted{UserID: user, DeletedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := (natstest.Publisher{C: tc}).Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case got := <-handled:
			if got != user {
				continue
			}
		case <-ctx.Done():
			t.Fatal("users.deleted not handled")
		}
		break
	}
	for _, tok := range tokens {
		if s, _, _ := e.do(t, "POST", "/sessions/validate", `{"token":"`+tok+`"}`); s != 401 {
			t.Errorf("token of deleted user validates: %d", s)
		}
	}
	// Redelivery: handling the same event again is fine and revokes nothing more.
	if err := e.svc.HandleUserDeleted(ctx, ev); err != nil {
		t.Errorf("second handling = %v", err)
	}
}

// TestEventsReachStream runs the relay into the tests' own namespace (test.sessions.* in
// TEST_SESSIONS, never the live SESSIONS) and reads sessions.started and sessions.ended of
// one session back.
func TestEventsReachStream(t *testing.T) {
	e := setup(t, map[string]string{"ann@example.com": uuid.NewString()}, sessions.DefaultConfig)
	nc := natstest.TestConn(t)
	stream := natstest.Stream(t, nc, "sessions")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now().Add(-time.Second)
	cons, err := nc.JetStream().OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: natstest.Subjects(events.TypeSessionStarted, events.TypeSessionEnded),
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		t.Fatal(err)
	}
	relayCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = outbox.NewRelay(redisoutbox.New(e.rdb, e.store.OutboxStream()), natstest.Publisher{C: nc}, nil,
			outbox.WithInterval(100*time.Millisecond)).Run(relayCtx)
	}()
	t.Cleanup(func() { stop(); <-done })

	_, _, body := e.do(t, "POST", "/sessions", login("ann@example.com", password))
	id := body["sessionId"].(string)
	e.do(t, "DELETE", "/sessions/current", "", "Authorization", "Bearer "+body["token"].(string))

	type seen struct {
		Type, Subject string
		Sequence      int64
	}
	var got []seen
	for len(got) < 2 {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		env, err := events.Parse(msg.Data())
		if err != nil || env.Subject != id {
			continue
		}
		got = append(got, seen{env.Type, env.Subject, env.Sequence})
	}
	want := []seen{{events.TypeSessionStarted, id, 1}, {events.TypeSessionEnded, id, 2}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
}
