# shellcheck shell=bash
# The MongoDB wire protocol natively: FerretDB v1 on SQLite, embedded in a tiny main
# (infra/ferretdb) because FerretDB's own binary does not start when built from the module
# proxy. docker-compose.yml runs real MongoDB instead.

ferretdb_install() {
	go_env
	local src="$POLYSHOP_ROOT/infra/ferretdb"
	if [ -x "$BIN/ferretdb" ] && [ -z "$(find "$src" -newer "$BIN/ferretdb" -type f 2>/dev/null | head -1)" ]; then
		return 0
	fi
	info "building FerretDB (first time about a minute)"
	(cd "$src" && GOWORK=off go build -o "$BIN/ferretdb" .)
}

ferretdb_start() {
	port_in_use "$POLYSHOP_MONGO_PORT" && die "port $POLYSHOP_MONGO_PORT is taken by another process (set POLYSHOP_MONGO_PORT)"
	engine_owns "$STATE/ferretdb"
	start_daemon_as_engine_user ferretdb "$BIN/ferretdb" -listen "127.0.0.1:$POLYSHOP_MONGO_PORT" -dir "$STATE/ferretdb"
}

ferretdb_ready() {
	probe mongo "$CATALOG_MONGODB_URI"
}

ferretdb_provision() {
	# FerretDB v1 on SQLite has no users of its own: on loopback only the catalog service is
	# given its URI. Real MongoDB in compose creates a `catalog` user (infra/mongo/init.js).
	:
}
