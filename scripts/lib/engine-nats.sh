# shellcheck shell=bash
# NATS with JetStream, built from the Go module proxy (github.com/nats-io/nats-server/v2),
# config infra/nats/nats.conf (one user per service, publish limited to its own subjects).

NATS_VERSION=v2.15.2

nats_install() {
	go_env
	command -v curl >/dev/null || apt_install curl
	if [ -x "$BIN/nats-server" ] && "$BIN/nats-server" --version 2>/dev/null | grep -q "${NATS_VERSION#v}"; then
		return 0
	fi
	info "building nats-server $NATS_VERSION (first time only; cached in the Go module cache)"
	GOBIN="$BIN" GOWORK=off go install "github.com/nats-io/nats-server/v2@$NATS_VERSION"
}

nats_start() {
	port_in_use "$POLYSHOP_NATS_PORT" && die "port $POLYSHOP_NATS_PORT is taken by another process (set POLYSHOP_NATS_PORT)"
	engine_owns "$STATE/nats"
	export POLYSHOP_NATS_LISTEN="127.0.0.1:$POLYSHOP_NATS_PORT"
	export POLYSHOP_NATS_MONITOR_LISTEN="127.0.0.1:$POLYSHOP_NATS_MONITOR_PORT"
	export POLYSHOP_NATS_STORE="$STATE/nats"
	start_daemon_as_engine_user nats "$BIN/nats-server" -c "$POLYSHOP_ROOT/infra/nats/nats.conf"
}

nats_ready() {
	# healthz?js-enabled-only=true answers 200 once JetStream is up; then a real client logs in.
	curl -fsS "http://127.0.0.1:$POLYSHOP_NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null &&
		probe nats "$GATEWAY_NATS_URL"
}

nats_provision() {
	# Users and permissions live in nats.conf (generated: infra/checks/cmd/natsconf); streams
	# are created by their owners at start. A configuration reload (SIGHUP) applies a changed
	# nats.conf to the running server and keeps every connection; nats.log says "Reloaded
	# server configuration", or why not (a new $VARIABLE needs a restart: nats_outdated).
	local pid
	pid=$(cat "$(pidfile nats)" 2>/dev/null) && kill -HUP "$pid" && sleep 1
	probe nats "$USERS_NATS_URL"
}

nats_refresh() {
	# A running server reloads a nats.conf changed since it last read it (SIGHUP: users and
	# permissions change, connections stay); `up` calls this for a server already ready.
	local loaded
	loaded=$(curl -fsS "http://127.0.0.1:$POLYSHOP_NATS_MONITOR_PORT/varz" | sed -n 's/.*"config_load_time": *"\([^"]*\)".*/\1/p')
	[ -n "$loaded" ] || return 0
	(($(date -r "$POLYSHOP_ROOT/infra/nats/nats.conf" +%s) > $(date -d "$loaded" +%s))) || return 0
	info "nats: infra/nats/nats.conf changed since the server read it: reloading it"
	kill -HUP "$(cat "$(pidfile nats)")"
}

nats_outdated() {
	# A server started before infra/nats/nats.conf had the test user (or before its password
	# was in infra/local.env) refuses it while a service logs in: restart it so it reads the
	# configuration again (its JetStream store is kept).
	! probe nats "$TEST_NATS_URL" >/dev/null 2>&1 && probe nats "$USERS_NATS_URL" >/dev/null 2>&1
}
