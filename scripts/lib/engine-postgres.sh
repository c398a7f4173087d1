# shellcheck shell=bash
# PostgreSQL from Debian's packages, as a cluster of our own under .polyshop/postgres,
# on 127.0.0.1:$POLYSHOP_PG_PORT, scram-sha-256 passwords, one database and role per owner.

_pg_bindir() {
	local d
	for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && echo "$d"; done | sort -V | tail -1
}
PG_DATA="$STATE/postgres/data"

postgres_install() {
	[ -n "$(_pg_bindir)" ] || apt_install postgresql
	command -v psql >/dev/null || apt_install postgresql-client
	[ -f "$PG_DATA/PG_VERSION" ] && return 0
	info "initialising a new cluster in $PG_DATA"
	engine_owns "$STATE/postgres"
	local pwfile="$STATE/postgres/.pw"
	printf '%s\n' "$POLYSHOP_PG_SUPERPASSWORD" >"$pwfile"
	engine_owns "$pwfile"; chmod 600 "$pwfile"
	as_engine_user "$(_pg_bindir)/initdb" -D "$PG_DATA" -U "$POLYSHOP_PG_SUPERUSER" --pwfile="$pwfile" \
		--auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	rm -f "$pwfile"
}

postgres_start() {
	port_in_use "$POLYSHOP_PG_PORT" && die "port $POLYSHOP_PG_PORT is taken by another process (a system PostgreSQL? stop it or set POLYSHOP_PG_PORT)"
	engine_owns "$STATE/postgres/run"
	start_daemon_as_engine_user postgres "$(_pg_bindir)/postgres" -D "$PG_DATA" \
		-c listen_addresses=127.0.0.1 -c port="$POLYSHOP_PG_PORT" \
		-c unix_socket_directories="$STATE/postgres/run" \
		-c max_connections=300 -c shared_buffers=128MB -c fsync=on \
		-c log_min_messages=warning -c logging_collector=off
}

_pg_admin_env() {
	export PGHOST=127.0.0.1 PGPORT="$POLYSHOP_PG_PORT" PGUSER="$POLYSHOP_PG_SUPERUSER" \
		PGPASSWORD="$POLYSHOP_PG_SUPERPASSWORD" PGDATABASE=postgres PGCONNECT_TIMEOUT=3
}

postgres_ready() {
	(_pg_admin_env && psql -qAt -c 'SELECT 1' >/dev/null)
}

postgres_provision() {
	(_pg_admin_env && "$POLYSHOP_ROOT/infra/postgres/init.sh")
}
