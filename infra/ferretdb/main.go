// Command ferretdb runs FerretDB v1 — a MongoDB wire-protocol server — for the native stack
// on machines without Docker.
//
//	ferretdb serve -listen 127.0.0.1:27017 -postgresql-url postgres://127.0.0.1:5432/catalog
//	ferretdb serve -listen 127.0.0.1:27017 -sqlite-dir .polyshop/ferretdb     (the old layout)
//	ferretdb copy-sqlite -dir .polyshop/ferretdb -db catalog -to mongodb://catalog:…@127.0.0.1:27017/catalog?authMechanism=PLAIN
//
// The native stack runs the PostgreSQL backend: FerretDB then passes each client's PLAIN
// user name and password through to PostgreSQL, so only the catalog's own role (and
// database) gets in, and a client without credentials gets nothing. The URL carries no
// password on purpose: with one, FerretDB would let anonymous clients in with it.
// copy-sqlite moves a catalog that an earlier version kept on the SQLite backend across,
// once. FerretDB's own binary panics at start when built from the Go module proxy (it
// expects a generated build/version/version.txt that the module zip lacks), so Polyshop
// embeds the server through its public ferretdb package. docker-compose.yml runs real
// MongoDB; the catalog service must pass the same tests on both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "copy-sqlite":
		err = copySQLite(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ferretdb serve -listen ADDR (-postgresql-url URL | -sqlite-dir DIR)\n       ferretdb copy-sqlite -dir DIR -db NAME -to MONGODB_URI")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	pgURL := fs.String("postgresql-url", "", "PostgreSQL database of the PostgreSQL backend, without a password")
	dir := fs.String("sqlite-dir", "", "directory of the SQLite backend's databases")
	_ = fs.Parse(args)
	cfg := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}}
	switch {
	case *pgURL != "" && *dir == "":
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", *pgURL
	case *dir != "" && *pgURL == "":
		if err := os.MkdirAll(*dir, 0o750); err != nil {
			return err
		}
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+*dir+"/"
	default:
		return errors.New("serve needs exactly one of -postgresql-url and -sqlite-dir")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := ferretdb.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s, %s backend\n", *listen, cfg.Handler)
	f.Run(ctx)
	return nil
}

// copySQLite serves the SQLite databases in dir on a free loopback port, in this process
// only, and copies every collection of database db into the server at to. Documents keep
// their _id; one already there is left as it is, so a copy that was cut short can run again.
// Indexes are not copied: the catalog creates the ones it lacks at start.
func copySQLite(args []string) error {
	fs := flag.NewFlagSet("copy-sqlite", flag.ExitOnError)
	dir := fs.String("dir", "", "directory of the SQLite backend's databases")
	db := fs.String("db", "catalog", "database to copy")
	to := fs.String("to", "", "MongoDB URI of the destination")
	_ = fs.Parse(args)
	if *dir == "" || *to == "" {
		return errors.New("copy-sqlite needs -dir and -to")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	src, err := ferretdb.New(&ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: addr},
		Handler: "sqlite", SQLiteURL: "file:" + *dir + "/"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	go src.Run(ctx)

	from, err := mongo.Connect(ctx, options.Client().ApplyURI("mongodb://"+addr+"/"))
	if err != nil {
		return err
	}
	defer from.Disconnect(context.Background())
	dst, err := mongo.Connect(ctx, options.Client().ApplyURI(*to))
	if err != nil {
		return err
	}
	defer dst.Disconnect(context.Background())

	var names []string
	for attempt := 0; ; attempt++ { // the in-process server needs a moment to listen
		names, err = from.Database(*db).ListCollectionNames(ctx, bson.D{})
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("list collections of %s: %w", *db, err)
	}
	for _, name := range names {
		n, err := copyCollection(ctx, from.Database(*db).Collection(name), dst.Database(*db).Collection(name))
		if err != nil {
			return fmt.Errorf("copy %s.%s: %w", *db, name, err)
		}
		fmt.Fprintf(os.Stderr, "ferretdb: copied %d documents of %s.%s\n", n, *db, name)
	}
	return nil
}

func copyCollection(ctx context.Context, from, to *mongo.Collection) (int, error) {
	cur, err := from.Find(ctx, bson.D{})
	if err != nil {
		return 0, err
	}
	defer cur.Close(ctx)
	n := 0
	for cur.Next(ctx) {
		_, err := to.InsertOne(ctx, cur.Current)
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return n, err
		}
		n++
	}
	return n, cur.Err()
}
