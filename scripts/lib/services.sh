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

# internal_url svc — svc's base URL: https:// when POLYSHOP_TLS=on (mutual TLS; call it with
# icurl), http:// otherwise. The gateway's public port is always plain HTTP.
internal_url() {
	local scheme=http
	if [ "$1" != gateway ] && tls_on; then scheme=https; fi
	echo "$scheme://$(http_addr_of "$1")"
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
# With POLYSHOP_TLS=on (mutual TLS) it also gets its own certificate, key and the CA
# (<SVC>_TLS_CERT, <SVC>_TLS_KEY, <SVC>_TLS_CA in $(tls_dir)) and its peers' URLs as https://.
service_env() {
	local svc=$1 own peer name value
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
		value=${!name}
		# A service's base URL (<PEER>_URL, not an engine's <SVC>_<ENGINE>_URL) is https://
		# with mutual TLS; the gateway's public port stays plain HTTP.
		peer=${name%_URL}
		if tls_on && [[ "$name" == *_URL && "$peer" != *_* && "$peer" != GATEWAY ]]; then value=${value/#http:\/\//https://}; fi
		printf '%s=%s\n' "$name" "$value"
	done < <(compgen -e)
	if tls_on; then
		for name in CERT KEY CA; do
			peer="${own}_TLS_${name}" # already set in the environment: passed through above
			[ -z "${!peer:-}" ] || continue
			case $name in
			CERT) value="$(tls_dir)/$svc.pem" ;;
			KEY) value="$(tls_dir)/$svc.key" ;;
			CA) value="$(tls_dir)/ca.pem" ;;
			esac
			printf '%s_TLS_%s=%s\n' "$own" "$name" "$value"
		done
	fi
}

service_ready() {
	icurl -fsS -m 2 "$(internal_url "$1")/readyz" >/dev/null
}

# services_start [svc...] — starts each service (default: all present) under a supervisor
# (scripts/lib/supervise), which restarts it when it exits unexpectedly. The service's pid
# is in $RUN/svc-<name>.pid, the supervisor's in $RUN/sup-<name>.pid.
# services_lock — held while services are started or stopped, so that two runners at once
# (a test run and a person's ./scripts/up) cannot both start a supervisor for one service.
services_lock() {
	exec {_services_lock_fd}>"$RUN/services.lock"
	flock "$_services_lock_fd"
}
services_unlock() { flock -u "$_services_lock_fd" 2>/dev/null || true; }

services_start() {
	services_lock
	_services_start "$@"
	local rc=$?
	services_unlock
	return $rc
}

_services_start() {
	local s addr
	local list=("$@")
	((${#list[@]})) || mapfile -t list < <(services_present)
	for s in "${list[@]}"; do
		addr=$(http_addr_of "$s")
		if is_running "sup-$s" || is_running "svc-$s"; then
			ok "$s already running (pid $(cat "$(pidfile "svc-$s")" 2>/dev/null || echo "restarting"))"
			continue
		fi
		port_in_use "${addr##*:}" && die "$addr is taken by another process (set $(echo "$s" | tr '[:lower:]' '[:upper:]')_HTTP_ADDR)"
		rm -f "$RUN/svc-$s.stopped" "$RUN/svc-$s.restarts"
		: >"$LOGS/svc-$s.log"
		setsid bash "$POLYSHOP_ROOT/scripts/lib/supervise" "$s" >>"$LOGS/svc-$s.log" 2>&1 </dev/null &
		echo $! >"$(pidfile "sup-$s")"
		# Returns once the supervisor has started the service and written its pid.
		wait_until 10 "$s supervisor" test -s "$(pidfile "svc-$s")" || true
	done
}

# service_restarts svc — how often the supervisor restarted svc since it was started.
service_restarts() {
	cat "$RUN/svc-$1.restarts" 2>/dev/null || echo 0
}

services_wait() {
	local s
	for s in $(services_present); do
		wait_until 90 "$s" service_ready "$s" || {
			warn "last lines of $LOGS/svc-$s.log:"; tail -n 20 "$LOGS/svc-$s.log" >&2 || true; return 1; }
		ok "$s ready on $(internal_url "$s")"
	done
}

# services_stop [svc...] — stops each service (default: all, in reverse start order) on
# purpose: its supervisor is told first (a stop marker), so it does not restart it.
services_stop() {
	services_lock
	_services_stop "$@"
	services_unlock
}

_services_stop() {
	local i s list=("$@")
	if ((${#list[@]} == 0)); then
		for ((i = ${#ALL_SERVICES[@]} - 1; i >= 0; i--)); do list+=("${ALL_SERVICES[i]}"); done
	fi
	for s in "${list[@]}"; do
		touch "$RUN/svc-$s.stopped"
		if is_running "sup-$s"; then
			kill -TERM "$(cat "$(pidfile "sup-$s")")" 2>/dev/null || true
		fi
		rm -f "$(pidfile "sup-$s")"
		is_running "svc-$s" && stop_daemon "svc-$s" 30 && ok "$s stopped"
		rm -f "$(pidfile "svc-$s")"
	done
	return 0
}

# services_status — one line per service: state, pid, restarts by the supervisor.
services_status() {
	local s state
	for s in $(services_present); do
		if is_running "svc-$s"; then
			if service_ready "$s" 2>/dev/null; then state=ready; else state="running, not ready"; fi
			printf '%-14s %-20s pid %-8s restarts %s\n' "$s" "$state" "$(cat "$(pidfile "svc-$s")")" "$(service_restarts "$s")"
		elif is_running "sup-$s"; then
			printf '%-14s %-20s %-12s restarts %s\n' "$s" "restarting" "" "$(service_restarts "$s")"
		else
			printf '%-14s %s\n' "$s" stopped
		fi
	done
}
