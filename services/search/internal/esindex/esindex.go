// Package esindex is the search Index on Elasticsearch (go-elasticsearch/v8, plain JSON
// requests). Queries and live writes go through an alias; concrete indices are named
// "<alias>-<UTC timestamp>" and created from migrations/index.json. Every write uses
// version_type=external with the product's version, so Elasticsearch itself rejects stale
// and duplicate writes (409), which this adapter treats as success.
//
// Deletes leave a tombstone carrying their version for index.gc_deletes (set to 1h in
// index.json instead of the default 60s): an older update arriving later than that after a
// delete would bring the product back. The stream is consumed in order, so that needs a
// redelivery more than an hour late; Drift would report it as "extra".
package esindex

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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
}

// Index implements search.Index. It is safe for concurrent use.
type Index struct {
	es    *elasticsearch.Client
	alias string
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
	return &Index{es: es, alias: cfg.Alias}, nil
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
		return nil
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
	if _, err := x.do(ctx, http.MethodPut, "/"+name, migrations.Index, nil); err != nil {
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

// Apply implements search.Index. One op is a single request (lowest latency for the live
// consumer); more go as one _bulk request.
func (x *Index) Apply(ctx context.Context, target string, ops []search.Op) error {
	if target == "" {
		target = x.alias
	}
	switch len(ops) {
	case 0:
		return nil
	case 1:
		return x.applyOne(ctx, target, ops[0])
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	n := 0
	for _, op := range ops {
		meta := map[string]any{"_index": target, "_id": op.ID, "version": op.Version, "version_type": "external"}
		switch op.Kind {
		case search.OpPut:
			_ = enc.Encode(map[string]any{"index": meta})
			if err := enc.Encode(op.Doc); err != nil {
				return fmt.Errorf("encode document %s: %w", op.ID, err)
			}
		case search.OpDelete:
			_ = enc.Encode(map[string]any{"delete": meta})
		default:
			continue
		}
		n++
	}
	if n == 0 {
		return nil
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
	if !resp.Errors {
		return nil
	}
	for _, item := range resp.Items {
		for action, r := range item {
			if r.Status < 300 || r.Status == http.StatusConflict || (action == "delete" && r.Status == http.StatusNotFound) {
				continue
			}
			return fmt.Errorf("bulk %s %s into %s: %d %s", action, r.ID, target, r.Status, r.Error)
		}
	}
	return nil
}

func (x *Index) applyOne(ctx context.Context, target string, op search.Op) error {
	q := "?version=" + strconv.FormatInt(op.Version, 10) + "&version_type=external"
	path := "/" + target + "/_doc/" + op.ID + q
	switch op.Kind {
	case search.OpPut:
		_, err := x.do(ctx, http.MethodPut, path, op.Doc, nil, http.StatusConflict)
		if err != nil {
			return fmt.Errorf("index %s v%d: %w", op.ID, op.Version, err)
		}
	case search.OpDelete:
		// 404: nothing to delete, but Elasticsearch still records the tombstone version.
		_, err := x.do(ctx, http.MethodDelete, path, nil, nil, http.StatusConflict, http.StatusNotFound)
		if err != nil {
			return fmt.Errorf("delete %s v%d: %w", op.ID, op.Version, err)
		}
	}
	return nil
}

// Versions implements search.Index, paging by id with search_after.
func (x *Index) Versions(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	var after []any
	for {
		body := map[string]any{
			"size":    1000,
			"_source": []string{"version"},
			"sort":    []any{map[string]string{"id": "asc"}},
			"query":   map[string]any{"match_all": map[string]any{}},
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
		if _, err := x.do(ctx, http.MethodPost, "/"+x.alias+"/_search", body, &resp); err != nil {
			return nil, fmt.Errorf("list indexed versions: %w", err)
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
