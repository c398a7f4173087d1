// Command bench measures the catalog→search read model against running services:
//
//	lag      product change (PATCH on catalog) → visible in GET /search, p50/p90/p99, at a
//	         constant rate of changes (-rate, open model), with the CPU share of
//	         Elasticsearch, search, catalog, FerretDB, PostgreSQL and NATS while it ran
//	search   GET /search latency, p50/p99, at the catalog's current size
//	lookup   product by id through catalog HTTP vs a raw mongo-driver FindOne loop
//
// It prints one line per figure; record the output under testdata/bench-<date>.txt.
//
//	go run ./cmd/bench -catalog http://127.0.0.1:8083 -search http://127.0.0.1:8088 \
//	    -mongo mongodb://127.0.0.1:27017 -db catalog -updates 600 -rate 10 -queries 1000
//	go run ./cmd/bench ... -queries 0 -lookups 0 -updates 600 -rate 10    (the lag alone)
//
// The lag probe queries Elasticsearch directly (-es, the search user's password from
// $SEARCH_ELASTICSEARCH_PASSWORD, as ./scripts/lib's load_env sets it).
//
// With mutual TLS on (POLYSHOP_TLS=on): https:// URLs and -tls-dir .polyshop/tls (operator).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/httpx"
	"polyshop/shared/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func run() error {
	catalogURL := flag.String("catalog", "http://127.0.0.1:8083", "catalog base URL")
	searchURL := flag.String("search", "http://127.0.0.1:8088", "search base URL")
	mongoURI := flag.String("mongo", "mongodb://127.0.0.1:27017", "MongoDB URI for the raw lookup loop")
	db := flag.String("db", "catalog", "catalog database")
	updates := flag.Int("updates", 600, "product changes for the lag measurement (0 to skip)")
	rate := flag.Float64("rate", 10, "changes per second for the lag measurement (constant arrival rate)")
	poll := flag.Duration("poll", 25*time.Millisecond, "how often the index is asked for the pending changes (one query for all)")
	esURL := flag.String("es", os.Getenv("SEARCH_ELASTICSEARCH_URL"), "Elasticsearch URL for the lag probe (default $SEARCH_ELASTICSEARCH_URL; password from $SEARCH_ELASTICSEARCH_PASSWORD)")
	esUser := flag.String("es-user", "search", "Elasticsearch user for the lag probe")
	alias := flag.String("alias", "products", "the search index's alias")
	queries := flag.Int("queries", 1000, "search queries (0 to skip)")
	lookups := flag.Int("lookups", 2000, "lookups by id per side (0 to skip)")
	tlsDir := flag.String("tls-dir", "", "with mutual TLS (https:// URLs): the directory of ca.pem and operator.{pem,key}, the identity presented")
	flag.Parse()
	if *tlsDir != "" {
		cfg, err := httpx.TLSFiles{
			Cert: filepath.Join(*tlsDir, "operator.pem"), Key: filepath.Join(*tlsDir, "operator.key"), CA: filepath.Join(*tlsDir, "ca.pem"),
		}.ClientConfig()
		if err != nil {
			return err
		}
		hc.Transport.(*http.Transport).TLSClientConfig = cfg
	}
	ctx := context.Background()

	ids, err := productIDs(ctx, *searchURL, 2000) // the listing read model: the catalog pages slowly on FerretDB
	if err != nil {
		return err
	}
	total, err := searchTotal(ctx, *searchURL, url.Values{})
	if err != nil {
		return err
	}
	fmt.Printf("date %s  products in search index %d  (sampled %d ids)\n", time.Now().UTC().Format(time.RFC3339), total, len(ids))

	if *queries > 0 {
		terms := []string{"kettle", "steel", "shirt", "linen", "book", "harbour", "headphones wireless", "sofa velvet", "coffee", "dark roast", "navy", "compact"}
		cats := []string{"", "", "kettle", "book", "coffee"}
		lat := make([]time.Duration, 0, *queries)
		for i := range *queries {
			v := url.Values{"q": {terms[i%len(terms)]}, "limit": {"20"}}
			if c := cats[i%len(cats)]; c != "" {
				v.Set("category", c)
			}
			if i%3 == 0 {
				v.Set("minPrice", "1000")
				v.Set("maxPrice", "10000")
			}
			start := time.Now()
			if _, err := searchTotal(ctx, *searchURL, v); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
		}
		fmt.Printf("search latency  n=%d  products=%d  p50=%s  p99=%s\n", len(lat), total, pct(lat, 50), pct(lat, 99))
	}

	if *lookups > 0 {
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(*mongoURI))
		if err != nil {
			return err
		}
		defer client.Disconnect(ctx)
		coll := client.Database(*db).Collection("products")
		n := min(*lookups, 100000)
		httpLat := make([]time.Duration, 0, n)
		start := time.Now()
		for i := range n {
			t := time.Now()
			if err := getJSON(ctx, *catalogURL+"/products/"+ids[i%len(ids)], nil); err != nil {
				return err
			}
			httpLat = append(httpLat, time.Since(t))
		}
		httpTotal := time.Since(start)
		rawLat := make([]time.Duration, 0, n)
		start = time.Now()
		for i := range n {
			t := time.Now()
			var doc bson.M
			if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids[i%len(ids)]}}).Decode(&doc); err != nil {
				return fmt.Errorf("raw FindOne: %w", err)
			}
			rawLat = append(rawLat, time.Since(t))
		}
		rawTotal := time.Since(start)
		fmt.Printf("lookup by id  n=%d  catalog HTTP p50=%s p99=%s (%.0f/s)  raw FindOne p50=%s p99=%s (%.0f/s)  ratio HTTP/raw p50=%.2fx throughput=%.2fx\n",
			n, pct(httpLat, 50), pct(httpLat, 99), float64(n)/httpTotal.Seconds(),
			pct(rawLat, 50), pct(rawLat, 99), float64(n)/rawTotal.Seconds(),
			float64(pct(httpLat, 50))/float64(pct(rawLat, 50)), rawTotal.Seconds()/httpTotal.Seconds())
	}

	if *updates > 0 {
		if *rate <= 0 || *poll <= 0 {
			return fmt.Errorf("-rate and -poll must be positive")
		}
		before := readCPU()
		load0 := testenv.LoadAvg()
		probe := esProbe{url: *esURL, user: *esUser, password: os.Getenv("SEARCH_ELASTICSEARCH_PASSWORD"), alias: *alias}
		r, err := lag(ctx, *catalogURL, probe, ids, *updates, *rate, *poll)
		if err != nil {
			return err
		}
		fmt.Printf("change→searchable lag  n=%d  rate=%.1f/s (sent in %s)  poll=%s  p50=%s  p90=%s  p99=%s  max=%s  (PATCH answered: p50=%s p99=%s; %d probe queries, %d failed)\n",
			len(r.lag), *rate, r.sent.Round(time.Millisecond), *poll, pct(r.lag, 50), pct(r.lag, 90), pct(r.lag, 99), pct(r.lag, 100),
			pct(r.commit, 50), pct(r.commit, 99), r.polls, r.failedPolls)
		fmt.Printf("  CPU during it (share of one core): %s  load average %s → %s\n", cpuShares(before, readCPU()), load0, testenv.LoadAvg())
	}
	return nil
}

// lag changes products through the catalog at a constant rate (an open model: change i is
// sent at start + i/rate whatever the platform does, so a slow platform is not given time
// to catch up). Each change writes a unique token into a product's description; one poller
// asks the index every poll, in a single query, which of the pending tokens it finds — what
// a search for the token would return at that moment. (Polling GET /search once per pending
// change sent hundreds of full-text queries a second, more than the search service admits,
// and the probe's own load became the lag.) A change's lag runs from its intended send time
// to the first poll that finds it; the PATCH's answer time is reported beside it. Each change
// goes to another product.
func lag(ctx context.Context, catalogURL string, es esProbe, ids []string, n int, rate float64, poll time.Duration) (lagResult, error) {
	var (
		mu      sync.Mutex
		res     lagResult
		wg      sync.WaitGroup
		pending = map[string]time.Time{} // token → intended send time
	)
	run := fmt.Sprintf("%x", rand.Uint32())
	perm := rand.Perm(len(ids))
	pollerDone := make(chan struct{})
	sending := make(chan struct{})
	go func() {
		defer close(pollerDone)
		for {
			time.Sleep(poll)
			mu.Lock()
			tokens := make([]string, 0, len(pending))
			for t := range pending {
				tokens = append(tokens, t)
			}
			mu.Unlock()
			select {
			case <-sending:
				if len(tokens) == 0 {
					return
				}
			default:
			}
			if len(tokens) == 0 {
				continue
			}
			found, err := es.find(ctx, tokens)
			now := time.Now()
			mu.Lock()
			res.polls++
			if err != nil {
				res.failedPolls++
			}
			for _, t := range found {
				if due, ok := pending[t]; ok {
					res.lag = append(res.lag, now.Sub(due))
					delete(pending, t)
				}
			}
			for t, due := range pending {
				if now.Sub(due) > 60*time.Second {
					res.errs = append(res.errs, fmt.Errorf("change %s not searchable after 60 s", t))
					delete(pending, t)
				}
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(due))
		id := ids[perm[i%len(perm)]]
		wg.Go(func() {
			token := fmt.Sprintf("lagprobe%s%d", run, i)
			body, _ := json.Marshal(map[string]any{"description": "Benchmark probe " + token})
			mu.Lock()
			pending[token] = due
			mu.Unlock()
			err := send(ctx, http.MethodPatch, catalogURL+"/products/"+id, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				delete(pending, token)
				res.errs = append(res.errs, err)
				return
			}
			res.commit = append(res.commit, time.Since(due))
		})
	}
	res.sent = time.Since(start)
	wg.Wait()
	close(sending)
	<-pollerDone
	if len(res.errs) > 0 {
		return res, fmt.Errorf("%d of %d changes failed, first: %w", len(res.errs), n, res.errs[0])
	}
	return res, nil
}

// esProbe asks the index behind the search alias which tokens it finds (the search user's
// credentials; the same index GET /search reads).
type esProbe struct {
	url, user, password, alias string
}

func (p esProbe) find(ctx context.Context, tokens []string) ([]string, error) {
	q, _ := json.Marshal(map[string]any{
		"size": len(tokens), "_source": []string{"description"},
		"query": map[string]any{"terms": map[string]any{"description": tokens}},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/"+p.alias+"/_search", bytes.NewReader(q))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(p.user, p.password)
	resp, err := esClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Hits struct {
			Hits []struct {
				Source struct {
					Description string `json:"description"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("probe query: %d %s", resp.StatusCode, data)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range r.Hits.Hits {
		for _, w := range strings.Fields(h.Source.Description) {
			if strings.HasPrefix(w, "lagprobe") {
				out = append(out, w)
			}
		}
	}
	return out, nil
}

var esClient = &http.Client{Timeout: 10 * time.Second}

type lagResult struct {
	lag, commit        []time.Duration
	polls, failedPolls int
	sent               time.Duration
	errs               []error
}

func productIDs(ctx context.Context, base string, max int) ([]string, error) {
	var ids []string
	cursor := ""
	for len(ids) < max {
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		u := base + "/products?limit=100"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if err := getJSON(ctx, u, &page); err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("the catalog has no products; seed it first")
	}
	return ids, nil
}

func searchTotal(ctx context.Context, base string, v url.Values) (int64, error) {
	var r struct {
		Total int64 `json:"total"`
	}
	err := getJSON(ctx, base+"/search?"+v.Encode(), &r)
	return r.Total, err
}

func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func send(ctx context.Context, method, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, data)
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)].Round(10 * time.Microsecond)
}

// cpuSample is the CPU time of the processes the lag depends on, by group.
type cpuSample struct {
	at  time.Time
	cpu map[string]time.Duration
}

// watched names the processes whose CPU the lag run reports: by process name, or for
// Elasticsearch (a "java" like Cassandra) by its main class.
var watched = []struct {
	name  string
	match func(name, cmdline string) bool
}{
	{"elasticsearch", func(_, cmd string) bool { return strings.Contains(cmd, "org.elasticsearch.bootstrap") }},
	{"search", named("svc-search")},
	{"catalog", named("svc-catalog")},
	{"ferretdb", named("ferretdb")},
	{"postgres", named("postgres")},
	{"nats", named("nats-server")},
}

func named(n string) func(string, string) bool {
	return func(name, _ string) bool { return name == n }
}

func readCPU() cpuSample {
	s := cpuSample{at: time.Now(), cpu: map[string]time.Duration{}}
	for _, w := range watched {
		s.cpu[w.name] = testenv.CPUTime(w.match)
	}
	return s
}

// cpuShares prints each watched group's CPU use between two samples, in % of one core.
func cpuShares(a, b cpuSample) string {
	wall := b.at.Sub(a.at)
	var parts []string
	for _, w := range watched {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", w.name, float64(b.cpu[w.name]-a.cpu[w.name])/float64(wall)*100))
	}
	return strings.Join(parts, ", ")
}
