package labs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Lab 05: rebuild a read model. Start breaks search's index (documents deleted behind
// search's back, with search's own Elasticsearch credentials, as a lost write or a bad
// manual fix would); the learner finds the drift and rebuilds the index from the owners'
// exports plus the streams' tails. Verify: the alias points to a new index, the deleted
// products are searchable again and the drift check reports nothing.

func init() {
	Register(5, Funcs{Start: start05, Verify: verify05, Solve: solve05, Reset: reset05})
}

// reset05 repairs an index the learner left broken: a rebuild when the alias still
// points to the index start broke.
func reset05(ctx context.Context, e *Env) error {
	broken := e.Get("index")
	if broken == "" {
		return nil
	}
	idx, err := e.concreteIndex(ctx)
	if err == nil && idx != broken {
		return nil
	}
	e.Logf("the index is still the broken one: rebuilding it")
	return solve05(ctx, e)
}

const lab05Broken = 5

// es calls Elasticsearch with search's own credentials.
func (e *Env) es(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	base := strings.TrimRight(getenv("SEARCH_ELASTICSEARCH_URL", "http://127.0.0.1:9200"), "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(e.Getenv("SEARCH_ELASTICSEARCH_USERNAME"), e.Getenv("SEARCH_ELASTICSEARCH_PASSWORD"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("elasticsearch %s %s = %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(b, out)
	}
	return resp.StatusCode, nil
}

func searchAlias() string { return getenv("SEARCH_ELASTICSEARCH_ALIAS", "products") }

// concreteIndex names the index behind search's alias.
func (e *Env) concreteIndex(ctx context.Context) (string, error) {
	var m map[string]any
	if _, err := e.es(ctx, "GET", "/"+searchAlias()+"/_alias", nil, &m); err != nil {
		return "", err
	}
	for k := range m {
		return k, nil
	}
	return "", errors.New("the alias points to no index")
}

func start05(ctx context.Context, e *Env) error {
	idx, err := e.concreteIndex(ctx)
	if err != nil {
		return err
	}
	var res struct {
		Hits []struct {
			ID string `json:"id"`
		} `json:"hits"`
	}
	if _, err := e.GW.Call(ctx, "GET", fmt.Sprintf("/api/search?limit=%d", lab05Broken), "", nil, nil, &res); err != nil {
		return err
	}
	if len(res.Hits) < lab05Broken {
		return fmt.Errorf("search finds %d products, the lab needs %d", len(res.Hits), lab05Broken)
	}
	var ids []string
	for _, h := range res.Hits {
		if _, err := e.es(ctx, "DELETE", "/"+idx+"/_doc/"+url.PathEscape(h.ID)+"?refresh=true", nil, nil); err != nil {
			return err
		}
		ids = append(ids, h.ID)
	}
	e.Set("index", idx)
	e.Set("deleted", strings.Join(ids, ","))
	e.Logf("index %s: %d products' documents deleted behind search's back", idx, len(ids))
	return nil
}

// drift05 is search's drift report.
type drift05 struct {
	CatalogProducts int               `json:"catalogProducts"`
	IndexedProducts int               `json:"indexedProducts"`
	Missing         []string          `json:"missing"`
	Extra           []string          `json:"extra"`
	VersionMismatch []json.RawMessage `json:"versionMismatch"`
}

func (d drift05) zero() bool {
	return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.VersionMismatch) == 0
}

func verify05(ctx context.Context, e *Env) ([]string, error) {
	before := e.Get("index")
	if before == "" {
		return []string{"lab 05 is not started (./scripts/lab start 5)"}, nil
	}
	var fails []string
	idx, err := e.concreteIndex(ctx)
	if err != nil {
		fails = append(fails, fmt.Sprintf("the alias %s points to no index: %v (search's rebuild creates one and swaps the alias)", searchAlias(), err))
	} else if idx == before {
		fails = append(fails, fmt.Sprintf("the alias %s still points to %s, the broken index: rebuild it (search's POST /admin/rebuild, or `search rebuild`)", searchAlias(), idx))
	}
	for _, id := range strings.Split(e.Get("deleted"), ",") {
		code, err := e.es(ctx, "GET", "/"+searchAlias()+"/_doc/"+url.PathEscape(id)+"?_source=false", nil, nil)
		if code == http.StatusNotFound {
			fails = append(fails, fmt.Sprintf("product %s is not in the index (GET /api/search?q=… does not find it; GET /api/products/%s does)", id, id))
		} else if err != nil {
			return nil, err
		}
	}
	// Events in flight show as transient drift: look a few times.
	// (Only once when the index is known to be broken already.)
	var d drift05
	wait := 20 * time.Second
	if len(fails) > 0 {
		wait = 0
	}
	err = Eventually(ctx, wait, "drift 0", func() (bool, error) {
		_, err := e.OwnerSlow(ctx, "search", "GET", "/admin/drift", nil, &d)
		return err == nil && d.zero(), err
	})
	if err != nil && d.CatalogProducts == 0 {
		return nil, err
	}
	if !d.zero() {
		fails = append(fails, fmt.Sprintf("search's drift check reports %d missing, %d extra, %d version mismatches (search's GET /admin/drift, the console's drift view)",
			len(d.Missing), len(d.Extra), len(d.VersionMismatch)))
	}
	return fails, nil
}

func solve05(ctx context.Context, e *Env) error {
	var rep struct {
		Index   string `json:"index"`
		Swapped bool   `json:"swapped"`
	}
	var err error
	for attempt := range 3 { // a refused swap (drift while events fly) or a lost tail: run it again
		if _, err = e.OwnerSlow(ctx, "search", "POST", "/admin/rebuild", nil, &rep); err == nil {
			break
		}
		e.Logf("rebuild attempt %d: %v", attempt+1, err)
	}
	if err != nil {
		return err
	}
	e.Logf("rebuilt into %s (swapped %v)", rep.Index, rep.Swapped)
	return nil
}
