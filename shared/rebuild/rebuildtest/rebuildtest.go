// Package rebuildtest gives rebuild tests what the stack's NATS cannot: streams named like
// the owners' (USERS, CATALOG, INVENTORY, …) that a test may create, fill and purge. The
// services' NATS users may not create or purge other owners' streams, and tests must not
// publish on the live ones, so JetStream starts a real nats-server of the test's own (the
// stack's build, .polyshop/bin/nats-server) on a free loopback port with a temp store. It
// also holds owners' exports backed by slices: the owners' export endpoints are tested in
// their own services against their real stores.
package rebuildtest

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/events"
	"polyshop/shared/rebuild"
	"polyshop/shared/testenv"
)

// JetStream starts a nats-server with JetStream on a free loopback port, storing in a temp
// directory, and returns a JetStream client; both stop when the test ends. The server is
// the stack's own build; without it the test is skipped (failed under CI=true).
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".polyshop", "bin", "nats-server")
	if _, err := os.Stat(bin); err != nil {
		testenv.Require(t, "nats", err) // ./scripts/stack up builds it
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	srv := exec.Command(bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	var nc *nats.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if nc, err = nats.Connect("nats://127.0.0.1:" + port); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test's nats-server is not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Stream creates the stream name capturing "<owner>.>" (owner = the lowercased name).
func Stream(t testing.TB, js jetstream.JetStream, name, owner string) jetstream.Stream {
	t.Helper()
	st, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{owner + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Publish publishes envelopes on their subjects, in order.
func Publish(t testing.TB, js jetstream.JetStream, evs ...events.Envelope) {
	t.Helper()
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(context.Background(), events.SubjectFor(e.Type), b, jetstream.WithMsgID(e.ID)); err != nil {
			t.Fatal(err)
		}
	}
}

// Purge removes every message of the stream below sequence keep (retention at work), and
// fails the test unless the first message is then keep.
func Purge(t testing.TB, st jetstream.Stream, keep uint64) {
	t.Helper()
	ctx := context.Background()
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != keep {
		t.Fatalf("after the purge the stream starts at %d, want %d", info.State.FirstSeq, keep)
	}
}

// Export is an owner's export backed by a slice, in Key order, PageSize records per page
// (whatever the caller asks for). BeforePage, when set, runs before each page is served,
// with the page's number (from 1): the owner changing things during the export.
type Export[T any] struct {
	mu         sync.Mutex
	Items      []T
	Key        func(T) string
	PageSize   int
	BeforePage func(page int)
	pages      int
}

// Page implements rebuild.Export.
func (x *Export[T]) Page(_ context.Context, cursor string, _ int) ([]T, string, error) {
	x.mu.Lock()
	x.pages++
	n := x.pages
	hook := x.BeforePage
	x.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	items := slices.Clone(x.Items)
	slices.SortFunc(items, func(a, b T) int {
		switch ka, kb := x.Key(a), x.Key(b); {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	size := x.PageSize
	if size <= 0 {
		size = 100
	}
	var page []T
	for _, it := range items {
		if x.Key(it) > cursor && len(page) < size {
			page = append(page, it)
		}
	}
	next := ""
	if len(page) == size {
		next = x.Key(page[len(page)-1])
	}
	return page, next, nil
}

// Snapshot returns the records as they are now.
func (x *Export[T]) Snapshot() []T {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.Items)
}

// Set replaces or adds records (by key): the owner's state changing.
func (x *Export[T]) Set(items ...T) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, it := range items {
		i := slices.IndexFunc(x.Items, func(o T) bool { return x.Key(o) == x.Key(it) })
		if i < 0 {
			x.Items = append(x.Items, it)
		} else {
			x.Items[i] = it
		}
	}
}

// Products is a catalog export of records.
func Products(items ...rebuild.ProductRecord) *Export[rebuild.ProductRecord] {
	return &Export[rebuild.ProductRecord]{Items: items, Key: func(p rebuild.ProductRecord) string { return p.ID }}
}

// Stock is an inventory export of records.
func Stock(items ...rebuild.StockRecord) *Export[rebuild.StockRecord] {
	return &Export[rebuild.StockRecord]{Items: items, Key: func(s rebuild.StockRecord) string { return s.ProductID }}
}

// Addresses is a users export of records.
func Addresses(items ...rebuild.AddressRecord) *Export[rebuild.AddressRecord] {
	return &Export[rebuild.AddressRecord]{Items: items, Key: func(a rebuild.AddressRecord) string { return a.UserID }}
}
