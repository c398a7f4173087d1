// Package esindex is the search Index on Elasticsearch (go-elasticsearch/v8, plain JSON
// requests). Queries and live writes go through an alias; concrete indices are named
// "<alias>-<UTC timestamp>" and created from migrations/index.json.
//
// A document has two parts from two sources with a version each (search.Document), so
// Elasticsearch's external versioning, which keeps one version per document, cannot
// guard it. Writes are read-change-write with optimistic concurrency instead
// (if_seq_no/if_primary_term, see Apply); no scripts (the native distribution has no
// painless). Deleted products stay as tombstone documents, filtered out of every read.
package esindex

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"polyshop/services/search/internal/search"
	"polyshop/services/search/migrations"
)

// Config says where the index lives.
type Config struct {
	URL      string
	Username string
	Password string
	// Alias is the name queries use (default "products"); concrete indices are named
	// "<Alias>-<timestamp>". Tests use their own alias.
	Alias string
	// RefreshInterval is how often Elasticsearch makes new writes searchable (the index's
	// refresh_interval); zero keeps the definition's (migrations/index.json, 1s). Set on new
	// indices and, by Ensure, on the ones already behind the alias.
	RefreshInterval time.Duration
}

// Index implements search.Index. It is safe for concurrent use.
type Index struct {
	es      *elasticsearch.Client
	alias   string
	refresh time.Duration
	// conflicts counts writes that lost a race (409) and were read and folded again.
	conflicts atomic.Int64
	// beforeWrite, when set (tests), runs between the read and the write of Apply.
	beforeWrite func()
}

var _ search.Index = (*Index)(nil)

// New returns an Index; it does not contact the server.
func New(cfg Config) (*Index, error) {
	if cfg.Alias == "" {
		cfg.Alias = "products"
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{cfg.URL},
		Username:  cfg.Username,
		Password:  cfg.Password,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	if cfg.RefreshInterval < 0 {
		return nil, fmt.Errorf("refresh interval %s: must not be negative", cfg.RefreshInterval)
	}
	return &Index{es: es, alias: cfg.Alias, refresh: cfg.RefreshInterval}, nil
}

// Alias returns the alias name.
func (x *Index) Alias() string { return x.alias }

// do sends a request with an optional JSON body and decodes a 2xx JSON answer into out.
// It returns the status code; statuses listed in ok are not errors.
func (x *Index) do(ctx context.Context, method, path string, body any, out any, ok ...int) (int, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, err
	}
	if rd != nil {
		ct := "application/json"
		if strings.HasPrefix(path, "/_bulk") || strings.Contains(path, "/_bulk") {
			ct = "application/x-ndjson"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := x.es.Perform(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %s: %w", search.ErrUnavailable, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: read %s %s: %w", search.ErrUnavailable, method, path, err)
	}
	if resp.StatusCode >= 300 {
		for _, s := range ok {
			if s == resp.StatusCode {
				return resp.StatusCode, nil
			}
		}
		msg := strings.TrimSpace(string(data))
		if len(msg) > 500 {
			msg = msg[:500]
		}
		err := fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, msg)
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("%w: %w", search.ErrUnavailable, err)
		}
		return resp.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Ping checks that the cluster answers, for /readyz.
func (x *Index) Ping(ctx context.Context) error {
	_, err := x.do(ctx, http.MethodGet, "/_cluster/health", nil, nil)
	return err
}

// Ensure makes sure the alias exists, creating a first concrete index behind it when it
// does not. It is idempotent; two instances starting at once may each create an index,
// and the alias ends up on one of them (the other is deleted).
func (x *Index) Ensure(ctx context.Context) error {
	idx, err := x.aliasIndices(ctx)
	if err != nil {
		return err
	}
	if len(idx) > 0 {
		if err := x.updateMapping(ctx); err != nil {
			return err
		}
		return x.updateRefresh(ctx)
	}
	name, err := x.CreateIndex(ctx)
	if err != nil {
		return err
	}
	if _, err := x.SwapAlias(ctx, name); err != nil {
		return err
	}
	return nil
}

// updateMapping puts the mappings of migrations/index.json on the indices behind the alias,
// which adds the fields a newer version of this service introduced (new fields only:
// Elasticsearch refuses to change an existing field, and then a rebuild is the way). Existing
// documents simply lack the new fields.
func (x *Index) updateMapping(ctx context.Context) error {
	var def struct {
		Mappings json.RawMessage `json:"mappings"`
	}
	if err := json.Unmarshal(migrations.Index, &def); err != nil {
		return fmt.Errorf("index definition: %w", err)
	}
	if _, err := x.do(ctx, http.MethodPut, "/"+x.alias+"/_mapping", []byte(def.Mappings), nil); err != nil {
		return fmt.Errorf("update mapping of %s (a rebuild creates an index with the new one): %w", x.alias, err)
	}
	return nil
}

// updateRefresh sets the configured refresh interval on the indices behind the alias (a
// dynamic setting), so a changed SEARCH_REFRESH_INTERVAL applies at the next start.
func (x *Index) updateRefresh(ctx context.Context) error {
	if x.refresh == 0 {
		return nil
	}
	body := map[string]any{"index": map[string]any{"refresh_interval": esDuration(x.refresh)}}
	if _, err := x.do(ctx, http.MethodPut, "/"+x.alias+"/_settings", body, nil); err != nil {
		return fmt.Errorf("set the refresh interval of %s: %w", x.alias, err)
	}
	return nil
}

// definition returns migrations/index.json with the configured refresh interval.
func (x *Index) definition() ([]byte, error) {
	if x.refresh == 0 {
		return migrations.Index, nil
	}
	var def map[string]json.RawMessage
	if err := json.Unmarshal(migrations.Index, &def); err != nil {
		return nil, fmt.Errorf("index definition: %w", err)
	}
	var settings map[string]any
	if err := json.Unmarshal(def["settings"], &settings); err != nil {
		return nil, fmt.Errorf("index definition settings: %w", err)
	}
	settings["refresh_interval"] = esDuration(x.refresh)
	raw, err := json.Marshal(settings)
	if err != nil {
		return nil, err
	}
	def["settings"] = raw
	return json.Marshal(def)
}

// esDuration writes d in Elasticsearch's time units (whole milliseconds).
func esDuration(d time.Duration) string {
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}

// aliasIndices returns the concrete indices behind the alias (none when it is missing).
func (x *Index) aliasIndices(ctx context.Context) ([]string, error) {
	var out map[string]json.RawMessage
	status, err := x.do(ctx, http.MethodGet, "/_alias/"+x.alias, nil, &out, http.StatusNotFound)
	if err != nil {
		return nil, fmt.Errorf("read alias %s: %w", x.alias, err)
	}
	if status == http.StatusNotFound {
		return nil, nil
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	return names, nil
}

// CreateIndex implements search.Index.
func (x *Index) CreateIndex(ctx context.Context) (string, error) {
	name := x.alias + "-" + strings.ToLower(time.Now().UTC().Format("20060102t150405.000000"))
	name = strings.ReplaceAll(name, ".", "")
	def, err := x.definition()
	if err != nil {
		return "", err
	}
	if _, err := x.do(ctx, http.MethodPut, "/"+name, def, nil); err != nil {
		return "", fmt.Errorf("create index %s: %w", name, err)
	}
	return name, nil
}

// SwapAlias implements search.Index: one _aliases request removes the alias from every
// index it points at and adds it to index, so readers see either the old or the new index.
func (x *Index) SwapAlias(ctx context.Context, index string) ([]string, error) {
	old, err := x.aliasIndices(ctx)
	if err != nil {
		return nil, err
	}
	actions := []map[string]any{}
	for _, o := range old {
		if o != index {
			actions = append(actions, map[string]any{"remove": map[string]string{"index": o, "alias": x.alias}})
		}
	}
	actions = append(actions, map[string]any{"add": map[string]any{"index": index, "alias": x.alias, "is_write_index": true}})
	if _, err := x.do(ctx, http.MethodPost, "/_aliases", map[string]any{"actions": actions}, nil); err != nil {
		return nil, fmt.Errorf("swap alias %s to %s: %w", x.alias, index, err)
	}
	return old, nil
}

// DeleteIndex implements search.Index. A missing index is not an error.
func (x *Index) DeleteIndex(ctx context.Context, index string) error {
	if index == "" || strings.ContainsAny(index, "*,") {
		return fmt.Errorf("delete index: refusing pattern %q", index)
	}
	_, err := x.do(ctx, http.MethodDelete, "/"+index, nil, nil, http.StatusNotFound)
	return err
}

// DeleteAll deletes the alias and every concrete index behind it or named after it; tests
// use it at cleanup.
func (x *Index) DeleteAll(ctx context.Context) error {
	_, err := x.do(ctx, http.MethodDelete, "/"+x.alias+"-*", nil, nil, http.StatusNotFound)
	return err
}

// Refresh implements search.Index.
func (x *Index) Refresh(ctx context.Context, index string) error {
	if index == "" {
		index = x.alias
	}
	_, err := x.do(ctx, http.MethodPost, "/"+index+"/_refresh", nil, nil)
	return err
}

// maxApplyAttempts bounds the read-change-write rounds of one Apply; only concurrent writers
// of the same ids cause another round, so reaching it means heavy contention: the error
// makes the consumer retry later.
const maxApplyAttempts = 20

// stored is one document as read with its optimistic concurrency token.
type stored struct {
	Index       string          `json:"_index"`
	ID          string          `json:"_id"`
	Found       bool            `json:"found"`
	SeqNo       int64           `json:"_seq_no"`
	PrimaryTerm int64           `json:"_primary_term"`
	Source      search.Document `json:"_source"`
	Error       json.RawMessage `json:"error"`
}

// Apply implements search.Index with optimistic concurrency instead of external versions
// (which would cover one source only): the documents the ops touch are read with one
// realtime _mget (which also names the concrete index behind the alias), each is changed in
// memory with search.Fold, and the changed ones are written back with one _bulk request,
// each write conditional on the _seq_no/_primary_term read (op_type create for a document
// that did not exist). A write that loses a race (409) is read and folded again.
//
// The write goes to the concrete index the document was read from: when a rebuild swaps
// the alias in between, the write lands in the old index (and fails nothing); the rebuild's
// catch-up replays the event into the new one.
func (x *Index) Apply(ctx context.Context, target string, ops []search.Op) error {
	if target == "" {
		target = x.alias
	}
	byID := map[string][]search.Op{}
	var pending []string
	for _, op := range ops {
		if op.Kind == search.OpNone {
			continue
		}
		if _, ok := byID[op.ID]; !ok {
			pending = append(pending, op.ID)
		}
		byID[op.ID] = append(byID[op.ID], op)
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > maxApplyAttempts {
			return fmt.Errorf("apply to %s: %d documents still conflict after %d attempts (first %s)", target, len(pending), maxApplyAttempts, pending[0])
		}
		cur, err := x.mget(ctx, target, pending)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		n := 0
		for _, id := range pending {
			st := cur[id]
			var base *search.Document
			if st.Found {
				base = &st.Source
			}
			doc, changed := search.Fold(base, byID[id])
			if !changed {
				continue
			}
			meta := map[string]any{"_index": st.Index, "_id": id}
			action := "create"
			if st.Index == "" {
				meta["_index"] = target
			}
			if st.Found {
				action = "index"
				meta["if_seq_no"], meta["if_primary_term"] = st.SeqNo, st.PrimaryTerm
			}
			_ = enc.Encode(map[string]any{action: meta})
			if err := enc.Encode(doc); err != nil {
				return fmt.Errorf("encode document %s: %w", id, err)
			}
			n++
		}
		if n == 0 {
			return nil
		}
		if x.beforeWrite != nil {
			x.beforeWrite()
		}
		var resp struct {
			Errors bool `json:"errors"`
			Items  []map[string]struct {
				ID     string          `json:"_id"`
				Status int             `json:"status"`
				Error  json.RawMessage `json:"error"`
			} `json:"items"`
		}
		if _, err := x.do(ctx, http.MethodPost, "/_bulk", buf.Bytes(), &resp); err != nil {
			return fmt.Errorf("bulk into %s: %w", target, err)
		}
		pending = pending[:0]
		if !resp.Errors {
			return nil
		}
		for _, item := range resp.Items {
			for action, r := range item {
				switch {
				case r.Status < 300:
				case r.Status == http.StatusConflict:
					pending = append(pending, r.ID) // someone wrote it since the read: again
					x.conflicts.Add(1)
				default:
					return fmt.Errorf("bulk %s %s into %s: %d %s", action, r.ID, target, r.Status, r.Error)
				}
			}
		}
	}
	return nil
}

// Conflicts returns how many writes lost a race since the Index was made and were redone.
func (x *Index) Conflicts() int64 { return x.conflicts.Load() }

// mget reads the documents ids from target (an alias with one index, or a concrete index),
// realtime, with their sequence numbers; missing documents come back with Found false.
func (x *Index) mget(ctx context.Context, target string, ids []string) (map[string]stored, error) {
	var resp struct {
		Docs []stored `json:"docs"`
	}
	path := "/" + target + "/_mget?realtime=true"
	if _, err := x.do(ctx, http.MethodPost, path, map[string]any{"ids": ids}, &resp); err != nil {
		return nil, fmt.Errorf("read %d documents from %s: %w", len(ids), target, err)
	}
	out := make(map[string]stored, len(resp.Docs))
	for _, d := range resp.Docs {
		if len(d.Error) > 0 && string(d.Error) != "null" {
			return nil, fmt.Errorf("read %s from %s: %s", d.ID, target, d.Error)
		}
		out[d.ID] = d
	}
	return out, nil
}

// Get returns the stored document id behind the alias (visible or not), realtime; found is
// false when there is none.
func (x *Index) Get(ctx context.Context, id string) (search.Document, bool, error) {
	cur, err := x.mget(ctx, x.alias, []string{id})
	if err != nil {
		return search.Document{}, false, err
	}
	st := cur[id]
	return st.Source, st.Found, nil
}

// visible is the filter every read uses: documents with their catalog part that are not
// tombstones (see search.Document.Visible).
func visible() map[string]any {
	return map[string]any{"bool": map[string]any{
		"filter":   []any{map[string]any{"exists": map[string]any{"field": "version"}}},
		"must_not": []any{map[string]any{"term": map[string]any{"deleted": true}}},
	}}
}

// Versions implements search.Index, paging by id with search_after.
func (x *Index) Versions(ctx context.Context, target string) (map[string]int64, error) {
	if target == "" {
		target = x.alias
	}
	out := map[string]int64{}
	var after []any
	for {
		body := map[string]any{
			"size":    1000,
			"_source": []string{"version"},
			"sort":    []any{map[string]string{"id": "asc"}},
			"query":   visible(),
		}
		if after != nil {
			body["search_after"] = after
		}
		var resp struct {
			Hits struct {
				Hits []struct {
					ID     string `json:"_id"`
					Source struct {
						Version int64 `json:"version"`
					} `json:"_source"`
					Sort []any `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if _, err := x.do(ctx, http.MethodPost, "/"+target+"/_search", body, &resp); err != nil {
			return nil, fmt.Errorf("list indexed versions of %s: %w", target, err)
		}
		for _, h := range resp.Hits.Hits {
			out[h.ID] = h.Source.Version
		}
		if len(resp.Hits.Hits) < 1000 {
			return out, nil
		}
		after = resp.Hits.Hits[len(resp.Hits.Hits)-1].Sort
	}
}

// IsNotFound reports whether err is a missing index or alias.
func IsNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), ": 404 ")
}
