package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"polyshop/shared/testenv"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/users/internal/httpapi"
	"polyshop/services/users/internal/pgstore"
	"polyshop/services/users/internal/users"
	"polyshop/shared/events"
	"polyshop/shared/httpx"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/testenv/natstest"
	"polyshop/shared/testenv/pgtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

type env struct {
	srv  *httptest.Server
	pool *pgxpool.Pool
	svc  *users.Service
}

func setup(t testing.TB) env {
	t.Helper()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	h, err := users.NewHasher(users.HashParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := users.NewService(pgstore.New(pool), h)
	api := httpapi.New(svc, log, nil, nil)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return env{srv: srv, pool: pool, svc: svc}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e env) do(t testing.TB, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (e env) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// golden compares body, with ids and times replaced by placeholders, to testdata/name.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	testenv.GoldenJSON(t, filepath.Join("..", "..", "testdata", name), body, *update)
}

const signUpBody = `{"email":"Ann@Example.com","password":"correct horse 9","name":"Ann Example"}`

func TestSignUpAndGet(t *testing.T) {
	e := setup(t)
	r := e.do(t, "POST", "/users", signUpBody)
	if r.status != http.StatusCreated {
		t.Fatalf("sign up = %d %s", r.status, r.body)
	}
	if bytes.Contains(bytes.ToLower(r.body), []byte("password")) || bytes.Contains(r.body, []byte("argon2")) {
		t.Errorf("response leaks password material: %s", r.body)
	}
	golden(t, "signup.json", r.body)
	u := decode[map[string]any](t, r.body)
	id := u["id"].(string)
	if loc := r.header.Get("Location"); loc != "/users/"+id {
		t.Errorf("Location = %q", loc)
	}

	g := e.do(t, "GET", "/users/"+id, "")
	if g.status != http.StatusOK {
		t.Fatalf("get = %d %s", g.status, g.body)
	}
	if diff := cmp.Diff(decode[map[string]any](t, g.body), u); diff != "" {
		t.Errorf("get vs sign-up (-get +signup):\n%s", diff)
	}
	for _, path := range []string{"/users/not-a-uuid", "/users/0190f0f0-0000-7000-8000-000000000000"} {
		if r := e.do(t, "GET", path, ""); r.status != http.StatusNotFound || r.header.Get("Content-Type") != httpx.ContentTypeProblem {
			t.Errorf("GET %s = %d %s, want 404 problem", path, r.status, r.header.Get("Content-Type"))
		}
	}
}

func TestSignUpRejectedWritesNothing(t *testing.T) {
	e := setup(t)
	if r := e.do(t, "POST", "/users", signUpBody); r.status != http.StatusCreated {
		t.Fatalf("first sign up = %d %s", r.status, r.body)
	}
	tests := []struct {
		name   string
		body   string
		status int
		fields []httpx.FieldError
	}{
		{"malformed email", `{"email":"ann@","password":"correct horse 9","name":"Ann"}`, 422,
			[]httpx.FieldError{{Field: "email", Reason: "must be a plain email address such as name@example.com"}}},
		{"short password", `{"email":"bob@example.com","password":"short","name":"Bob"}`, 422,
			[]httpx.FieldError{{Field: "password", Reason: "must be at least 12 characters"}}},
		{"one character class", `{"email":"bob@example.com","password":"aaaaaaaaaaaaaaaa","name":"Bob"}`, 422,
			[]httpx.FieldError{{Field: "password", Reason: "must mix at least two kinds of characters (lowercase, uppercase, digits, symbols or spaces)"}}},
		{"missing fields", `{}`, 422, []httpx.FieldError{{Field: "email", Reason: "is required"},
			{Field: "name", Reason: "is required"}, {Field: "password", Reason: "is required"}}},
		{"unknown field", `{"email":"bob@example.com","password":"correct horse 9","name":"Bob","role":"admin"}`, 400,
			[]httpx.FieldError{{Field: "role", Reason: "unknown field"}}},
		{"wrong type", `{"email":"bob@example.com","password":12,"name":"Bob"}`, 400,
			[]httpx.FieldError{{Field: "password", Reason: "must be a string, not number"}}},
		{"malformed json", `{"email":`, 400, nil},
		{"duplicate email", `{"email":"ANN@example.com","password":"another pass 1","name":"Ann 2"}`, 409,
			[]httpx.FieldError{{Field: "email", Reason: "is already registered"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "POST", "/users", tt.body)
			if r.status != tt.status || r.header.Get("Content-Type") != httpx.ContentTypeProblem {
				t.Fatalf("status = %d (%s), want %d problem: %s", r.status, r.header.Get("Content-Type"), tt.status, r.body)
			}
			p := decode[httpx.Problem](t, r.body)
			if diff := cmp.Diff(p.Errors, tt.fields); diff != "" {
				t.Errorf("errors (-got +want):\n%s", diff)
			}
			if p.Detail == "" {
				t.Error("problem has no detail")
			}
		})
	}
	if n := e.count(t, "users"); n != 1 {
		t.Errorf("users has %d rows after rejected sign-ups, want 1", n)
	}
	if n := e.count(t, "outbox"); n != 1 {
		t.Errorf("outbox has %d rows after rejected sign-ups, want 1", n)
	}
}

func TestVerifyCredentials(t *testing.T) {
	e := setup(t)
	r := e.do(t, "POST", "/users", signUpBody)
	id := decode[map[string]any](t, r.body)["id"].(string)
	tests := []struct {
		name, body string
		status     int
	}{
		{"right", `{"email":"ann@example.com","password":"correct horse 9"}`, 200},
		{"email case", `{"email":"ANN@EXAMPLE.COM","password":"correct horse 9"}`, 200},
		{"wrong password", `{"email":"ann@example.com","password":"correct horse 8"}`, 401},
		{"unknown email", `{"email":"nobody@example.com","password":"correct horse 9"}`, 401},
		{"malformed email", `{"email":"nobody","password":"correct horse 9"}`, 401},
		{"empty", `{"email":"","password":""}`, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "POST", "/credentials/verify", tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.status == 200 {
				if diff := cmp.Diff(decode[map[string]string](t, r.body), map[string]string{"userId": id, "role": "customer"}); diff != "" {
					t.Errorf("body (-got +want):\n%s", diff)
				}
			} else if p := decode[httpx.Problem](t, r.body); p.Detail != "Invalid email or password." {
				t.Errorf("detail = %q: must not say which part was wrong", p.Detail)
			}
		})
	}
}

func TestAddressAndDelete(t *testing.T) {
	e := setup(t)
	r := e.do(t, "POST", "/users", signUpBody)
	id := decode[map[string]any](t, r.body)["id"].(string)

	bad := e.do(t, "PUT", "/users/"+id+"/address", `{"street":"1 Main St","city":"","postalCode":"10115","country":"Germany"}`)
	if bad.status != 422 {
		t.Fatalf("bad address = %d %s", bad.status, bad.body)
	}
	if diff := cmp.Diff(decode[httpx.Problem](t, bad.body).Errors, []httpx.FieldError{
		{Field: "city", Reason: "is required"},
		{Field: "country", Reason: "must be an ISO 3166-1 alpha-2 code such as DE or FR"}}); diff != "" {
		t.Errorf("errors (-got +want):\n%s", diff)
	}
	ok := e.do(t, "PUT", "/users/"+id+"/address", `{"street":"1 Main St","city":"Berlin","postalCode":"10115","country":"de"}`)
	if ok.status != 200 {
		t.Fatalf("address = %d %s", ok.status, ok.body)
	}
	golden(t, "address.json", ok.body)
	// Same address again: no change, no event.
	if r := e.do(t, "PUT", "/users/"+id+"/address", `{"street":"1 Main St","city":"Berlin","postalCode":"10115","country":"DE"}`); r.status != 200 {
		t.Fatalf("same address = %d", r.status)
	}
	if n := e.count(t, "outbox"); n != 2 {
		t.Errorf("outbox rows = %d, want 2 (registered, address_changed)", n)
	}

	if r := e.do(t, "DELETE", "/users/"+id, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	if r := e.do(t, "DELETE", "/users/"+id, ""); r.status != http.StatusNoContent {
		t.Errorf("second delete = %d, want 204 (idempotent)", r.status)
	}
	if r := e.do(t, "GET", "/users/"+id, ""); r.status != http.StatusNotFound {
		t.Errorf("get deleted = %d, want 404", r.status)
	}
	if r := e.do(t, "PUT", "/users/"+id+"/address", `{"street":"1 Main St","city":"Berlin","postalCode":"10115","country":"DE"}`); r.status != http.StatusNotFound {
		t.Errorf("address of deleted = %d, want 404", r.status)
	}
	if r := e.do(t, "POST", "/credentials/verify", `{"email":"ann@example.com","password":"correct horse 9"}`); r.status != 401 {
		t.Errorf("login of deleted = %d, want 401", r.status)
	}
	var email, name, hash *string
	if err := e.pool.QueryRow(context.Background(), `SELECT email, name, password_hash FROM users WHERE id = $1`, id).Scan(&email, &name, &hash); err != nil {
		t.Fatal(err)
	}
	if email != nil || *name != "" || *hash != "" {
		t.Errorf("deleted row keeps personal data: email=%v name=%q hash=%q", email, *name, *hash)
	}
	if r := e.do(t, "POST", "/users", signUpBody); r.status != http.StatusCreated {
		t.Errorf("re-sign-up = %d %s, want 201", r.status, r.body)
	}
	var types []string
	rows, _ := e.pool.Query(context.Background(), `SELECT type FROM outbox WHERE aggregate = $1 ORDER BY seq`, id)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		types = append(types, s)
	}
	rows.Close()
	if diff := cmp.Diff(types, []string{events.TypeUserRegistered, events.TypeUserAddressChanged, events.TypeUserDeleted}); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if r := e.do(t, "DELETE", "/users/0190f0f0-0000-7000-8000-000000000000", ""); r.status != 404 {
		t.Errorf("delete unknown = %d, want 404", r.status)
	}
}

// TestEnsureAdmin: the admin account is ensured by users itself at start (main.go calls
// EnsureAdmin with its own ADMIN_EMAIL / ADMIN_PASSWORD); no HTTP route sets a role or a
// password without proof of the old credential.
func TestEnsureAdmin(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for _, method := range []string{"PUT", "POST", "PATCH"} {
		if r := e.do(t, method, "/admin", `{"email":"admin@example.com","password":"admin pass 2026"}`); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s /admin = %d %s, want no such route", method, r.status, r.body)
		}
	}
	if n := e.count(t, "users"); n != 0 {
		t.Fatalf("users after the refused requests = %d, want 0", n)
	}

	first, created, err := e.svc.EnsureAdmin(ctx, "admin@example.com", "admin pass 2026")
	if err != nil || !created || first.Role != users.RoleAdmin {
		t.Fatalf("first ensure = %+v, created %v, err %v; want a new admin", first, created, err)
	}
	again, created, err := e.svc.EnsureAdmin(ctx, "admin@example.com", "admin pass 2026")
	if err != nil || created || again.ID != first.ID {
		t.Errorf("second ensure = %s, created %v, err %v; want the same account, not created", again.ID, created, err)
	}
	// A new password in the settings replaces the old one at the next start.
	if _, _, err := e.svc.EnsureAdmin(ctx, "admin@example.com", "new admin pass 2027"); err != nil {
		t.Fatalf("ensure with new password: %v", err)
	}
	v := e.do(t, "POST", "/credentials/verify", `{"email":"admin@example.com","password":"new admin pass 2027"}`)
	if v.status != 200 || decode[map[string]string](t, v.body)["role"] != "admin" {
		t.Errorf("verify admin = %d %s", v.status, v.body)
	}
	if n := e.count(t, "users"); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}

	// After the default parameters change, the next start re-hashes the admin's password
	// with them (and the password still verifies).
	h2, err := users.NewHasher(users.HashParams{Time: 2, MemoryKiB: 128, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := users.NewService(pgstore.New(e.pool), h2).EnsureAdmin(ctx, "admin@example.com", "new admin pass 2027"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := e.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE email = 'admin@example.com'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stored, "$m=128,t=2,p=1$") {
		t.Errorf("admin hash after a parameter change = %q, want m=128,t=2,p=1", stored)
	}
	if ok, err := h2.Verify("new admin pass 2027", stored); !ok || err != nil {
		t.Errorf("re-hashed password does not verify: %v %v", ok, err)
	}
}

// TestEventsReachStream runs the outbox relay against the real NATS, publishing into the
// tests' own namespace (test.users.* in TEST_USERS, never the live USERS), and reads the
// events of one user back.
func TestEventsReachStream(t *testing.T) {
	e := setup(t)
	nc := natstest.TestConn(t)
	stream := natstest.Stream(t, nc, "users")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// An ordered consumer is created lazily, at the first Next, so it starts at a time
	// taken before the requests rather than at "new" messages.
	start := time.Now().Add(-time.Second)
	cons, err := nc.JetStream().OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: natstest.Subjects(events.TypeUserRegistered, events.TypeUserAddressChanged, events.TypeUserDeleted),
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		t.Fatal(err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	done := make(chan struct{})
	obox := pgoutbox.New(e.pool)
	go func() {
		defer close(done)
		_ = outbox.NewRelay(obox, natstest.Publisher{C: nc}, slog.New(slog.NewTextHandler(os.Stderr, nil)), outbox.WithInterval(100*time.Millisecond)).Run(relayCtx)
	}()
	t.Cleanup(func() { stopRelay(); <-done; obox.Close() })

	r := e.do(t, "POST", "/users", signUpBody)
	id := decode[map[string]any](t, r.body)["id"].(string)
	e.do(t, "PUT", "/users/"+id+"/address", `{"street":"1 Main St","city":"Berlin","postalCode":"10115","country":"DE"}`)
	e.do(t, "DELETE", "/users/"+id, "")

	type seen struct {
		Type, Subject, NATSSubject string
		Sequence                   int64
	}
	var got []seen
	for len(got) < 3 {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			rows, _ := e.pool.Query(context.Background(), `SELECT type, published_at IS NOT NULL FROM outbox WHERE aggregate = $1 ORDER BY seq`, id)
			for rows.Next() {
				var typ string
				var pub bool
				_ = rows.Scan(&typ, &pub)
				t.Logf("outbox: %s published=%v", typ, pub)
			}
			rows.Close()
			t.Fatalf("after %d events %v: %v", len(got), got, err)
		}
		env, err := events.Parse(msg.Data())
		if err != nil || env.Subject != id {
			continue // another test's user
		}
		if msg.Headers().Get(jetstream.MsgIDHeader) != env.ID {
			t.Errorf("Nats-Msg-Id = %q, want event id %q", msg.Headers().Get(jetstream.MsgIDHeader), env.ID)
		}
		if env.Source != "/polyshop/users" {
			t.Errorf("source = %q", env.Source)
		}
		// The subject is the event's own, inside the tests' namespace.
		got = append(got, seen{env.Type, env.Subject, strings.TrimPrefix(msg.Subject(), natstest.Namespace), env.Sequence})
		if env.Type == events.TypeUserRegistered {
			var p events.UserRegistered
			if err := env.Decode(&p); err != nil || p.Email != "ann@example.com" || p.Role != "customer" {
				t.Errorf("registered data = %+v, %v", p, err)
			}
		}
	}
	want := []seen{
		{events.TypeUserRegistered, id, "users.registered.v1", 1},
		{events.TypeUserAddressChanged, id, "users.address_changed.v1", 2},
		{events.TypeUserDeleted, id, "users.deleted.v1", 3},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events on TEST_USERS (-got +want):\n%s", diff)
	}
}

func setupWith(t testing.TB, p users.HashParams, l users.Limits) env {
	t.Helper()
	pool, _ := pgtest.Schema(t, "USERS_DATABASE_URL")
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	h, err := users.NewHasher(p)
	if err != nil {
		t.Fatal(err)
	}
	svc := users.NewService(pgstore.New(pool), h, l)
	srv := httptest.NewServer(httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil).Handler())
	t.Cleanup(srv.Close)
	return env{srv: srv, pool: pool, svc: svc}
}

// signUpFrom posts a sign-up as the gateway would for a person at addr.
func (e env) signUpFrom(t testing.TB, email, addr string) (int, http.Header) {
	t.Helper()
	body := fmt.Sprintf(`{"email":%q,"password":"a fine pass phrase 7","name":"Burst"}`, email)
	req, _ := http.NewRequest("POST", e.srv.URL+"/users", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestSignUpThrottling(t *testing.T) {
	e := setupWith(t, users.HashParams{Time: 1, MemoryKiB: 64, Threads: 1},
		users.Limits{SignUpsPerEmail: 3, SignUpsPerClient: 4, SignUpWindow: time.Hour})
	// One email from many addresses: 3 attempts (1 created, 2 conflicts), then 429.
	for i, want := range []int{201, 409, 409, 429, 429} {
		status, hdr := e.signUpFrom(t, "burst@example.com", fmt.Sprintf("198.51.100.%d", i+1))
		if status != want {
			t.Errorf("attempt %d for one email = %d, want %d", i+1, status, want)
		}
		if status == 429 && hdr.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	// One address, many emails: 4 sign-ups, then 429, while another address still may.
	for i, want := range []int{201, 201, 201, 201, 429} {
		if status, _ := e.signUpFrom(t, fmt.Sprintf("c%d@example.com", i), "203.0.113.9"); status != want {
			t.Errorf("sign-up %d from one address = %d, want %d", i+1, status, want)
		}
	}
	if status, _ := e.signUpFrom(t, "other@example.com", "203.0.113.10"); status != 201 {
		t.Errorf("sign-up from another address = %d, want 201", status)
	}
	if n := e.count(t, "users"); n != 6 {
		t.Errorf("accounts = %d, want 6 (refused attempts create none)", n)
	}
}

// TestSignUpBurstIsBoundedInMemory: 200 parallel sign-ups with 16 MiB argon2id hashes end
// as 201 or 503 + Retry-After (never a 500), every 201 is an account, and the process's
// memory grows by a few hashes, not by 200 of them (3.2 GiB). The bound itself is proven
// by TestHashingSlotsBoundConcurrency (package users): here the per-request database work
// in front of the hash also spreads the burst out.
func TestSignUpBurstIsBoundedInMemory(t *testing.T) {
	e := setupWith(t, users.HashParams{Time: 1, MemoryKiB: 16 * 1024, Threads: 1},
		users.Limits{HashConcurrency: 2, HashWait: 20 * time.Millisecond, SignUpsPerClient: 1000})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const n = 200
	statuses := make([]int, n)
	headers := make([]http.Header, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], headers[i] = e.signUpFrom(t, fmt.Sprintf("b%03d@example.com", i), fmt.Sprintf("198.51.100.%d", i%250+1))
		}()
	}
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if s == 503 && headers[i].Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
	if count[201]+count[503] != n || count[201] == 0 {
		t.Errorf("statuses = %v, want only 201 and 503, some 201", count)
	}
	if got := e.count(t, "users"); got != count[201] {
		t.Errorf("accounts = %d, want %d (one per 201)", got, count[201])
	}
	const bound = 256 << 20
	if grew := after.Sys - before.Sys; grew > bound {
		t.Errorf("memory obtained from the OS grew by %d MiB during the burst, want at most %d MiB", grew>>20, bound>>20)
	}
}
