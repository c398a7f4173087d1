// Command streamcheck proves that a test run put no test event on the live owner streams
// that the running platform consumes (USERS, SESSIONS, CATALOG): tests publish only in their
// own namespace (subjects "test.<owner>.>", streams TEST_<OWNER>, NATS user "test"; see
// shared/testenv/natstest).
//
//	streamcheck mark <file>    notes each stream's last sequence in file (before the tests)
//	streamcheck check <file>   reads every message published since, and fails on any test
//	                           event: a subject in the test namespace, or a type that is
//	                           ("polyshop.test.…") or contains a test-only name (".test_")
//
// It connects as the operator tools' read-only NATS user (TOOLS_NATS_URL, TOOLS_NATS_SEED; see
// infra/checks/internal/natsperm): stream info and an ordered consumer.
// scripts/test runs mark before the first module and check after the last.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/infra/checks/internal/natsperm"
)

// Guarded are the streams checked: the ones whose consumers (activity, search, orders,
// sessions) would turn a test event into real state.
var Guarded = []string{"USERS", "SESSIONS", "CATALOG"}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "mark" && os.Args[1] != "check") {
		fmt.Fprintln(os.Stderr, "usage: streamcheck mark|check <file>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "streamcheck:", err)
		os.Exit(1)
	}
}

func run(cmd, file string) error {
	url := os.Getenv("TOOLS_NATS_URL")
	if url == "" {
		return errors.New("TOOLS_NATS_URL is not set")
	}
	login, err := natsperm.ToolsOption(os.Getenv("TOOLS_NATS_SEED"))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, login, nats.Name("streamcheck"), nats.Timeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	last, err := lastSequences(ctx, js)
	if err != nil {
		return err
	}
	if cmd == "mark" {
		b, _ := json.Marshal(last)
		return os.WriteFile(file, b, 0o644)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read the marks (was mark run?): %w", err)
	}
	var marks map[string]uint64
	if err := json.Unmarshal(b, &marks); err != nil {
		return fmt.Errorf("read the marks: %w", err)
	}
	var found []string
	for _, stream := range Guarded {
		from, to := marks[stream]+1, last[stream]
		bad, n, err := scan(ctx, js, stream, from, to)
		if err != nil {
			return fmt.Errorf("scan %s: %w", stream, err)
		}
		fmt.Printf("%s: %d messages published during the run (sequences %d..%d), %d test events\n", stream, n, from, to, len(bad))
		found = append(found, bad...)
	}
	if len(found) > 0 {
		for _, f := range found {
			fmt.Println("  test event on a live stream:", f)
		}
		return fmt.Errorf("%d test events on live streams: tests must publish as the test user (shared/testenv/natstest)", len(found))
	}
	return nil
}

func lastSequences(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, name := range Guarded {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			out[name] = 0
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		out[name] = s.CachedInfo().State.LastSeq
	}
	return out, nil
}

// scan reads stream's messages with sequences from..to and returns the test events among
// them ("<stream>#<seq> <subject> <type>") and how many it read.
func scan(ctx context.Context, js jetstream.JetStream, stream string, from, to uint64) ([]string, int, error) {
	if to < from {
		return nil, 0, nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, 0, err
	}
	var bad []string
	n := 0
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, n, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, n, err
			}
			if md.Sequence.Stream > to {
				return bad, n, nil
			}
			n++
			if typ, ok := testEvent(m.Subject(), m.Data()); ok {
				bad = append(bad, fmt.Sprintf("%s#%d %s %s", stream, md.Sequence.Stream, m.Subject(), typ))
			}
			if md.Sequence.Stream == to {
				return bad, n, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, n, err
		}
		if got == 0 { // the rest was removed (retention, purge) meanwhile
			return bad, n, nil
		}
	}
}

// testEvent reports whether a message is a test's: its subject is in the test namespace,
// or its CloudEvents type is in it or names a test-only event (natstest.EventType).
func testEvent(subject string, body []byte) (string, bool) {
	var e struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Type, strings.HasPrefix(subject, "test.") || strings.HasPrefix(e.Type, "polyshop.test.") ||
		strings.Contains(e.Type, ".test_") || strings.Contains(subject, ".test_")
}
