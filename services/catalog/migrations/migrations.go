// Package migrations holds the catalog's collection and index definitions, embedded into
// the binary and applied at start by mongostore.Migrate. MongoDB has no schema to migrate;
// what the queries need are indexes, and creating an index that exists is a no-op.
package migrations

import _ "embed"

// Indexes is indexes.json: per collection, the indexes to ensure.
//
//go:embed indexes.json
var Indexes []byte
