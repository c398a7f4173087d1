package checks

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/infra/checks/internal/natsperm"
	"polyshop/shared/testenv"
)

// NATS consumer permissions (issue 12): every service user may use only its own durable
// consumers, by exact name; users that read streams with ordered consumers may use consumers
// of any name there except the other users' durables. infra/nats/nats.conf is generated from
// internal/natsperm, the one list of who owns which consumer.

func natsConfPath(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "infra", "nats", "nats.conf")
}

// TestNATSConfIsGenerated: the configuration is what natsperm renders (edit the table,
// then go run ./cmd/natsconf).
func TestNATSConfIsGenerated(t *testing.T) {
	b, err := os.ReadFile(natsConfPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(natsperm.Render(), string(b)); diff != "" {
		t.Errorf("infra/nats/nats.conf is not natsperm.Render() (run: cd infra/checks && go run ./cmd/natsconf) (-want +got):\n%s", diff)
	}
}

// TestNATSConfGivesNoBroadConsumerRights reads the configuration as written: no user may
// use every consumer ($JS.API.CONSUMER.>, $JS.ACK.>, a "*" for the stream), and every
// durable is named under exactly one service user.
func TestNATSConfGivesNoBroadConsumerRights(t *testing.T) {
	b, err := os.ReadFile(natsConfPath(t))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, broad := range []string{`"$JS.API.CONSUMER.>"`, `"$JS.ACK.>"`, `"$JS.API.>"`, `"$JS.>"`, `"$JS.API.CONSUMER.*.>"`,
		`"$JS.API.CONSUMER.DELETE.>"`, `"$JS.ACK.*.>"`, `"$JS.ACK.*.*"`} {
		if strings.Contains(conf, broad) {
			t.Errorf("nats.conf grants %s", broad)
		}
	}
	// Each user's section, by its "user:" line; a durable's CREATE rule is in its owner's
	// section only; only the test user may use consumers on any stream.
	sections := map[string]string{}
	parts := regexp.MustCompile(`(?m)^\s*(?:user|nkey): (\S+)$`).FindAllStringSubmatchIndex(conf, -1)
	for i, p := range parts {
		end := len(conf)
		if i+1 < len(parts) {
			end = parts[i+1][0]
		}
		name := conf[p[2]:p[3]]
		if name == natsperm.ToolsNKey {
			name = natsperm.Tools.Name
		}
		sections[name] = conf[p[0]:end]
	}
	for _, c := range natsperm.Durables() {
		rule := `"$JS.API.CONSUMER.CREATE.` + c.Stream + "." + c.Durable + `"`
		var in []string
		for user, sec := range sections {
			if strings.Contains(sec, rule) {
				in = append(in, user)
			}
		}
		if want := []string{natsperm.Owner(c.Durable)}; !slices.Equal(in, want) {
			t.Errorf("%s on %s is allowed to %v, want %v", c.Durable, c.Stream, in, want)
		}
	}
	anyStream := regexp.MustCompile(`"\$JS\.(API\.CONSUMER\.(CREATE|DURABLE\.CREATE|INFO|MSG\.NEXT|DELETE|PAUSE)|ACK)\.\*\.`)
	for user, sec := range sections {
		allow, _, _ := strings.Cut(sec, "deny: [")
		if user != natsperm.Test.Name && anyStream.MatchString(allow) {
			t.Errorf("%s may use consumers on any stream: %s", user, anyStream.FindString(allow))
		}
	}
	if len(sections) != len(natsperm.Services)+2 {
		t.Errorf("nats.conf has users %v, want the %d services, test and tools", slices.Sorted(mapKeys(sections)), len(natsperm.Services))
	}
	// tools is read-only: no publish but the read API and its ordered consumers.
	if allow, _, _ := strings.Cut(sections[natsperm.Tools.Name], "deny: ["); regexp.MustCompile(`"([a-z]|\$JS\.API\.STREAM\.(CREATE|UPDATE|DELETE|PURGE)|\$JS\.API\.STREAM\.MSG\.DELETE)`).MatchString(allow) {
		t.Errorf("the tools user may publish events or change streams:\n%s", allow)
	}
}

// TestNATSToolsSeedIsTheToolsUser: the seed in infra/local.env belongs to the public key in
// nats.conf.
func TestNATSToolsSeedIsTheToolsUser(t *testing.T) {
	if _, err := natsperm.ToolsOption(testenv.Getenv("TOOLS_NATS_SEED")); err != nil {
		t.Fatal(err)
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// permServer is a nats-server of the test's own (the stack's build) running the repository's
// nats.conf, with a password per user.
type permServer struct {
	url string
}

func startPermServer(t *testing.T) *permServer {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".polyshop", "bin", "nats-server")
	if _, err := os.Stat(bin); err != nil {
		testenv.Require(t, "nats", err) // ./scripts/stack up builds it
	}
	port, monitor := freePort(t), freePort(t)
	env := append(os.Environ(),
		"POLYSHOP_NATS_LISTEN=127.0.0.1:"+port, "POLYSHOP_NATS_MONITOR_LISTEN=127.0.0.1:"+monitor,
		"POLYSHOP_NATS_STORE="+t.TempDir())
	for _, u := range append(slices.Clone(natsperm.Services), natsperm.Test) {
		env = append(env, strings.ToUpper(u.Name)+"_NATS_PASSWORD=pw-"+u.Name)
	}
	srv := exec.Command(bin, "-c", natsConfPath(t))
	srv.Env = env
	out, err := os.CreateTemp(t.TempDir(), "nats-*.log")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	s := &permServer{url: "nats://127.0.0.1:" + port}
	for deadline := time.Now().Add(15 * time.Second); ; {
		nc, err := nats.Connect(s.url, nats.UserInfo("test", "pw-test"))
		if err == nil {
			nc.Close()
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("the test's nats-server is not ready: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// permConn is a connection as one user that records the subjects the server refused.
type permConn struct {
	user    string
	nc      *nats.Conn
	js      jetstream.JetStream
	refused chan string
}

var refusedSubject = regexp.MustCompile(`(?i)permissions violation for publish to "([^"]+)"`)

// connectAs connects to url as user; password "" takes the credentials in url.
func connectAs(t *testing.T, url, user, password string) *permConn {
	t.Helper()
	c := &permConn{user: user, refused: make(chan string, 10000)}
	opts := []nats.Option{nats.Name("natsperm-test-" + user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if m := refusedSubject.FindStringSubmatch(err.Error()); m != nil {
				c.refused <- m[1]
			}
		})}
	switch {
	case user == natsperm.Tools.Name:
		o, err := natsperm.ToolsOption(testenv.Getenv("TOOLS_NATS_SEED"))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, o)
	case password != "":
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect(url, opts...)
	testenv.Require(t, "nats", err)
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// expectRefused publishes on each subject (as requests, with a reply inbox) and fails the
// test for every one the server does not refuse. Refusals arrive as asynchronous errors after
// the flush; an accepted publish produces none, so only a failing test waits out the 10 s.
func (c *permConn) expectRefused(t *testing.T, subjects []string) {
	t.Helper()
	want := map[string]bool{}
	for _, s := range subjects {
		want[s] = true
		if err := c.nc.PublishRequest(s, nats.NewInbox(), []byte(`{}`)); err != nil {
			t.Fatalf("publish %s: %v", s, err)
		}
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case s := <-c.refused:
			delete(want, s)
		case <-timeout:
			for _, s := range slices.Sorted(func(yield func(string) bool) {
				for s := range want {
					if !yield(s) {
						return
					}
				}
			}) {
				t.Errorf("as %s: %s was accepted; want a permissions violation", c.user, s)
			}
			return
		}
	}
}

// foreignOps are the subjects of every operation on the consumer d of stream s.
func foreignOps(s, d string) []string {
	return []string{
		"$JS.API.CONSUMER.DELETE." + s + "." + d,
		"$JS.API.CONSUMER.INFO." + s + "." + d,
		"$JS.API.CONSUMER.CREATE." + s + "." + d,
		"$JS.API.CONSUMER.CREATE." + s + "." + d + "." + strings.ToLower(s) + ".perm_test.v1",
		"$JS.API.CONSUMER.DURABLE.CREATE." + s + "." + d,
		"$JS.API.CONSUMER.MSG.NEXT." + s + "." + d,
		"$JS.API.CONSUMER.PAUSE." + s + "." + d,
		"$JS.ACK." + s + "." + d + ".1.1.1." + strconv.FormatInt(time.Now().UnixNano(), 10) + ".0",
	}
}

// TestNATSConsumerPermissions runs the repository's nats.conf in a nats-server of the
// test's own and checks, for every user: its own durables can be created (with one filter
// subject and with several), pulled from and acknowledged; it can read the streams it reads
// with ordered consumers; and every operation on another user's durable consumer, or on a
// consumer of any name on a stream it has no business with, is refused (search deleting or
// acknowledging activity's consumer among them). Afterwards every durable still exists.
func TestNATSConsumerPermissions(t *testing.T) {
	srv := startPermServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := map[string]*permConn{}
	users := append(slices.Clone(natsperm.Services), natsperm.Test, natsperm.Tools)
	for _, u := range users {
		conns[u.Name] = connectAs(t, srv.url, u.Name, "pw-"+u.Name)
	}
	// The owner streams, created by their owners, with one message each.
	for _, s := range natsperm.OwnerStreams {
		owner := strings.ToLower(s)
		c := conns[owner]
		if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: s, Subjects: []string{owner + ".>"}}); err != nil {
			t.Fatalf("create %s as %s: %v", s, owner, err)
		}
		if _, err := c.js.Publish(ctx, owner+".perm_test.v1", []byte(`{}`)); err != nil {
			t.Fatalf("publish on %s as %s: %v", s, owner, err)
		}
	}

	for _, u := range users {
		t.Run(u.Name, func(t *testing.T) {
			c := conns[u.Name]
			for _, d := range u.Durables {
				t.Run("own/"+d.Durable, func(t *testing.T) { ownDurableWorks(t, ctx, c, d) })
			}
			for _, s := range natsperm.OwnerStreams {
				if !u.ReadsAnyConsumerOn(s) {
					continue
				}
				owner := strings.ToLower(s)
				t.Run("ordered/"+s, func(t *testing.T) {
					// One filter subject (…CREATE.<s>.<name>.<filter>) and two (…CREATE.<s>.<name>).
					orderedConsumerWorks(t, ctx, c, s, owner+".perm_test.v1")
					orderedConsumerWorks(t, ctx, c, s, owner+".perm_test.v1", owner+".perm_other.v1")
				})
			}
			var refused []string
			for _, d := range natsperm.Durables() {
				if !slices.Contains(u.Durables, d) {
					refused = append(refused, foreignOps(d.Stream, d.Durable)...)
				} else {
					// No service deletes a durable, not even its own.
					refused = append(refused, "$JS.API.CONSUMER.DELETE."+d.Stream+"."+d.Durable)
				}
			}
			for _, s := range append(slices.Clone(natsperm.OwnerStreams), natsperm.TestStreams()...) {
				if !u.ReadsAnyConsumerOn(s) {
					refused = append(refused, foreignOps(s, "intruder")...)
				}
			}
			if u.Name == natsperm.Tools.Name {
				// Read-only: no event, no stream change.
				refused = append(refused, "users.registered.v1", "test.users.x.v1", "dlq.users.x", "$JS.API.STREAM.CREATE.USERS",
					"$JS.API.STREAM.DELETE.ORDERS", "$JS.API.STREAM.PURGE.CATALOG", "$JS.API.STREAM.MSG.DELETE.DLQ_USERS")
			}
			c.expectRefused(t, refused)
		})
	}

	t.Run("test/own streams", func(t *testing.T) { testUserOwnsTestConsumers(t, ctx, conns["test"]) })

	// Nothing above removed or took over a durable: each is still there, as created.
	for _, d := range natsperm.Durables() {
		owner := conns[natsperm.Owner(d.Durable)]
		info, err := owner.js.Consumer(ctx, d.Stream, d.Durable)
		if err != nil {
			t.Errorf("%s on %s after the refused operations: %v", d.Durable, d.Stream, err)
			continue
		}
		if got := info.CachedInfo().Config.FilterSubjects; len(got) != 2 {
			t.Errorf("%s on %s: filter subjects %v, want the two its owner set", d.Durable, d.Stream, got)
		}
	}
}

// ownDurableWorks: c creates its durable d with one filter subject (…CREATE.<s>.<d>.<filter>),
// pulls the stream's message and acknowledges it (confirmed by the server), reads its info,
// and updates it to two filter subjects (…CREATE.<s>.<d>).
func ownDurableWorks(t *testing.T, ctx context.Context, c *permConn, d natsperm.Consumer) {
	owner := strings.ToLower(d.Stream)
	cfg := jetstream.ConsumerConfig{Durable: d.Durable, AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: owner + ".perm_test.v1"}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, d.Stream, cfg)
	if err != nil {
		t.Fatalf("create own durable: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		if err := msg.DoubleAck(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if n != 1 || batch.Error() != nil {
		t.Fatalf("pulled %d messages (%v), want 1", n, batch.Error())
	}
	if _, err := cons.Info(ctx); err != nil {
		t.Errorf("info: %v", err)
	}
	cfg.FilterSubject, cfg.FilterSubjects = "", []string{owner + ".perm_test.v1", owner + ".perm_other.v1"}
	if _, err := c.js.CreateOrUpdateConsumer(ctx, d.Stream, cfg); err != nil {
		t.Errorf("update own durable to two filter subjects: %v", err)
	}
}

// orderedConsumerWorks: c reads stream s with an ordered consumer (generated name, the
// filters given like a rebuild tail) and gets its message.
func orderedConsumerWorks(t *testing.T, ctx context.Context, c *permConn, s string, filters ...string) {
	owner := strings.ToLower(s)
	cons, err := c.js.OrderedConsumer(ctx, s, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	if _, err := cons.Info(ctx); err != nil {
		t.Errorf("ordered consumer info: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("ordered consumer next: %v", err)
	}
	if msg.Subject() != owner+".perm_test.v1" {
		t.Errorf("ordered consumer got %s", msg.Subject())
	}
}

// testUserOwnsTestConsumers: the test user creates a consumer of its own on its test stream,
// pulls, acknowledges and deletes it, and a consumer on a stream that does not exist gets the
// server's answer (stream not found), not a permissions violation.
func testUserOwnsTestConsumers(t *testing.T, ctx context.Context, c *permConn) {
	if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "TEST_USERS", Subjects: []string{"test.users.>"}}); err != nil {
		t.Fatalf("create TEST_USERS: %v", err)
	}
	if _, err := c.js.Publish(ctx, "test.users.perm_test.v1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	d := natsperm.Consumer{Stream: "TEST_USERS", Durable: "perm_test_durable"}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, d.Stream, jetstream.ConsumerConfig{Durable: d.Durable,
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "test.users.perm_test.v1"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Errorf("ack: %v", err)
	}
	if err := c.js.DeleteConsumer(ctx, d.Stream, d.Durable); err != nil {
		t.Errorf("delete: %v", err)
	}
	_, err = c.js.CreateOrUpdateConsumer(ctx, "NOSUCH_STREAM", jetstream.ConsumerConfig{Durable: "perm_test_missing",
		FilterSubject: "test.nosuch.x.v1"})
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("consumer on a missing stream: %v, want stream not found", err)
	}
}

// uniqueShaped matches names made by testenv.UniqueName ("<prefix>_<12 characters>"): the
// durables tests create on the owner streams for the duration of a test.
var uniqueShaped = regexp.MustCompile(`_[a-z0-9]{12}$`)

// TestNATSLiveDurablesAreListed reads the running server's consumers (monitoring endpoint):
// every durable consumer on an owner stream is in natsperm's table, under its stream — so a
// consumer added to a service without its permission, or renamed, is caught here — and every
// durable of the table exists on its stream when that stream does (a stale entry would keep a
// permission nobody uses).
func TestNATSLiveDurablesAreListed(t *testing.T) {
	url := "http://127.0.0.1:" + testenv.Getenv("POLYSHOP_NATS_MONITOR_PORT") + "/jsz?consumers=true&config=true"
	known := natsperm.Durables()
	// Services attach their consumers in the background once the streams exist (right after a
	// start, a consumer may still be on its way): look again, for up to a minute, while a
	// listed durable is missing.
	var live map[natsperm.Consumer]bool
	var missing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		var streams map[string]bool
		live, streams = liveDurables(t, url)
		if len(live) == 0 {
			t.Skip("the running NATS has no durable consumers on the owner streams (no services running)")
		}
		missing = nil
		for _, c := range known {
			if streams[c.Stream] && !live[c] {
				missing = append(missing, c.Stream+"/"+c.Durable)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing {
		t.Errorf("%s is in infra/checks/internal/natsperm but not on the running server: renamed or gone?", m)
	}
	for c := range live {
		if !slices.Contains(known, c) {
			t.Errorf("durable %s on %s is not in infra/checks/internal/natsperm: its owner's NATS user may not use it", c.Durable, c.Stream)
		}
	}
}

// liveDurables returns the durable consumers on the owner streams of the server whose
// monitoring endpoint is url (but the ones tests create, uniqueShaped), and which owner
// streams exist.
func liveDurables(t *testing.T, url string) (map[natsperm.Consumer]bool, map[string]bool) {
	t.Helper()
	resp, err := http.Get(url)
	testenv.Require(t, "nats", err)
	defer resp.Body.Close()
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name      string `json:"name"`
				Consumers []struct {
					Name   string `json:"name"`
					Config struct {
						Durable string `json:"durable_name"`
					} `json:"config"`
				} `json:"consumer_detail"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		t.Fatal(err)
	}
	live, streams := map[natsperm.Consumer]bool{}, map[string]bool{}
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			if !slices.Contains(natsperm.OwnerStreams, s.Name) {
				continue
			}
			streams[s.Name] = true
			for _, c := range s.Consumers {
				if c.Config.Durable != "" && !uniqueShaped.MatchString(c.Name) {
					live[natsperm.Consumer{Stream: s.Name, Durable: c.Name}] = true
				}
			}
		}
	}
	return live, streams
}

// TestNATSLiveServerRefusesForeignConsumer checks the running server has the configuration
// (a reload applies it): search may not read activity's consumer on ORDERS, activity may.
// Read-only, so it is harmless even where the permission is missing.
func TestNATSLiveServerRefusesForeignConsumer(t *testing.T) {
	search := connectAs(t, testenv.Getenv("SEARCH_NATS_URL"), "search", "")
	search.expectRefused(t, []string{"$JS.API.CONSUMER.INFO.ORDERS.activity-orders"})

	activity := connectAs(t, testenv.Getenv("ACTIVITY_NATS_URL"), "activity", "")
	msg, err := activity.nc.Request("$JS.API.CONSUMER.INFO.ORDERS.activity-orders", nil, 10*time.Second)
	if err != nil {
		t.Fatalf("activity's own consumer info: %v", err)
	}
	var info struct {
		Name  string `json:"name"`
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Error != nil && info.Error.Code != http.StatusNotFound {
		t.Errorf("activity's own consumer info: %s", msg.Data)
	}
}
