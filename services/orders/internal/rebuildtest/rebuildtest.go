// Package rebuildtest gives rebuild tests what the stack's NATS cannot: streams named like
// the owners' (USERS, CATALOG) that a test may create, fill and purge. The orders NATS user
// may not create or purge other owners' streams, and tests must not publish on the live
// ones, so it runs a real nats-server with JetStream in the test process (a temp store
// directory per test). It also holds owners' exports backed by slices: the owners' export
// endpoints are tested in their own services against their real stores.
package rebuildtest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/shared/events"
)

// JetStream starts a nats-server with JetStream on a free loopback port, stores in a temp
// directory, and returns a JetStream client; both stop when the test ends.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("in-process nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Stream creates the owner's stream (name upper-cased, subjects "<owner>.>").
func Stream(t testing.TB, js jetstream.JetStream, owner string) jetstream.Stream {
	t.Helper()
	st, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: strings.ToUpper(owner), Subjects: []string{owner + ".>"}})
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
	n, hook := x.pages, x.BeforePage
	x.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	items := slices.Clone(x.Items)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(x.Key(a), x.Key(b)) })
	size := max(x.PageSize, 1)
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
