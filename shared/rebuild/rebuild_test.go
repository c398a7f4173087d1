package rebuild_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"polyshop/shared/events"
	"polyshop/shared/httpx"
	"polyshop/shared/rebuild"
	"polyshop/shared/testenv/natstest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// model is a read model keeping each aggregate's version, with the versioned apply the
// package asks for: a record applies at a version >= the stored one, an event at a newer one.
type model struct {
	mu   sync.Mutex
	v    map[string]int64
	seen []string // ids of the events applied
}

func (m *model) record(id string, v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v >= m.v[id] {
		m.v[id] = v
	}
}

func (m *model) apply(_ context.Context, batch []events.Envelope) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range batch {
		m.seen = append(m.seen, e.ID)
		if e.Sequence > m.v[e.Subject] {
			m.v[e.Subject] = e.Sequence
		}
	}
	return nil
}

// The rebuild notes the stream's end, applies the export, and replays only the events after
// the note up to the stream's end when the tail starts: the events before the note are
// never read (retention may have removed them; the export holds what they held), events
// published during the export are in the tail, and an event published during the tail is
// not applied by it. Test-only event types on the test stream TEST_INVENTORY.
func TestRunAppliesExportThenTheTailFromTheNotedSequence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc := natstest.TestConn(t)
	stream := natstest.Stream(t, nc, "inventory")
	typ := natstest.EventType(t, "inventory")
	a, b, c := uuid.NewString(), uuid.NewString(), uuid.NewString()
	publish := func(id string, seq int64) string {
		t.Helper()
		e, err := events.New(ctx, typ, id, seq, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	before := []string{publish(a, 1), publish(a, 2), publish(b, 1)}

	m := &model{v: map[string]int64{}}
	var during, late []string
	src := rebuild.Source{
		Name: "test", Stream: stream, Subjects: []string{events.SubjectFor(typ)},
		Snapshot: func(ctx context.Context) (int, error) {
			// The owner changes a and creates c while its export is being read.
			during = append(during, publish(a, 3), publish(c, 1))
			m.record(a, 2)
			m.record(b, 1)
			return 2, nil
		},
		Apply: func(ctx context.Context, batch []events.Envelope) error {
			if late == nil {
				late = []string{publish(a, 4)} // after the tail's end was taken
			}
			return m.apply(ctx, batch)
		},
	}
	reps, err := rebuild.New(nc.JetStream(), 1, quiet()).Run(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	rep := reps[0]
	if rep.Exported != 2 || rep.Replayed != 2 || rep.TailFrom != rep.Noted+1 || rep.TailTo < rep.TailFrom+1 {
		t.Errorf("report %+v: want 2 exported, 2 replayed from the noted sequence + 1", rep)
	}
	if diff := cmp.Diff(m.seen, during); diff != "" {
		t.Errorf("events applied (-got +want); before the note: %v, during the tail: %v\n%s", before, late, diff)
	}
	if diff := cmp.Diff(m.v, map[string]int64{a: 3, b: 1, c: 1}); diff != "" {
		t.Errorf("read model (-got +want):\n%s", diff)
	}

	// A second tail from the end of the first applies what came after it, and only that.
	tr, err := rebuild.New(nc.JetStream(), 0, quiet()).Tail(ctx, stream, src.Subjects, rep.TailTo+1, m.apply)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Applied != 1 || m.v[a] != 4 {
		t.Errorf("catch-up %+v applied %d, a at %d; want 1 event, a at 4", tr, tr.Applied, m.v[a])
	}
}

// A stream its owner has not created yet holds nothing: the rebuild is the export alone.
func TestRunOnAMissingStreamIsTheExportAlone(t *testing.T) {
	nc := natstest.TestConn(t)
	src := rebuild.Source{
		Name: "nosuch", Stream: "NOSUCH_" + strings.ToUpper(uuid.NewString()[:8]), Subjects: []string{"nosuch.x.v1"},
		Snapshot: func(context.Context) (int, error) { return 3, nil },
		Apply: func(context.Context, []events.Envelope) error {
			t.Error("Apply called for a missing stream")
			return nil
		},
	}
	reps, err := rebuild.New(nc.JetStream(), 0, quiet()).Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	want := rebuild.SourceReport{Source: "nosuch", Stream: src.Stream, Exported: 3, TailFrom: 1, TailTo: 0}
	reps[0].DurationMs = 0
	if diff := cmp.Diff(reps[0], want); diff != "" {
		t.Errorf("report (-got +want):\n%s", diff)
	}
}

// Snapshot follows the export's cursors through every page; the export endpoint helpers
// answer 400 for malformed and 422 for out-of-range parameters.
func TestHTTPExportPagesAndQueryValidation(t *testing.T) {
	all := []rebuild.StockRecord{}
	for i := range 7 {
		all = append(all, rebuild.StockRecord{ProductID: string(rune('a' + i)), Available: int64(i), Version: int64(i + 1)})
	}
	srv := httptest.NewServer(httpx.Handler(quiet(), func(w http.ResponseWriter, r *http.Request) error {
		after, limit, err := rebuild.ParseExportQuery(r)
		if err != nil {
			return err
		}
		var page []rebuild.StockRecord
		for _, s := range all {
			if s.ProductID > after && len(page) < limit {
				page = append(page, s)
			}
		}
		return rebuild.WritePage(w, page, limit, func(s rebuild.StockRecord) string { return s.ProductID })
	}))
	defer srv.Close()

	exp := rebuild.HTTPExport[rebuild.StockRecord]{URL: srv.URL + "/export/stock", Client: srv.Client()}
	var got []rebuild.StockRecord
	pages := 0
	n, err := rebuild.Snapshot(exp, 3, func(_ context.Context, p []rebuild.StockRecord) error {
		pages++
		got = append(got, p...)
		return nil
	})(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, all); diff != "" || n != 7 || pages != 3 {
		t.Errorf("n=%d pages=%d (-got +want):\n%s", n, pages, diff)
	}

	tests := []struct {
		query string
		want  int
	}{
		{"", 200},
		{"limit=1000", 200},
		{"cursor=" + rebuild.EncodeCursor("c"), 200},
		{"limit=abc", 400},
		{"limit=0", 422},
		{"limit=1001", 422},
		{"cursor=bm9wZQ", 400},
		{"cursor=", 200},
		{"other=1", 400},
		{"limit=1&limit=2", 400},
	}
	for _, tc := range tests {
		resp, err := srv.Client().Get(srv.URL + "/export/stock?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("?%s = %d, want %d", tc.query, resp.StatusCode, tc.want)
		}
	}
}
