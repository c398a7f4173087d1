# shellcheck shell=bash
# Building, starting and stopping Polyshop's Go services natively (after the engines).
# Each service runs as its own process on loopback with the settings of infra/local.env;
# only the gateway is meant to be reached by people.

# In start order: owners before the services that call them; the gateway last.
ALL_SERVICES=(users sessions catalog inventory orders payments activity search gateway)

# services_present — the services that exist in this checkout.
services_present() {
	local s
	for s in "${ALL_SERVICES[@]}"; do
		[ -f "$POLYSHOP_ROOT/services/$s/main.go" ] && echo "$s"
	done
}

# http_addr_of svc — the listen address from <SVC>_HTTP_ADDR.
http_addr_of() {
	local var
	var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_HTTP_ADDR"
	echo "${!var}"
}

services_build() {
	go_env
	local s
	for s in $(services_present); do
		(cd "$POLYSHOP_ROOT/services/$s" && go build -o "$BIN/svc-$s" .)
	done
}

# service_env svc — the environment svc is started with, one NAME=VALUE a line: its own
# settings (<SVC>_*), the base URLs of the services it may call (<PEER>_URL, no secrets),
# OpenTelemetry's settings and the basic process variables. Nothing else: no engine
# superuser password and no other service's credential reaches it (compose does the same;
# infra/checks TestRunningServicesHoldOnlyTheirOwnSecrets checks the running processes).
# The admin account's ADMIN_EMAIL / ADMIN_PASSWORD go to users alone, which ensures it.
service_env() {
	local svc=$1 own peer name
	own=$(echo "$svc" | tr '[:lower:]' '[:upper:]')
	while IFS= read -r name; do
		case "$name" in
		"${own}"_* | OTEL_* | PATH | HOME | USER | LANG | LC_* | TZ | TMPDIR | GOTRACEBACK | GOMAXPROCS | GOMEMLIMIT | GODEBUG) ;;
		ADMIN_EMAIL | ADMIN_PASSWORD) [ "$svc" = users ] || continue ;;
		*_URL)
			for peer in "${ALL_SERVICES[@]}"; do
				[ "$name" = "$(echo "$peer" | tr '[:lower:]' '[:upper:]')_URL" ] && break
			done
			[ "$name" = "$(echo "$peer" | tr '[:lower:]' '[:upper:]')_URL" ] || continue
			;;
		*) continue ;;
		esac
		printf '%s=%s\n' "$name" "${!name}"
	done < <(compgen -e)
}

service_ready() {
	curl -fsS -m 2 "http://$(http_addr_of "$1")/readyz" >/dev/null
}

services_start() {
	local s addr
	for s in $(services_present); do
		addr=$(http_addr_of "$s")
		if is_running "svc-$s"; then
			ok "$s already running (pid $(cat "$(pidfile "svc-$s")"))"
			continue
		fi
		port_in_use "${addr##*:}" && die "$addr is taken by another process (set $(echo "$s" | tr '[:lower:]' '[:upper:]')_HTTP_ADDR)"
		local envs=()
		mapfile -t envs < <(service_env "$s")
		start_daemon "svc-$s" env -i "${envs[@]}" "$BIN/svc-$s"
	done
}

services_wait() {
	local s
	for s in $(services_present); do
		wait_until 90 "$s" service_ready "$s" || {
			warn "last lines of $LOGS/svc-$s.log:"; tail -n 20 "$LOGS/svc-$s.log" >&2 || true; return 1; }
		ok "$s ready on http://$(http_addr_of "$s")"
	done
}

services_stop() {
	local i s
	for ((i = ${#ALL_SERVICES[@]} - 1; i >= 0; i--)); do
		s=${ALL_SERVICES[i]}
		is_running "svc-$s" && stop_daemon "svc-$s" 30 && ok "$s stopped"
		rm -f "$(pidfile "svc-$s")"
	done
	return 0
}
