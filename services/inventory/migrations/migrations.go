// Package migrations holds the inventory service's SQL schema, embedded so the binary
// applies it at start (shared/pgmigrate): files run once each, in name order.
package migrations

import "embed"

// FS holds the *.sql migration files.
//
//go:embed *.sql
var FS embed.FS
