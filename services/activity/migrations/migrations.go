// Package migrations embeds the activity keyspace's CQL schema files. They are applied in
// file-name order at start by cqlstore.Migrate, each once, recorded in schema_migrations.
//
// Rules for a file: statements end with ";" at the end of a line; "--" starts a comment
// line; every statement must be safe to run twice (CREATE … IF NOT EXISTS, ALTER … ADD IF
// NOT EXISTS), because Cassandra DDL is not transactional and a crash between a statement
// and the file's record in schema_migrations re-runs the file. Never edit an applied file:
// add a new one.
package migrations

import "embed"

// FS holds the *.cql files.
//
//go:embed *.cql
var FS embed.FS
