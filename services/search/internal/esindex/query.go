package esindex

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"polyshop/services/search/internal/search"
)

// attrFacetSize bounds the attribute facet; with "key=value" terms it is shared by all keys.
const attrFacetSize = 200

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	body := searchBody(q)
	var resp searchResponse
	if _, err := x.do(ctx, http.MethodPost, "/"+x.alias+"/_search?request_cache=true", body, &resp); err != nil {
		return search.Result{}, fmt.Errorf("search: %w", err)
	}
	return resp.result(q.Limit), nil
}

// searchBody builds the request: full text on name (boosted) and description, filters that
// do not score, a stable sort (_score, then id) for search_after, highlights and facets.
func searchBody(q search.Query) map[string]any {
	var must any = map[string]any{"match_all": map[string]any{}}
	if q.Text != "" {
		must = map[string]any{"multi_match": map[string]any{
			"query": q.Text, "fields": []string{"name^3", "description"}, "operator": "and",
		}}
	}
	filters := []any{visible()}
	mustNot := []any{}
	if q.InStock != nil {
		inStock := map[string]any{"term": map[string]any{"inStock": true}}
		if *q.InStock {
			filters = append(filters, inStock)
		} else {
			// Not in stock includes products inventory has not reported yet.
			mustNot = append(mustNot, inStock)
		}
	}
	if q.Category != "" {
		filters = append(filters, map[string]any{"term": map[string]any{"category": q.Category}})
	}
	if q.MinPrice != nil || q.MaxPrice != nil {
		r := map[string]any{}
		if q.MinPrice != nil {
			r["gte"] = *q.MinPrice
		}
		if q.MaxPrice != nil {
			r["lte"] = *q.MaxPrice
		}
		filters = append(filters, map[string]any{"range": map[string]any{"price.amount": r}})
	}
	ranges := make([]map[string]any, len(search.PriceRanges))
	for i, b := range search.PriceRanges {
		r := map[string]any{"key": b.Key}
		if b.From != nil {
			r["from"] = *b.From
		}
		if b.To != nil {
			r["to"] = *b.To
		}
		ranges[i] = r
	}
	body := map[string]any{
		"size":             q.Limit + 1, // one more tells whether a next page exists
		"track_total_hits": true,
		"query":            map[string]any{"bool": map[string]any{"must": must, "filter": filters, "must_not": mustNot}},
		"sort":             []any{map[string]string{"_score": "desc"}, map[string]string{"id": "asc"}},
		"_source":          []string{"id", "name", "description", "category", "price", "attributes", "version", "inStock", "available"},
		"highlight": map[string]any{
			"pre_tags": []string{"<em>"}, "post_tags": []string{"</em>"},
			"fields": map[string]any{"name": map[string]any{"number_of_fragments": 0}, "description": map[string]any{"fragment_size": 150, "number_of_fragments": 3}},
		},
		"aggs": map[string]any{
			"category":   map[string]any{"terms": map[string]any{"field": "category", "size": 50}},
			"price":      map[string]any{"range": map[string]any{"field": "price.amount", "ranges": ranges}},
			"attributes": map[string]any{"terms": map[string]any{"field": "attrFacets", "size": attrFacetSize}},
		},
	}
	if q.After != nil {
		body["search_after"] = []any{q.After.Score, q.After.ID}
	}
	return body
}

type searchResponse struct {
	Hits struct {
		Total struct {
			Value int64 `json:"value"`
		} `json:"total"`
		Hits []struct {
			Score     *float64            `json:"_score"`
			Source    search.Hit          `json:"_source"`
			Highlight map[string][]string `json:"highlight"`
			Sort      []json.RawMessage   `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations struct {
		Category   termsAgg `json:"category"`
		Attributes termsAgg `json:"attributes"`
		Price      struct {
			Buckets []struct {
				Key      string   `json:"key"`
				From     *float64 `json:"from"`
				To       *float64 `json:"to"`
				DocCount int64    `json:"doc_count"`
			} `json:"buckets"`
		} `json:"price"`
	} `json:"aggregations"`
}

type termsAgg struct {
	Buckets []struct {
		Key      string `json:"key"`
		DocCount int64  `json:"doc_count"`
	} `json:"buckets"`
}

func (t termsAgg) values() []search.ValueCount {
	out := make([]search.ValueCount, len(t.Buckets))
	for i, b := range t.Buckets {
		out[i] = search.ValueCount{Value: b.Key, Count: b.DocCount}
	}
	return out
}

func (r searchResponse) result(limit int) search.Result {
	res := search.Result{Total: r.Hits.Total.Value, Hits: []search.Hit{}}
	for i, h := range r.Hits.Hits {
		if i == limit {
			last := res.Hits[len(res.Hits)-1]
			res.Next = &search.Cursor{Score: last.Score, ID: last.ID}
			break
		}
		hit := h.Source
		if hit.Attributes == nil {
			hit.Attributes = map[string]any{}
		}
		hit.Highlights = h.Highlight
		if hit.Highlights == nil {
			hit.Highlights = map[string][]string{}
		}
		// The sort value, not _score, is what search_after compares against.
		if len(h.Sort) > 0 {
			var s float64
			if json.Unmarshal(h.Sort[0], &s) == nil {
				hit.Score = s
			}
		} else if h.Score != nil {
			hit.Score = *h.Score
		}
		res.Hits = append(res.Hits, hit)
	}
	res.Facets.Category = r.Aggregations.Category.values()
	res.Facets.Attributes = search.SplitAttrFacets(r.Aggregations.Attributes.values())
	res.Facets.Price = make([]search.PriceBucket, 0, len(r.Aggregations.Price.Buckets))
	for _, b := range r.Aggregations.Price.Buckets {
		pb := search.PriceBucket{Key: b.Key, Count: b.DocCount}
		if b.From != nil {
			v := int64(*b.From)
			pb.From = &v
		}
		if b.To != nil {
			v := int64(*b.To)
			pb.To = &v
		}
		res.Facets.Price = append(res.Facets.Price, pb)
	}
	return res
}

// List implements search.Index: a filter-only query (no scoring) sorted by the id keyword,
// paged with search_after on the id, so each page costs the same however deep it is.
func (x *Index) List(ctx context.Context, q search.ListQuery) ([]search.Listed, error) {
	filters := []any{visible()}
	if q.Category != "" {
		filters = append(filters, map[string]any{"term": map[string]any{"category": q.Category}})
	}
	body := map[string]any{
		"size":             q.Limit + 1,
		"track_total_hits": false,
		"query":            map[string]any{"bool": map[string]any{"filter": filters}},
		"sort":             []any{map[string]string{"id": "asc"}},
		"_source":          []string{"id", "name", "description", "category", "price", "attributes", "initialStock", "version", "createdAt", "updatedAt"},
	}
	if q.After != "" {
		body["search_after"] = []any{q.After}
	}
	var resp struct {
		Hits struct {
			Hits []struct {
				Source search.Listed `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if _, err := x.do(ctx, http.MethodPost, "/"+x.alias+"/_search", body, &resp); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	out := make([]search.Listed, len(resp.Hits.Hits))
	for i, h := range resp.Hits.Hits {
		out[i] = h.Source
		if out[i].CreatedAt.IsZero() {
			// Indexed before the listing existed (createdAt was not kept then): until the
			// next rebuild, the update time stands in for it.
			out[i].CreatedAt = out[i].UpdatedAt
		}
		if out[i].Attributes == nil {
			out[i].Attributes = map[string]any{}
		}
	}
	return out, nil
}
