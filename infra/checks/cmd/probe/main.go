// Command probe checks, with the same client libraries the services use, that an engine of
// the native stack answers real requests. The bring-up scripts call it to decide readiness.
//
//	probe postgres URL          SELECT 1
//	probe redis URL             PING as the URL's user
//	probe mongo URI             ping command
//	probe nats URL              connect and read the JetStream account info
//	probe cassandra HOSTS USER PASSWORD   SELECT release_version FROM system.local
//	probe elasticsearch URL [USER PASSWORD]   Info() through go-elasticsearch (product check)
//
// It exits 0 when the engine answered, 1 otherwise, and prints the error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/gocql/gocql"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("usage: probe postgres|redis|mongo|nats|cassandra|elasticsearch ARGS")
	}
	switch args[0] {
	case "postgres":
		return probePostgres(ctx, args[1])
	case "redis":
		return probeRedis(ctx, args[1])
	case "mongo":
		return probeMongo(ctx, args[1])
	case "nats":
		return probeNATS(ctx, args[1])
	case "cassandra":
		if len(args) != 4 {
			return errors.New("usage: probe cassandra HOSTS USER PASSWORD")
		}
		return probeCassandra(args[1], args[2], args[3])
	case "elasticsearch":
		user, pass := "", ""
		if len(args) == 4 {
			user, pass = args[2], args[3]
		}
		return probeElasticsearch(ctx, args[1], user, pass)
	}
	return fmt.Errorf("unknown engine %q", args[0])
}

func probePostgres(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func probeRedis(ctx context.Context, url string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	return rdb.Ping(ctx).Err()
}

func probeMongo(ctx context.Context, uri string) error {
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetServerSelectionTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer client.Disconnect(context.Background())
	return client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

func probeNATS(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.Name("polyshop-probe"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.AccountInfo(ctx)
	return err
}

func probeCassandra(hosts, user, pass string) error {
	cluster := gocql.NewCluster(strings.Split(hosts, ",")...)
	cluster.Authenticator = gocql.PasswordAuthenticator{Username: user, Password: pass}
	cluster.Timeout = 5 * time.Second
	cluster.ConnectTimeout = 5 * time.Second
	cluster.DisableInitialHostLookup = true
	s, err := cluster.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	var v string
	return s.Query("SELECT release_version FROM system.local").Scan(&v)
}

func probeElasticsearch(ctx context.Context, url, user, pass string) error {
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, Username: user, Password: pass})
	if err != nil {
		return err
	}
	res, err := es.Info(es.Info.WithContext(ctx))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		return errors.New(res.String())
	}
	return nil
}
