package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// elasticEngine: Elasticsearch through go-elasticsearch/v8, indices bench-items,
// bench-events and bench-counters (one shard, no replica). Reads by id are real-time GETs;
// everything else is a search, which sees writes only after a refresh (1 s by default), so
// an inserted event is not in the next page at once. The conditional update is an index
// request with if_seq_no/if_primary_term; the counter an update with a painless script.
type elasticEngine struct{ es *elasticsearch.Client }

func newElastic(url, user, password string, conns int) (*elasticEngine, error) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{url}, Username: user, Password: password,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns},
	})
	if err != nil {
		return nil, err
	}
	return &elasticEngine{es}, nil
}

func (e *elasticEngine) Name() string { return "Elasticsearch" }
func (e *elasticEngine) Close()       {}

const (
	esItems    = "bench-items"
	esEvents   = "bench-events"
	esCounters = "bench-counters"
)

// call performs req and decodes a 2xx answer into out; it returns the status, and an error
// carrying the body for anything else.
func (e *elasticEngine) call(ctx context.Context, req esapi.Request, out any) (int, error) {
	res, err := req.Do(ctx, e.es)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.IsError() {
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, fmt.Errorf("%s: %s", res.Status(), bytes.TrimSpace(b))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	return res.StatusCode, json.NewDecoder(res.Body).Decode(out)
}

func (e *elasticEngine) Version(ctx context.Context) (string, error) {
	var info struct{ Version struct{ Number string } }
	_, err := e.call(ctx, esapi.InfoRequest{}, &info)
	return "Elasticsearch " + info.Version.Number, err
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func (e *elasticEngine) Load(ctx context.Context, d *Dataset) error {
	if st, err := e.call(ctx, esapi.IndicesDeleteRequest{Index: []string{esItems, esEvents, esCounters}, IgnoreUnavailable: esapi.BoolPtr(true)}, nil); err != nil && st != http.StatusNotFound {
		return err
	}
	settings := map[string]any{"number_of_shards": 1, "number_of_replicas": 0}
	for index, props := range map[string]map[string]any{
		esItems: {"category": map[string]string{"type": "keyword"}, "name": map[string]string{"type": "text"},
			"description": map[string]string{"type": "text", "analyzer": "standard"}, "price": map[string]string{"type": "integer"}},
		esEvents: {"partition": map[string]string{"type": "keyword"}, "seq": map[string]string{"type": "long"},
			"kind": map[string]string{"type": "keyword"}, "payload": map[string]any{"type": "keyword", "index": false}},
		esCounters: {"n": map[string]string{"type": "long"}},
	} {
		body := jsonBody(map[string]any{"settings": settings, "mappings": map[string]any{"properties": props}})
		if _, err := e.call(ctx, esapi.IndicesCreateRequest{Index: index, Body: body}, nil); err != nil {
			return fmt.Errorf("create %s: %w", index, err)
		}
	}
	var buf bytes.Buffer
	flush := func(force bool) error {
		if buf.Len() < 1<<20 && !force || buf.Len() == 0 {
			return nil
		}
		var res struct{ Errors bool }
		_, err := e.call(ctx, esapi.BulkRequest{Body: bytes.NewReader(buf.Bytes())}, &res)
		buf.Reset()
		if err == nil && res.Errors {
			err = fmt.Errorf("bulk load: some documents were refused")
		}
		return err
	}
	add := func(index, id string, doc any) error {
		meta := map[string]any{"_index": index}
		if id != "" {
			meta["_id"] = id
		}
		b1, _ := json.Marshal(map[string]any{"index": meta})
		b2, _ := json.Marshal(doc)
		buf.Write(b1)
		buf.WriteByte('\n')
		buf.Write(b2)
		buf.WriteByte('\n')
		return flush(false)
	}
	for _, it := range d.Items {
		if err := add(esItems, it.ID, map[string]any{"category": it.Category, "name": it.Name, "description": it.Description, "price": it.Price}); err != nil {
			return err
		}
	}
	err := d.Events(func(_ string, es []Event) error {
		for _, ev := range es {
			if err := add(esEvents, "", map[string]any{"partition": ev.Partition, "seq": ev.Seq, "kind": ev.Kind, "payload": ev.Payload}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range d.CounterIDs() {
		if err := add(esCounters, id, map[string]any{"n": 0}); err != nil {
			return err
		}
	}
	if err := flush(true); err != nil {
		return err
	}
	_, err = e.call(ctx, esapi.IndicesRefreshRequest{Index: []string{esItems, esEvents, esCounters}}, nil)
	return err
}

type esDoc struct {
	Found       bool            `json:"found"`
	SeqNo       *int            `json:"_seq_no"`
	PrimaryTerm *int            `json:"_primary_term"`
	Source      json.RawMessage `json:"_source"`
}

func (e *elasticEngine) PointRead(ctx context.Context, id string) error {
	var doc esDoc
	_, err := e.call(ctx, esapi.GetRequest{Index: esItems, DocumentID: id}, &doc)
	return err
}

func (e *elasticEngine) BatchRead(ctx context.Context, ids []string) error {
	var res struct{ Docs []esDoc }
	if _, err := e.call(ctx, esapi.MgetRequest{Index: esItems, Body: jsonBody(map[string]any{"ids": ids})}, &res); err != nil {
		return err
	}
	found := 0
	for _, d := range res.Docs {
		if d.Found {
			found++
		}
	}
	return expect("batch", found, len(ids))
}

// search runs a query on index and returns the number of hits it returned, and the
// response for aggregations.
func (e *elasticEngine) search(ctx context.Context, index string, body map[string]any, out any) (int, error) {
	var res struct {
		Hits struct{ Hits []json.RawMessage }
	}
	raw := json.RawMessage{}
	if _, err := e.call(ctx, esapi.SearchRequest{Index: []string{index}, Body: jsonBody(body)}, &raw); err != nil {
		return 0, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return 0, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, err
		}
	}
	return len(res.Hits.Hits), nil
}

func (e *elasticEngine) NewestPage(ctx context.Context, partition string) error {
	n, err := e.search(ctx, esEvents, map[string]any{"size": 20, "query": map[string]any{"term": map[string]any{"partition": partition}},
		"sort": []any{map[string]string{"seq": "desc"}}}, nil)
	if err != nil {
		return err
	}
	return expect("page", n, 20)
}

func (e *elasticEngine) BySecondary(ctx context.Context, category string) error {
	n, err := e.search(ctx, esItems, map[string]any{"size": 20, "query": map[string]any{"term": map[string]any{"category": category}}}, nil)
	if err != nil {
		return err
	}
	return expect("secondary", n, 20)
}

func (e *elasticEngine) Insert(ctx context.Context, ev Event) error {
	_, err := e.call(ctx, esapi.IndexRequest{Index: esEvents,
		Body: jsonBody(map[string]any{"partition": ev.Partition, "seq": ev.Seq, "kind": ev.Kind, "payload": ev.Payload})}, nil)
	return err
}

// ConditionalUpdate: a real-time GET returns the document's sequence number and primary
// term; the write names them, and Elasticsearch answers 409 if the document moved on.
func (e *elasticEngine) ConditionalUpdate(ctx context.Context, id string) error {
	var doc esDoc
	if _, err := e.call(ctx, esapi.GetRequest{Index: esItems, DocumentID: id}, &doc); err != nil {
		return err
	}
	var src map[string]any
	if err := json.Unmarshal(doc.Source, &src); err != nil {
		return err
	}
	src["price"] = src["price"].(float64) + 1
	st, err := e.call(ctx, esapi.IndexRequest{Index: esItems, DocumentID: id, Body: jsonBody(src),
		IfSeqNo: doc.SeqNo, IfPrimaryTerm: doc.PrimaryTerm}, nil)
	if st == http.StatusConflict {
		return errConflict
	}
	return err
}

func (e *elasticEngine) Increment(ctx context.Context, counter string) error {
	_, err := e.call(ctx, esapi.UpdateRequest{Index: esCounters, DocumentID: counter, RetryOnConflict: esapi.IntPtr(5),
		Body: jsonBody(map[string]any{"script": map[string]any{"source": "ctx._source.n += 1", "lang": "painless"}})}, nil)
	if err != nil && strings.Contains(err.Error(), "painless") {
		return na("an update script needs the lang-painless module, which the integ-test distribution run natively lacks (the Elasticsearch image has it)")
	}
	return err
}

func (e *elasticEngine) FullText(ctx context.Context, word string) error {
	n, err := e.search(ctx, esItems, map[string]any{"size": 20, "query": map[string]any{"match": map[string]any{"description": word}}}, nil)
	if err != nil {
		return err
	}
	return expect("full text", n, 20)
}

func (e *elasticEngine) GroupBy(ctx context.Context) error {
	var res struct {
		Aggregations struct {
			ByCategory struct{ Buckets []json.RawMessage } `json:"by_category"`
		}
	}
	_, err := e.search(ctx, esItems, map[string]any{"size": 0, "aggs": map[string]any{"by_category": map[string]any{
		"terms": map[string]any{"field": "category", "size": 100},
		"aggs":  map[string]any{"total": map[string]any{"sum": map[string]string{"field": "price"}}}}}}, &res)
	if err != nil {
		return err
	}
	return expect("groups", len(res.Aggregations.ByCategory.Buckets), 20)
}

// shortErr is an error's first line, cut to 160 characters, for an n/a reason.
func shortErr(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

var _ Engine = (*elasticEngine)(nil)
