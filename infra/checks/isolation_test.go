package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/gocql/gocql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"polyshop/shared/testenv"
)

// The isolation tests run against the native stack with the credentials of infra/local.env:
// each service reaches its own store, and the same credentials are refused everywhere else.

func TestPostgresRoleEntersOnlyItsOwnDatabase(t *testing.T) {
	// bench is the access-pattern harness (./scripts/bench): an owner like the services.
	owners := []string{"users", "inventory", "orders", "payments", "bench"}
	ctx := context.Background()
	for _, owner := range owners {
		url := testenv.Getenv(strings.ToUpper(owner) + "_DATABASE_URL")
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatalf("%s: %v", owner, err)
		}
		t.Run(owner+"/own", func(t *testing.T) {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			testenv.Require(t, "postgres", err)
			defer conn.Close(ctx)
			var user, db string
			if err := conn.QueryRow(ctx, "SELECT current_user, current_database()").Scan(&user, &db); err != nil {
				t.Fatal(err)
			}
			if user != owner || db != owner {
				t.Errorf("connected as %s to %s, want %s to %s", user, db, owner, owner)
			}
		})
		for _, other := range append(owners, "postgres", "template1", "catalog") {
			if other == owner {
				continue
			}
			t.Run(owner+"/"+other, func(t *testing.T) {
				c := cfg.Copy()
				c.Database = other
				conn, err := pgx.ConnectConfig(ctx, c)
				if err == nil {
					conn.Close(ctx)
					t.Fatalf("role %s connected to database %s; want refused", owner, other)
				}
				// 42501 insufficient_privilege: "permission denied for database".
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Fatalf("connect %s to %s: %v, want permission denied (42501)", owner, other, err)
				}
			})
		}
	}
}

func TestRedisSessionsUserIsConfinedToItsPrefix(t *testing.T) {
	ctx := context.Background()
	opt, err := redis.ParseURL(testenv.Getenv("SESSIONS_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	testenv.Require(t, "redis", rdb.Ping(ctx).Err())

	key := "sessions:isolation-test:" + fmt.Sprint(time.Now().UnixNano())
	if err := rdb.Set(ctx, key, "1", time.Minute).Err(); err != nil {
		t.Fatalf("SET own key: %v", err)
	}
	rdb.Del(ctx, key)

	refused := map[string]func() error{
		"SET outside prefix": func() error { return rdb.Set(ctx, "catalog:x", "1", time.Minute).Err() },
		"GET outside prefix": func() error { return rdb.Get(ctx, "users:x").Err() },
		"FLUSHALL":           func() error { return rdb.FlushAll(ctx).Err() },
		"KEYS":               func() error { return rdb.Keys(ctx, "*").Err() },
		"CONFIG GET":         func() error { return rdb.ConfigGet(ctx, "*").Err() },
		"ACL LIST":           func() error { return rdb.Do(ctx, "ACL", "LIST").Err() },
	}
	for name, call := range refused {
		if err := call(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%s as sessions: err = %v, want NOPERM", name, err)
		}
	}

	anon := redis.NewClient(&redis.Options{Addr: opt.Addr})
	defer anon.Close()
	if err := anon.Get(ctx, key).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET without a password: err = %v, want NOAUTH", err)
	}
}

// TestNATSUserPublishesOnlyUnderItsPrefix checks a service user (users) and the tests' own
// user (test, shared/testenv/natstest), which may publish only in the test namespace: no
// test can put an event on a live owner stream, or create or change one.
func TestNATSUserPublishesOnlyUnderItsPrefix(t *testing.T) {
	cases := []struct {
		user, urlVar, own string
		refused           []string
	}{
		{"users", "USERS_NATS_URL", "users.isolation_test.v1",
			[]string{"orders.order_placed.v1", "catalog.product_created.v1", "dlq.search.x", "$JS.API.STREAM.DELETE.ORDERS"}},
		{"test", "TEST_NATS_URL", "test.isolation.check.v1",
			[]string{"users.registered.v1", "catalog.product_created.v1", "sessions.test_x.v1", "dlq.users.x",
				"$JS.API.STREAM.CREATE.USERS", "$JS.API.STREAM.UPDATE.CATALOG", "$JS.API.STREAM.PURGE.SESSIONS",
				"$JS.API.STREAM.DELETE.TEST_USERS"}},
	}
	for _, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			violations := make(chan error, 10)
			nc, err := nats.Connect(testenv.Getenv(tc.urlVar),
				nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
			testenv.Require(t, "nats", err)
			defer nc.Close()

			if err := nc.Publish(tc.own, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-violations:
				t.Fatalf("publish on own prefix refused: %v", err)
			case <-time.After(200 * time.Millisecond):
			}

			for _, subject := range tc.refused {
				if err := nc.Publish(subject, []byte("{}")); err != nil {
					t.Fatal(err)
				}
				nc.Flush()
				select {
				case err := <-violations:
					if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
						t.Errorf("publish %s: error %v, want a permissions violation", subject, err)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("publish %s as %s was accepted; want a permissions violation", subject, tc.user)
				}
			}
		})
	}
}

func TestCassandraActivityRoleOwnsOnlyItsKeyspace(t *testing.T) {
	cluster := gocql.NewCluster(strings.Split(testenv.Getenv("ACTIVITY_CASSANDRA_HOSTS"), ",")...)
	cluster.Authenticator = gocql.PasswordAuthenticator{
		Username: testenv.Getenv("ACTIVITY_CASSANDRA_USERNAME"),
		Password: testenv.Getenv("ACTIVITY_CASSANDRA_PASSWORD"),
	}
	cluster.Timeout = 10 * time.Second
	cluster.DisableInitialHostLookup = true
	s, err := cluster.CreateSession()
	testenv.Require(t, "cassandra", err)
	defer s.Close()

	ks := testenv.Getenv("ACTIVITY_CASSANDRA_KEYSPACE")
	table := ks + ".isolation_probe"
	if err := s.Query("CREATE TABLE IF NOT EXISTS " + table + " (id int PRIMARY KEY)").Exec(); err != nil {
		t.Fatalf("create a table in its own keyspace: %v", err)
	}
	if err := s.Query("INSERT INTO " + table + " (id) VALUES (1)").Exec(); err != nil {
		t.Fatalf("write its own keyspace: %v", err)
	}
	refused := []string{
		"CREATE KEYSPACE isolation_other WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"SELECT role, salted_hash FROM system_auth.roles",
		"CREATE ROLE intruder WITH LOGIN = true AND PASSWORD = 'x'",
		"GRANT ALL PERMISSIONS ON ALL KEYSPACES TO " + testenv.Getenv("ACTIVITY_CASSANDRA_USERNAME"),
	}
	for _, q := range refused {
		err := s.Query(q).Exec()
		var reqErr gocql.RequestError
		if !errors.As(err, &reqErr) || reqErr.Code() != gocql.ErrCodeUnauthorized {
			t.Errorf("%q as activity: err = %v, want an Unauthorized error", q, err)
		}
	}
}

func TestElasticsearchSearchUserOwnsOnlyItsIndices(t *testing.T) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{testenv.Getenv("SEARCH_ELASTICSEARCH_URL")},
		Username:  testenv.Getenv("SEARCH_ELASTICSEARCH_USERNAME"),
		Password:  testenv.Getenv("SEARCH_ELASTICSEARCH_PASSWORD"),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Info()
	testenv.Require(t, "elasticsearch", err)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("Info as search: %s", res.Status())
	}
	own := "search-" + testenv.UniqueName(t, "isolation")
	res, err = es.Indices.Create(own)
	if err != nil || res.IsError() {
		t.Fatalf("create own index %s: %v %v", own, err, res)
	}
	res.Body.Close()
	t.Cleanup(func() {
		if r, err := es.Indices.Delete([]string{own}); err == nil {
			r.Body.Close()
		}
	})
	for _, other := range []string{"orders-isolation", ".security"} {
		res, err := es.Indices.Create(other)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("create index %s as search: %s, want 403", other, res.Status())
		}
	}
	anon, _ := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{testenv.Getenv("SEARCH_ELASTICSEARCH_URL")}})
	if res, err := anon.Indices.Create("anonymous-isolation"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("create index without credentials: %s, want 401", res.Status())
		}
	}
}

// TestBenchCredentialsReachOnlyTheHarnessData checks the access-pattern harness's own
// credentials (BENCH_* in infra/local.env): its Redis user is confined to bench:*, its
// Cassandra role to the bench keyspace, its Elasticsearch user to bench-* indices.
func TestBenchCredentialsReachOnlyTheHarnessData(t *testing.T) {
	ctx := context.Background()
	t.Run("redis", func(t *testing.T) {
		opt, err := redis.ParseURL(testenv.Getenv("BENCH_REDIS_URL"))
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		testenv.Require(t, "redis", rdb.Ping(ctx).Err())
		key := "bench:isolation-test:" + fmt.Sprint(time.Now().UnixNano())
		if err := rdb.Set(ctx, key, "1", time.Minute).Err(); err != nil {
			t.Fatalf("SET own key: %v", err)
		}
		rdb.Del(ctx, key)
		for name, err := range map[string]error{
			"GET sessions:x": rdb.Get(ctx, "sessions:x").Err(),
			"FLUSHALL":       rdb.FlushAll(ctx).Err(),
			"KEYS":           rdb.Keys(ctx, "*").Err(),
		} {
			if err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Errorf("%s as bench: err = %v, want NOPERM", name, err)
			}
		}
	})
	t.Run("cassandra", func(t *testing.T) {
		cluster := gocql.NewCluster(strings.Split(testenv.Getenv("BENCH_CASSANDRA_HOSTS"), ",")...)
		cluster.Authenticator = gocql.PasswordAuthenticator{
			Username: testenv.Getenv("BENCH_CASSANDRA_USERNAME"), Password: testenv.Getenv("BENCH_CASSANDRA_PASSWORD")}
		cluster.Timeout = 10 * time.Second
		cluster.DisableInitialHostLookup = true
		s, err := cluster.CreateSession()
		testenv.Require(t, "cassandra", err)
		defer s.Close()
		ks := testenv.Getenv("BENCH_CASSANDRA_KEYSPACE")
		if err := s.Query("CREATE TABLE IF NOT EXISTS " + ks + ".isolation_probe (id int PRIMARY KEY)").Exec(); err != nil {
			t.Fatalf("create a table in its own keyspace: %v", err)
		}
		err = s.Query("CREATE TABLE IF NOT EXISTS " + testenv.Getenv("ACTIVITY_CASSANDRA_KEYSPACE") + ".bench_intrusion (id int PRIMARY KEY)").Exec()
		var reqErr gocql.RequestError
		if !errors.As(err, &reqErr) || reqErr.Code() != gocql.ErrCodeUnauthorized {
			t.Errorf("create a table in the activity keyspace as bench: err = %v, want an Unauthorized error", err)
		}
	})
	t.Run("elasticsearch", func(t *testing.T) {
		es, err := elasticsearch.NewClient(elasticsearch.Config{
			Addresses: []string{testenv.Getenv("BENCH_ELASTICSEARCH_URL")},
			Username:  testenv.Getenv("BENCH_ELASTICSEARCH_USERNAME"),
			Password:  testenv.Getenv("BENCH_ELASTICSEARCH_PASSWORD"),
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := es.Info()
		testenv.Require(t, "elasticsearch", err)
		res.Body.Close()
		own := "bench-" + testenv.UniqueName(t, "isolation")
		res, err = es.Indices.Create(own)
		if err != nil || res.IsError() {
			t.Fatalf("create own index %s: %v %v", own, err, res)
		}
		res.Body.Close()
		t.Cleanup(func() {
			if r, err := es.Indices.Delete([]string{own}); err == nil {
				r.Body.Close()
			}
		})
		for _, other := range []string{"products-bench-isolation", "search-bench-isolation"} {
			res, err := es.Indices.Create(other)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("create index %s as bench: %s, want 403", other, res.Status())
			}
		}
	})
}
