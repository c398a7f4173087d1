// Command lab runs Polyshop's labs (issue 16) against the running platform:
//
//	./scripts/lab list             the labs
//	./scripts/lab start N          reset, switches on, users signed up, instructions printed
//	./scripts/lab hint N           the next hint
//	./scripts/lab verify N         each unmet point as "FAIL: …"; exit 0 only when none
//	./scripts/lab solve N          reach the end state (to skip)
//	./scripts/lab reset N          switches off, the lab's users and data deleted
//	./scripts/lab test all|N...    self-test: reset → start → verify fails → solve → verify passes → reset → platform as before
//	./scripts/lab -shared test N   the same on a platform others use too: the audit counts only the lab's own findings
//
// N is the number (4 or 04) or the slug. Exit status: 0 done, 1 not met (verify) or a
// broken lab (test), 2 the runner could not work (platform down, bad manifest).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"polyshop/infra/checks/internal/labs"
)

func main() {
	root := flag.String("root", os.Getenv("POLYSHOP_ROOT"), "repository root (default: found from the working directory)")
	shared := flag.Bool("shared", false, "test: the platform is shared with other work; the audit counts only findings naming the lab's own orders and products")
	gateway := flag.String("gateway", "http://"+getenv("GATEWAY_HTTP_ADDR", "127.0.0.1:8080"), "the gateway's base URL")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: lab list | start N | hint N | verify N | solve N | reset N | test all|N...")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *root == "" {
		*root = findRoot()
	}
	r, err := labs.NewRunner(*root, *gateway, os.Stdout)
	if err != nil {
		fail(err)
	}
	r.Shared = *shared
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := args[0]
	if cmd == "list" {
		r.List()
		return
	}
	if len(args) < 2 {
		flag.Usage()
		os.Exit(2)
	}
	if cmd == "test" {
		os.Exit(selfTest(ctx, r, args[1:]))
	}
	m, err := r.Lab(args[1])
	if err != nil {
		fail(err)
	}
	switch cmd {
	case "start":
		err = r.Start(ctx, m, false)
	case "hint":
		err = r.Hint(m)
	case "verify":
		_, err = r.Verify(ctx, m)
		if errors.Is(err, labs.ErrUnmet) {
			os.Exit(1)
		}
	case "solve":
		err = r.Solve(ctx, m)
	case "reset":
		err = r.Reset(ctx, m)
		if err == nil {
			fmt.Printf("Lab %02d reset: switches off, its users and data deleted.\n", m.ID)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func selfTest(ctx context.Context, r *labs.Runner, which []string) int {
	var ms []labs.Manifest
	if len(which) == 1 && which[0] == "all" {
		ms = r.Labs()
	} else {
		for _, a := range which {
			m, err := r.Lab(a)
			if err != nil {
				fail(err)
			}
			ms = append(ms, m)
		}
	}
	t0 := time.Now()
	var broken []string
	tested := 0
	for _, m := range ms {
		if !labs.Registered(m.ID) {
			fmt.Printf("skip lab %02d %s: no Go functions yet\n", m.ID, m.Slug)
			continue
		}
		tested++
		fmt.Printf("=== lab %02d %s\n", m.ID, m.Slug)
		if err := r.SelfTest(ctx, m); err != nil {
			fmt.Printf("FAIL lab %02d %s: %v\n", m.ID, m.Slug, err)
			broken = append(broken, fmt.Sprintf("%02d-%s", m.ID, m.Slug))
		}
	}
	fmt.Printf("labs: %d tested, %d broken, %.0fs\n", tested, len(broken), time.Since(t0).Seconds())
	if len(broken) > 0 {
		fmt.Println("broken:", broken)
		return 1
	}
	return 0
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lab:", err)
	os.Exit(2)
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func findRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "scripts", "labs")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
