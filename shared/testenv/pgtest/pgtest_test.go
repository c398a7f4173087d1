package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"polyshop/shared/testenv"
	"polyshop/shared/testenv/pgtest"
)

func TestSchema(t *testing.T) {
	ctx := context.Background()
	var schema string
	t.Run("isolated", func(t *testing.T) {
		pool, url := pgtest.Schema(t, "USERS_DATABASE_URL")
		if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(schema, "t_") || !strings.Contains(url, "search_path="+schema) {
			t.Fatalf("schema %q, url %q", schema, url)
		}
		if _, err := pool.Exec(ctx, "CREATE TABLE things (id int PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		// The URL alone puts a new connection in the same schema.
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "INSERT INTO things VALUES (1)"); err != nil {
			t.Fatalf("insert through URL: %v", err)
		}
	})
	if schema == "" {
		return // skipped: no PostgreSQL
	}
	conn, err := pgx.Connect(ctx, testenv.Getenv("USERS_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after the test", schema)
	}
}
