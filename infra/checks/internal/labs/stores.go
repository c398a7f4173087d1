package labs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// The datastores as their owners see them: each opened with one service's own
// credentials from infra/local.env (never a superuser).

// PG connects to a PostgreSQL URL (e.g. e.Getenv("USERS_DATABASE_URL")).
func PG(ctx context.Context, url string) (*pgx.Conn, error) {
	if url == "" {
		return nil, fmt.Errorf("no database URL (is infra/local.env loaded?)")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, url)
}

// Redis connects to a Redis URL (e.g. SESSIONS_REDIS_URL) and checks the credentials.
func Redis(ctx context.Context, url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Cassandra opens a session with one role's credentials.
func Cassandra(hosts, user, password, keyspace string) (*gocql.Session, error) {
	c := gocql.NewCluster(strings.Split(hosts, ",")...)
	c.Authenticator = gocql.PasswordAuthenticator{Username: user, Password: password}
	c.Keyspace = keyspace
	c.Consistency = gocql.One
	c.Timeout = 15 * time.Second
	c.ConnectTimeout = 10 * time.Second
	c.DisableInitialHostLookup = true
	c.NumConns = 1
	return c.CreateSession()
}

// ActivityCassandra opens activity's keyspace with activity's role.
func (e *Env) ActivityCassandra() (*gocql.Session, error) {
	return Cassandra(e.Getenv("ACTIVITY_CASSANDRA_HOSTS"), e.Getenv("ACTIVITY_CASSANDRA_USERNAME"),
		e.Getenv("ACTIVITY_CASSANDRA_PASSWORD"), e.Getenv("ACTIVITY_CASSANDRA_KEYSPACE"))
}
