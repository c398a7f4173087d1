// Package natsperm is the one source of infra/nats/nats.conf: every NATS user of the
// platform, the durable JetStream consumers each service owns (by exact name), and the
// streams on which a user runs consumers with generated names (ordered consumers: rebuild
// tails, the gateway's live event view, the test run's stream check). Render writes the
// configuration; cmd/natsconf writes it to infra/nats/nats.conf, and a test in
// infra/checks fails when the file and Render differ, when a durable consumer on the
// running server is not listed here, or when a user can touch another's consumer.
//
// Permission semantics (nats-server): subjects match whole tokens, "*" one token, ">" the
// rest; a publish is allowed when it matches an allow entry and no deny entry. JetStream
// consumer operations are requests on
//
//	$JS.API.CONSUMER.CREATE.<stream>.<consumer>[.<filter subject>]   (create or update)
//	$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<consumer>               (older clients)
//	$JS.API.CONSUMER.INFO.<stream>.<consumer>
//	$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>                     (pull)
//	$JS.API.CONSUMER.DELETE.<stream>.<consumer>
//
// and an acknowledgement is a publish on the message's reply subject
// $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
// (nats-server's "v1" ack format, its default up to 2.15 at least; the "v2" format,
// behind the js_ack_fc_v2 feature flag, adds two tokens after ACK and would need new rules).
package natsperm

import (
	"fmt"
	"slices"
	"strings"
)

// Consumer is a durable consumer: the stream it reads and its name.
type Consumer struct {
	Stream, Durable string
}

// User is one NATS user of the platform.
type User struct {
	// Name is the user name; a service's user is the service's name.
	Name string
	// Durables are the durable consumers the user owns. It may create (or update), read
	// the info of, pull from and acknowledge these, by exact name, and no other durable.
	Durables []Consumer
	// Generated are the streams on which the user runs consumers whose names the client
	// library generates (ordered consumers), so their names cannot be listed: on these
	// streams it may create, read, pull from, acknowledge and delete a consumer of any
	// name except the platform's durables of other users, which are denied by name.
	// AnyStream ("*") stands for every stream.
	Generated []string
}

// AnyStream in User.Generated stands for every stream.
const AnyStream = "*"

// ReadsAnyConsumerOn reports whether u may use consumers of any name (but the other users'
// durables) on stream s.
func (u User) ReadsAnyConsumerOn(s string) bool {
	return slices.Contains(u.Generated, s) || slices.Contains(u.Generated, AnyStream)
}

// Owner streams: one per service that publishes events, "<OWNER>" capturing "<owner>.>".
var OwnerStreams = []string{"USERS", "SESSIONS", "CATALOG", "INVENTORY", "ORDERS", "PAYMENTS"}

// Services are the services' users, in the order of the configuration. The durable names
// are the services' defaults (each service's README; search's can be changed with
// SEARCH_CONSUMER and SEARCH_INVENTORY_CONSUMER, which then must be changed here too).
var Services = []User{
	{Name: "users"},
	{Name: "sessions", Durables: []Consumer{{"USERS", "sessions"}}},
	{Name: "catalog"},
	{Name: "inventory", Durables: []Consumer{
		{"CATALOG", "inventory-catalog"}, {"ORDERS", "inventory-commands"}, {"ORDERS", "inventory-compensations"}}},
	// orders' POST /admin/rebuild-copies replays USERS and CATALOG with ordered consumers.
	{Name: "orders", Durables: []Consumer{
		{"USERS", "orders-users"}, {"CATALOG", "orders-catalog"}, {"INVENTORY", "orders-inventory"}, {"PAYMENTS", "orders-payments"}},
		Generated: []string{"USERS", "CATALOG"}},
	{Name: "payments", Durables: []Consumer{{"ORDERS", "payments-charge"}, {"ORDERS", "payments-refund"}}},
	{Name: "activity", Durables: []Consumer{
		{"USERS", "activity-users"}, {"SESSIONS", "activity-sessions"}, {"CATALOG", "activity-catalog"},
		{"INVENTORY", "activity-inventory"}, {"ORDERS", "activity-orders"}, {"PAYMENTS", "activity-payments"}}},
	// search's rebuild replays CATALOG and INVENTORY with ordered consumers (its main test
	// also runs the service with durables of its own on them).
	{Name: "search", Durables: []Consumer{{"CATALOG", "search"}, {"INVENTORY", "search-inventory"}},
		Generated: []string{"CATALOG", "INVENTORY"}},
	// The gateway's live event view (/api/events) reads every owner stream with one ordered
	// consumer each; its console lists every stream's consumers.
	{Name: "gateway", Generated: OwnerStreams},
}

// TestStreams are the test user's streams: TEST_<OWNER> for every service.
func TestStreams() []string {
	var out []string
	for _, u := range Services {
		out = append(out, "TEST_"+strings.ToUpper(u.Name))
	}
	return out
}

// Test is the test suites' user. Tests create consumers of their own (unique names) on
// their streams (TEST_<OWNER>, DLQ_TEST), read the owner streams (the test run's stream
// check, infra/checks/cmd/streamcheck; search's main test runs the service with durables of
// its own), and attach to streams that do not exist (broker.ConsumeWhenReady's tests): any
// consumer on any stream, except the services' durables.
var Test = User{Name: "test", Generated: []string{AnyStream}}

// Tools is the operator tools' user (infra/checks/cmd/streamcheck, which scripts/test runs
// before and after the tests): read-only. It reads stream and consumer info and the owner
// streams with ordered consumers, and publishes nothing else: no event, no stream change, no
// other user's consumer. It logs in with an NKey (ToolsNKey; the seed is TOOLS_NATS_SEED in
// infra/local.env, see ToolsOption), so nats.conf holds no secret of it and a running server
// takes it up with a configuration reload (a new password variable would need a restart:
// the server reads its environment once).
var Tools = User{Name: "tools", Generated: OwnerStreams}

// ToolsNKey is the public key of the tools user.
const ToolsNKey = "UCUYOUNMTVODCWPXV3OT5MKGN4D77C7LQRPUUSOWMS3GLGPWJXGXMST5"

// Durables returns every durable consumer of the platform's services.
func Durables() []Consumer {
	var out []Consumer
	for _, u := range Services {
		out = append(out, u.Durables...)
	}
	return out
}

// Owner returns the user that owns the durable name, or "".
func Owner(durable string) string {
	for _, u := range Services {
		for _, c := range u.Durables {
			if c.Durable == durable {
				return u.Name
			}
		}
	}
	return ""
}

// ConsumerAllow returns the publish subjects u is allowed for its consumers.
func (u User) ConsumerAllow() []string {
	var out []string
	for _, c := range u.Durables {
		s, d := c.Stream, c.Durable
		out = append(out,
			"$JS.API.CONSUMER.CREATE."+s+"."+d, "$JS.API.CONSUMER.CREATE."+s+"."+d+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+s+"."+d, "$JS.API.CONSUMER.INFO."+s+"."+d,
			"$JS.API.CONSUMER.MSG.NEXT."+s+"."+d, "$JS.ACK."+s+"."+d+".>")
	}
	for _, s := range u.Generated {
		out = append(out, AnyConsumer(s)...)
	}
	return out
}

// AnyConsumer returns the subjects that allow every consumer operation, for consumers of
// any name, on stream s.
func AnyConsumer(s string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + s + ".*", "$JS.API.CONSUMER.CREATE." + s + ".*.>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + s + ".*", "$JS.API.CONSUMER.INFO." + s + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".*", "$JS.API.CONSUMER.DELETE." + s + ".*", "$JS.ACK." + s + ".*.>",
	}
}

// ConsumerDeny returns the publish subjects denied to u when u may use consumers of any
// name somewhere (Generated): every operation on the durable consumers of other users, on
// any stream, and deleting its own (no service deletes a durable); nil otherwise (its allow
// list names its own durables only, and no delete).
func (u User) ConsumerDeny() [][]string {
	if len(u.Generated) == 0 {
		return nil
	}
	var out [][]string
	for _, c := range Durables() {
		if slices.Contains(u.Durables, c) {
			out = append(out, []string{"$JS.API.CONSUMER.DELETE." + c.Stream + "." + c.Durable})
			continue
		}
		out = append(out, DenyDurable(c.Durable))
	}
	return out
}

// DenyDurable returns the subjects that cover every operation on the consumer named d on
// any stream: create/delete/info/pause (…CONSUMER.<op>.<stream>.<d>), create with a filter
// (….<d>.>), pull and the older durable create (…CONSUMER.<op>.<op>.<stream>.<d>), ack.
func DenyDurable(d string) []string {
	return []string{
		"$JS.API.CONSUMER.*.*." + d, "$JS.API.CONSUMER.*.*." + d + ".>",
		"$JS.API.CONSUMER.*.*.*." + d, "$JS.ACK.*." + d + ".>",
	}
}

// q quotes subjects for the configuration, comma-separated.
func q(subjects ...string) string {
	out := make([]string, len(subjects))
	for i, s := range subjects {
		out[i] = `"` + s + `"`
	}
	return strings.Join(out, ", ")
}

// streamRules are the JetStream API calls every user needs that are not about consumers.
const readRules = `"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.*", "_INBOX.>"`

// Render returns infra/nats/nats.conf.
func Render() string {
	var b strings.Builder
	b.WriteString(header)
	for _, u := range Services {
		up := strings.ToUpper(u.Name)
		w := func(lines ...string) { writeLines(&b, lines...) }
		userStart(&b, u.Name)
		w(q(u.Name+".>", "dlq."+u.Name+".>"),
			readRules,
			q("$JS.API.STREAM.CREATE."+up, "$JS.API.STREAM.UPDATE."+up),
			q("$JS.API.STREAM.CREATE.DLQ_"+up, "$JS.API.STREAM.UPDATE.DLQ_"+up, "$JS.API.STREAM.PURGE.DLQ_"+up, "$JS.API.STREAM.MSG.DELETE.DLQ_"+up))
		consumerRules(&b, u)
		if u.Name == "gateway" {
			w(q("$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.NAMES.*"))
		}
		userEnd(&b, u)
	}

	userStart(&b, Test.Name)
	writeLines(&b, q("test.>", "dlq.test.>"), readRules)
	for _, s := range append(TestStreams(), "DLQ_TEST") {
		writeLines(&b, q("$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s, "$JS.API.STREAM.PURGE."+s, "$JS.API.STREAM.MSG.DELETE."+s))
	}
	consumerRules(&b, Test)
	writeLines(&b, q("$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.NAMES.*"))
	userEnd(&b, Test)

	fmt.Fprintf(&b, "    # %s: the operator tools, read-only (an NKey user: its seed is TOOLS_NATS_SEED)\n", Tools.Name)
	fmt.Fprintf(&b, "    {\n      nkey: %s\n      permissions: {\n        publish: {\n          allow: [\n", ToolsNKey)
	writeLines(&b, `"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.*", "_INBOX.>"`,
		q("$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.NAMES.*"))
	consumerRules(&b, Tools)
	userEnd(&b, Tools)
	b.WriteString("  ]\n}\n")
	return b.String()
}

func userStart(b *strings.Builder, name string) {
	fmt.Fprintf(b, "    {\n      user: %s\n      password: $%s_NATS_PASSWORD\n      permissions: {\n        publish: {\n          allow: [\n",
		name, strings.ToUpper(name))
}

func consumerRules(b *strings.Builder, u User) {
	if len(u.Durables) > 0 {
		b.WriteString("            # its durable consumers, by exact name\n")
		for _, c := range u.Durables {
			writeLines(b, q(User{Durables: []Consumer{c}}.ConsumerAllow()...))
		}
	}
	if len(u.Generated) > 0 {
		b.WriteString("            # consumers of any name (ordered consumers have generated ones) on these streams (* = any)\n")
		for _, s := range u.Generated {
			writeLines(b, q(AnyConsumer(s)...))
		}
	}
}

func userEnd(b *strings.Builder, u User) {
	b.WriteString("          ]\n")
	if deny := u.ConsumerDeny(); len(deny) > 0 {
		own := ""
		if len(u.Durables) > 0 {
			own = ", and deleting its own"
		}
		b.WriteString("          # the other users' durable consumers, on any stream" + own + "\n          deny: [\n")
		for _, d := range deny {
			writeLines(b, q(d...))
		}
		b.WriteString("          ]\n")
	}
	b.WriteString("        }\n        subscribe: { allow: [\">\"] }\n      }\n    }\n")
}

// writeLines writes each line indented, with a comma after every line but the last of
// the list (a trailing comma is fine in NATS configuration, so every line gets one).
func writeLines(b *strings.Builder, lines ...string) {
	for _, l := range lines {
		b.WriteString("            " + l + ",\n")
	}
}

const header = `# NATS with JetStream for Polyshop — used natively (scripts/lib/engine-nats.sh) and in compose.
#
# GENERATED by infra/checks/cmd/natsconf from infra/checks/internal/natsperm: edit the table
# there and run (cd infra/checks && go run ./cmd/natsconf). A test fails when this file
# differs from it. Natively, apply a change without a restart: ./scripts/stack provision nats
# (a configuration reload: users and permissions change, connections stay).
#
# Values starting with $ come from the environment (infra/local.env natively, the compose
# file's environment in Docker): the listen addresses, the store directory and every password.
#
# One user per service. A user may publish only on subjects that start with its own name
# (its events, and for orders/inventory/payments the saga's commands and replies:
# orders.cmd.inventory.*, orders.cmd.payments.*, inventory.reply.*, payments.reply.*), on its
# own dead-letter subjects dlq.<service>.>, and on the JetStream API calls it needs: create or
# update its own stream (USERS, ...) and dead-letter stream (DLQ_USERS, ...), read stream info
# and messages, and use its own consumers. Subscribing is open: every service may read every
# stream, because events are the public contract between services.
#
# Consumers: a service may create, read, pull from and acknowledge only its own durable
# consumers, named exactly ($JS.API.CONSUMER.CREATE.<STREAM>.<durable>[.>], …DURABLE.CREATE…,
# …INFO…, …MSG.NEXT…, $JS.ACK.<STREAM>.<durable>.>), and delete none. Users that read a
# stream with consumers of generated names (ordered consumers: search's and orders' rebuild
# tails, the gateway's live event view, the test run's stream check) may use (and delete)
# consumers of any name on those streams only, and every other user's durable consumer is
# denied to them by name, on any stream (deny wins over allow).
#
# One more user, "test", for the test suites only: it publishes in its own namespace
# ("test.<owner>.>" in streams TEST_<OWNER>, named one by one below: a "*" inside a token is
# not a wildcard; dead letters on dlq.test.>) and nowhere else, so no test can put an event
# on a live owner stream that the running platform consumes (shared/testenv/natstest). It
# may use consumers of any name on any stream, except the services' durables (denied by
# name). Tests that check a service's own permissions use that service.
#
# And "tools", the operator tools (infra/checks/cmd/streamcheck): read-only, an NKey user.

listen: $POLYSHOP_NATS_LISTEN
http: $POLYSHOP_NATS_MONITOR_LISTEN
server_name: polyshop
max_payload: 1MB

jetstream {
  store_dir: $POLYSHOP_NATS_STORE
  max_memory_store: 256MB
  max_file_store: 4GB
}

authorization {
  users: [
`
