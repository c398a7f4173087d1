// Command ferretdb runs FerretDB v1 — a MongoDB wire-protocol server — on SQLite, for the
// native stack on machines without Docker.
//
// FerretDB's own binary panics at start when built from the Go module proxy (it expects a
// generated build/version/version.txt that the module zip lacks), so Polyshop embeds the
// server through its public ferretdb package instead. docker-compose.yml runs real MongoDB;
// the catalog service must pass the same tests on both.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", "", "directory for the SQLite databases (required)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s, data in %s\n", *listen, *dir)
	f.Run(ctx)
}
