package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/search/internal/esindex"
	"polyshop/services/search/internal/esindex/estest"
	"polyshop/shared/broker"
	"polyshop/shared/config"
	"polyshop/shared/testenv"
	"polyshop/shared/testenv/natstest"
)

func TestLoadConfigDefaults(t *testing.T) {
	got, err := loadConfig(config.MapGetenv(map[string]string{
		"SEARCH_ELASTICSEARCH_URL": "http://127.0.0.1:9200",
		"SEARCH_NATS_URL":          "nats://search:x@127.0.0.1:4222",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Durable != "search" || got.StockDurable != "search-inventory" || got.Concurrency != 4 || got.ES.Alias != "products" {
		t.Errorf("defaults: %+v", got)
	}
	if got.ES.RefreshInterval != DefaultRefreshInterval || got.Service.Refresh != DefaultRefreshInterval || got.Service.ListCacheTTL != time.Second {
		t.Errorf("refresh %s, cache's refresh %s, list cache TTL %s; want %s, %s, 1s", got.ES.RefreshInterval, got.Service.Refresh, got.Service.ListCacheTTL, DefaultRefreshInterval, DefaultRefreshInterval)
	}
}

// SEARCH_REFRESH_INTERVAL sets the index's refresh and how long the listing cache keeps a
// page read before a change's refresh; zero, negative or malformed is a configuration error
// naming the variable.
func TestLoadConfigRefreshInterval(t *testing.T) {
	base := map[string]string{"SEARCH_ELASTICSEARCH_URL": "http://127.0.0.1:9200", "SEARCH_NATS_URL": "nats://search:x@127.0.0.1:4222"}
	with := func(kv ...string) config.Getenv {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return config.MapGetenv(m)
	}
	got, err := loadConfig(with("SEARCH_REFRESH_INTERVAL", "250ms"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ES.RefreshInterval != 250*time.Millisecond || got.Service.Refresh != 250*time.Millisecond {
		t.Errorf("refresh %s, list cache's refresh %s; want 250ms each", got.ES.RefreshInterval, got.Service.Refresh)
	}
	got, err = loadConfig(with("SEARCH_REFRESH_INTERVAL", "250ms", "SEARCH_LIST_CACHE_TTL", "2s"))
	if err != nil || got.Service.ListCacheTTL != 2*time.Second {
		t.Errorf("SEARCH_LIST_CACHE_TTL=2s: %s, %v", got.Service.ListCacheTTL, err)
	}
	for _, bad := range []string{"0s", "-1s", "soon"} {
		if _, err := loadConfig(with("SEARCH_REFRESH_INTERVAL", bad)); err == nil || !strings.Contains(err.Error(), "SEARCH_REFRESH_INTERVAL") {
			t.Errorf("SEARCH_REFRESH_INTERVAL=%s: error %v, want one naming the variable", bad, err)
		}
	}
}

// The service starts with the stack's settings (its own alias and durable names, so it
// disturbs nothing), is ready, answers a search with inStock and a rebuild from both
// owners (exports and streams), logs no secret, and stops cleanly.
func TestRunServesAndRebuildsFromBothStreams(t *testing.T) {
	cfg := estest.Config(t)
	x, err := esindex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Require(t, "elasticsearch", x.Ping(context.Background()))
	t.Cleanup(func() { _ = x.DeleteAll(context.Background()) })
	nc := natstest.Conn(t, "SEARCH_NATS_URL", "search")
	// The owners' exports and the catalog listing, empty: the running catalog and inventory
	// are not this test's (their export endpoints are tested in their services).
	owners := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[]}`)
	}))
	t.Cleanup(owners.Close)
	env := map[string]string{
		"CATALOG_URL":                owners.URL,
		"INVENTORY_URL":              owners.URL,
		"SEARCH_ELASTICSEARCH_ALIAS": cfg.Alias,
		"SEARCH_CONSUMER":            natstest.Durable(t, nc, broker.StreamName("catalog"), "search-test"),
		"SEARCH_INVENTORY_CONSUMER":  durable(t, nc, broker.StreamName("inventory"), "search-test-inventory"),
	}
	run := func(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
		return run(ctx, getenv, stdout)
	}
	s := testenv.StartService(t, run, "SEARCH_HTTP_ADDR", env)

	get := func(method, path string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+s.Addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return resp.StatusCode
	}
	if st := get("GET", "/search?inStock=true", nil); st != http.StatusOK {
		t.Errorf("GET /search?inStock=true = %d", st)
	}
	if st := get("GET", "/search?inStock=perhaps", nil); st != http.StatusBadRequest {
		t.Errorf("GET /search?inStock=perhaps = %d, want 400", st)
	}
	var rep struct {
		Swapped bool `json:"swapped"`
		Sources []struct {
			Source string `json:"source"`
			Stream string `json:"stream"`
		} `json:"sources"`
	}
	if st := get("POST", "/admin/rebuild", &rep); st != http.StatusOK || !rep.Swapped {
		t.Fatalf("POST /admin/rebuild = %d, swapped %v", st, rep.Swapped)
	}
	var names []string
	for _, r := range rep.Sources {
		names = append(names, r.Source+"/"+r.Stream)
	}
	if diff := cmp.Diff(names, []string{"catalog/CATALOG", "inventory/INVENTORY"}); diff != "" {
		t.Errorf("rebuilt streams (-got +want):\n%s", diff)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("run: %v", err)
	}
	s.CheckNoSecrets(t, "SEARCH_ELASTICSEARCH_PASSWORD", "SEARCH_NATS_PASSWORD")
}

// durable is natstest.Durable for a stream that may not exist (INVENTORY before inventory
// first runs): the consumer is deleted at cleanup if it was created.
func durable(t *testing.T, nc *broker.Conn, stream, prefix string) string {
	t.Helper()
	name := testenv.UniqueName(t, prefix)
	t.Cleanup(func() {
		err := nc.JetStream().DeleteConsumer(context.Background(), stream, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete consumer %s on %s: %v", name, stream, err)
		}
	})
	return name
}
