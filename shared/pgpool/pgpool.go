// Package pgpool opens the PostgreSQL connection pool of a service with Polyshop's default
// size, so that the saga services (orders, inventory, payments) size their pools alike.
package pgpool

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the pool's size unless the URL names one (pool_max_conns=n). pgx's
// own default, max(4, CPUs), is 4 on the lab machine: too few for the command consumers,
// the relay and the API at once, so under load handlers queued for a connection longer
// than their transactions took (services/orders/README.md, "Throughput").
const DefaultMaxConns = 16

// Open connects a pool to url with DefaultMaxConns connections at most, unless url sets
// pool_max_conns.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns=") {
		cfg.MaxConns = DefaultMaxConns
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}
