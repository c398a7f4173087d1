// Command seed fills the catalog with deterministic demo products through its HTTP API
// (the catalog's internal API, or the gateway's public one with an admin login). The same
// -seed always produces the same products: product i depends only on (seed, i).
//
// -n is how many products the catalog should hold: the seed counts the live products (the
// catalog's export) and creates products count..n-1, so a seed that stopped halfway (an
// engine timing out on a first ./scripts/up) is completed by the next run, and a catalog
// already holding n products is left alone. -force creates n products (0..n-1) whatever
// is there. Through the gateway (-gateway), which has no export, it does nothing when the
// catalog has any product, unless -force is given.
//
//	go run ./cmd/seed -n 1000 -seed 1 -url http://127.0.0.1:8083
//	go run ./cmd/seed -url https://127.0.0.1:8083 -tls-dir ../../.polyshop/tls   (mutual TLS, as operator)
//	go run ./cmd/seed -url http://127.0.0.1:8080 -gateway -email admin@polyshop.local -password ...
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"polyshop/services/catalog/internal/seed"
	"polyshop/shared/httpx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("n", 1000, "number of products")
	seedVal := fs.Uint64("seed", 1, "PRNG seed; the same seed gives the same products")
	base := fs.String("url", envOr("CATALOG_URL", "http://127.0.0.1:8083"), "catalog base URL, or the gateway's with -gateway")
	gateway := fs.Bool("gateway", false, "talk to the gateway's /api routes and log in as admin")
	email := fs.String("email", os.Getenv("ADMIN_EMAIL"), "admin e-mail for -gateway")
	password := fs.String("password", os.Getenv("ADMIN_PASSWORD"), "admin password for -gateway")
	workers := fs.Int("c", 8, "concurrent requests")
	force := fs.Bool("force", false, "create -n products whatever the catalog holds")
	tlsDir := fs.String("tls-dir", "", "with mutual TLS: the directory of ca.pem and operator.{pem,key} (the identity presented to an https:// catalog)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &client{base: strings.TrimRight(*base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	if *tlsDir != "" {
		cfg, err := httpx.TLSFiles{
			Cert: filepath.Join(*tlsDir, "operator.pem"), Key: filepath.Join(*tlsDir, "operator.key"), CA: filepath.Join(*tlsDir, "ca.pem"),
		}.ClientConfig()
		if err != nil {
			return err
		}
		c.http = httpx.NewClient(30*time.Second, httpx.WithClientTLS(cfg))
	}
	if *gateway {
		c.prefix = "/api"
		if err := c.login(ctx, *email, *password); err != nil {
			return err
		}
	}
	from := 0
	switch {
	case *force:
	case *gateway:
		has, err := c.hasProducts(ctx)
		if err != nil {
			return err
		}
		if has {
			fmt.Fprintln(stdout, "seed: the catalog already has products; nothing to do (use -force to add more)")
			return nil
		}
	default:
		live, err := c.countLive(ctx)
		if err != nil {
			return err
		}
		if live >= *n {
			fmt.Fprintf(stdout, "seed: the catalog already holds %d products (-n %d); nothing to do (use -force to add more)\n", live, *n)
			return nil
		}
		if live > 0 {
			fmt.Fprintf(stdout, "seed: the catalog holds %d products; creating products %d..%d of seed %d\n", live, live, *n-1, *seedVal)
		}
		from = live
	}
	start := time.Now()
	var (
		next    atomic.Int64
		created atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		firstE  error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next.Store(int64(from))
	for range max(*workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || ctx.Err() != nil {
					return
				}
				if err := c.create(ctx, seed.Product(*seedVal, i)); err != nil {
					errOnce.Do(func() { firstE = fmt.Errorf("product %d: %w", i, err); cancel() })
					return
				}
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if firstE != nil {
		return firstE
	}
	fmt.Fprintf(stdout, "seed: created %d products (seed %d) in %s\n", created.Load(), *seedVal, time.Since(start).Round(time.Millisecond))
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type client struct {
	base, prefix, token string
	http                *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+c.prefix+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *client) login(ctx context.Context, email, password string) error {
	if email == "" || password == "" {
		return errors.New("-gateway needs -email and -password (or ADMIN_EMAIL, ADMIN_PASSWORD)")
	}
	var s struct {
		Token string `json:"token"`
	}
	if err := c.do(ctx, http.MethodPost, "/sessions", map[string]string{"email": email, "password": password}, &s); err != nil {
		return fmt.Errorf("log in as %s: %w", email, err)
	}
	c.token = s.Token
	return nil
}

func (c *client) hasProducts(ctx context.Context) (bool, error) {
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/products?limit=1", nil, &page); err != nil {
		return false, fmt.Errorf("check for existing products: %w", err)
	}
	return len(page.Items) > 0, nil
}

// countLive counts the catalog's live products, paging through its export (deleted
// products are tombstones there, and not counted).
func (c *client) countLive(ctx context.Context) (int, error) {
	n, cursor := 0, ""
	for {
		var page struct {
			Items []struct {
				Deleted bool `json:"deleted"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		path := "/export/products?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := c.do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return 0, fmt.Errorf("count the products: %w", err)
		}
		for _, it := range page.Items {
			if !it.Deleted {
				n++
			}
		}
		if page.NextCursor == "" {
			return n, nil
		}
		cursor = page.NextCursor
	}
}

func (c *client) create(ctx context.Context, p any) error {
	return c.do(ctx, http.MethodPost, "/products", p, nil)
}
