// Command bench measures the catalog→search read model against running services:
//
//	lag      product change (PATCH on catalog) → visible in GET /search, p50/p99
//	search   GET /search latency, p50/p99, at the catalog's current size
//	lookup   product by id through catalog HTTP vs a raw mongo-driver FindOne loop
//
// It prints one line per figure; record the output under testdata/bench-<date>.txt.
//
//	go run ./cmd/bench -catalog http://127.0.0.1:8083 -search http://127.0.0.1:8088 \
//	    -mongo mongodb://127.0.0.1:27017 -db catalog -updates 1000 -queries 1000
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
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/httpx"
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
	updates := flag.Int("updates", 1000, "product updates for the lag measurement (0 to skip)")
	workers := flag.Int("c", 16, "concurrent updaters for the lag measurement")
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

	ids, err := productIDs(ctx, *catalogURL, 2000)
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
		lat, err := lag(ctx, *catalogURL, *searchURL, ids, *updates, *workers)
		if err != nil {
			return err
		}
		fmt.Printf("change→searchable lag  n=%d  concurrency=%d  p50=%s  p99=%s  max=%s\n", len(lat), *workers, pct(lat, 50), pct(lat, 99), pct(lat, 100))
	}
	return nil
}

// lag renames products to a unique token through the catalog and polls search until the
// token is found with the new version.
func lag(ctx context.Context, catalogURL, searchURL string, ids []string, n, workers int) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		out  []time.Duration
		errs []error
		wg   sync.WaitGroup
		next = make(chan int)
	)
	run := fmt.Sprintf("%x", rand.Uint32())
	for w := range workers {
		wg.Go(func() {
			for i := range next {
				id := ids[(i*workers+w)%len(ids)]
				token := fmt.Sprintf("lagprobe%s%d", run, i)
				var p struct {
					Name    string `json:"name"`
					Version int64  `json:"version"`
				}
				if err := getJSON(ctx, catalogURL+"/products/"+id, &p); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				body, _ := json.Marshal(map[string]any{"description": "Benchmark probe " + token})
				start := time.Now()
				if err := send(ctx, http.MethodPatch, catalogURL+"/products/"+id, body); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				deadline := start.Add(60 * time.Second)
				for time.Now().Before(deadline) {
					total, err := searchTotal(ctx, searchURL, url.Values{"q": {token}})
					if err == nil && total > 0 {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				d := time.Since(start)
				mu.Lock()
				out = append(out, d)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return out, fmt.Errorf("%d updates failed, first: %w", len(errs), errs[0])
	}
	return out, nil
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
