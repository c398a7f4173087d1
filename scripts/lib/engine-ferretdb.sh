# shellcheck shell=bash
# The MongoDB wire protocol natively: FerretDB v1 embedded in a tiny main (infra/ferretdb,
# because FerretDB's own binary does not start when built from the module proxy), on its
# PostgreSQL backend: the catalog's own role and database `catalog` on the platform's
# PostgreSQL. FerretDB passes each client's PLAIN credentials through to PostgreSQL, so only
# the catalog gets in. docker-compose.yml runs real MongoDB instead.

FERRETDB_PG_URL() { echo "postgres://127.0.0.1:$POLYSHOP_PG_PORT/catalog?sslmode=disable"; }

ferretdb_install() {
	go_env
	local src="$POLYSHOP_ROOT/infra/ferretdb"
	if [ -x "$BIN/ferretdb" ] && [ -z "$(find "$src" -newer "$BIN/ferretdb" -type f 2>/dev/null | head -1)" ]; then
		return 0
	fi
	info "building FerretDB (first time about a minute)"
	(cd "$src" && GOWORK=off go build -o "$BIN/ferretdb" .)
}

# _ferretdb_pg_role — the catalog's PostgreSQL role and database (idempotent; PostgreSQL
# must be up: ./scripts/stack up starts it first).
_ferretdb_pg_role() {
	(_pg_admin_env && postgres_ready) || die "FerretDB keeps the catalog in PostgreSQL: start it first (./scripts/stack up postgres)"
	(_pg_admin_env && CATALOG_DB_PASSWORD="$CATALOG_MONGODB_PASSWORD" POLYSHOP_PG_OWNERS=catalog \
		"$POLYSHOP_ROOT/infra/postgres/init.sh")
	# The _id index FerretDB v1 cannot make itself (infra/ferretdb/pg-indexes.sql).
	(_pg_admin_env && PGOPTIONS="-c client_min_messages=warning" psql -qAt -v ON_ERROR_STOP=1 -d catalog -f "$POLYSHOP_ROOT/infra/ferretdb/pg-indexes.sql" >/dev/null)
}

ferretdb_start() {
	port_in_use "$POLYSHOP_MONGO_PORT" && die "port $POLYSHOP_MONGO_PORT is taken by another process (set POLYSHOP_MONGO_PORT)"
	_ferretdb_pg_role
	# A clean environment: pgx would take PGPASSWORD/PGUSER from it for every client.
	start_daemon_as_engine_user ferretdb env -i PATH="$PATH" "$BIN/ferretdb" serve -listen "127.0.0.1:$POLYSHOP_MONGO_PORT" \
		-postgresql-url "$(FERRETDB_PG_URL)"
}

# ferretdb_outdated — true when the running FerretDB is the earlier SQLite layout, which
# ./scripts/stack up then restarts on PostgreSQL.
ferretdb_outdated() {
	! tr '\0' ' ' <"/proc/$(cat "$(pidfile ferretdb)")/cmdline" 2>/dev/null | grep -q -- '-postgresql-url'
}

ferretdb_ready() {
	probe mongo "$CATALOG_MONGODB_URI"
}

# ferretdb_provision moves a catalog that an earlier Polyshop kept on FerretDB's SQLite
# backend (.polyshop/ferretdb) into the PostgreSQL backend, once; the old files are kept as
# .polyshop/ferretdb.sqlite-moved. Search and inventory keep what they derived from the
# catalog's events, which still describe the same products.
ferretdb_provision() {
	local old="$STATE/ferretdb"
	[ -n "$(find "$old" -maxdepth 1 -name '*.sqlite' 2>/dev/null | head -1)" ] || return 0
	info "moving the catalog from FerretDB's SQLite backend ($old) to PostgreSQL"
	"$BIN/ferretdb" copy-sqlite -dir "$old" -db "$CATALOG_MONGODB_DATABASE" -to "$CATALOG_MONGODB_URI"
	mv "$old" "$STATE/ferretdb.sqlite-moved"
}
