# shellcheck shell=bash
# Common helpers for Polyshop's scripts: paths, settings, progress output, process control.
# Sourced, never run. Every engine lives in scripts/lib/engine-<name>.sh and defines
#   <name>_install   install or build what is missing (idempotent, cached)
#   <name>_start     start the process in the background (only called when not running)
#   <name>_ready     exit 0 once a real client can use it
#   <name>_provision create the per-service credentials (idempotent)
# and uses start_daemon / stop_daemon from here so that `down` stops exactly what `up` started.

set -euo pipefail

POLYSHOP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE="${POLYSHOP_STATE:-$POLYSHOP_ROOT/.polyshop}"
BIN="$STATE/bin"
RUN="$STATE/run"
LOGS="$STATE/logs"
DOWNLOADS="${POLYSHOP_DOWNLOADS:-$HOME/.cache/polyshop}"
# The unprivileged account that runs the engines when the scripts run as root
# (PostgreSQL and Elasticsearch refuse to run as root).
ENGINE_USER="${POLYSHOP_ENGINE_USER:-polyshop}"

mkdir -p "$BIN" "$RUN" "$LOGS" "$DOWNLOADS"

# --- output ---------------------------------------------------------------------------------
if [ -t 1 ]; then _b=$'\e[1m'; _g=$'\e[32m'; _y=$'\e[33m'; _r=$'\e[31m'; _n=$'\e[0m'
else _b=; _g=; _y=; _r=; _n=; fi
info() { printf '%s==>%s %s\n' "$_b" "$_n" "$*"; }
ok()   { printf '    %s%s%s\n' "$_g" "$*" "$_n"; }
warn() { printf '    %swarning:%s %s\n' "$_y" "$_n" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$_r" "$_n" "$*" >&2; exit 1; }

# step "what" cmd args... — prints what it does, runs it, and how long it took.
# The command runs in a child shell so that `set -e` holds inside it (bash ignores errexit in
# functions called from an `if` or `||` context, which would hide a failing install step).
step() {
	local what=$1; shift
	local t0=$SECONDS rc=0
	info "$what"
	( "$@" ) &
	wait $! || rc=$?
	if ((rc == 0)); then
		ok "done in $((SECONDS - t0))s"
	else
		printf '    %sfailed after %ss (exit %s)%s\n' "$_r" "$((SECONDS - t0))" "$rc" "$_n" >&2
		return "$rc"
	fi
}

# --- settings -------------------------------------------------------------------------------
# load_env reads infra/local.override.env (if present), then infra/local.env. The first value
# seen wins: a variable already set in the environment beats both files (so
# `USERS_HTTP_ADDR=:9000 ./scripts/up` works), and the override file beats local.env.
load_env() {
	local f line key
	for f in "$POLYSHOP_ROOT/infra/local.override.env" "$POLYSHOP_ROOT/infra/local.env"; do
		[ -f "$f" ] || continue
		while IFS= read -r line || [ -n "$line" ]; do
			case "$line" in ''|'#'*) continue ;; esac
			key=${line%%=*}
			if [ -z "${!key+x}" ]; then
				eval "export $key=\"${line#*=}\""
			fi
		done <"$f"
	done
}

# --- process control ------------------------------------------------------------------------
pidfile() { echo "$RUN/$1.pid"; }

# alive pid — true while the process exists and is not a zombie waiting to be reaped (a
# daemon whose starter has exited is reaped by PID 1, which may take a while).
alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

# is_running name — true when the process recorded for name is alive.
is_running() {
	local pf
	pf=$(pidfile "$1")
	[ -f "$pf" ] && alive "$(cat "$pf")"
}

# start_daemon name cmd args... — starts cmd in its own session, output to $LOGS/name.log.
start_daemon() {
	local name=$1; shift
	: >"$LOGS/$name.log"
	setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$(pidfile "$name")"
}

# start_daemon_as_engine_user name cmd args... — the same, as $ENGINE_USER when root.
start_daemon_as_engine_user() {
	local name=$1; shift
	if [ "$(id -u)" = 0 ]; then
		ensure_engine_user
		# setpriv execs the engine in place (runuser would stay as a parent that SIGKILLs its
		# child two seconds after a SIGTERM, cutting clean shutdowns short).
		start_daemon "$name" setpriv --reuid="$ENGINE_USER" --regid="$ENGINE_USER" --init-groups \
			env HOME="$STATE" USER="$ENGINE_USER" "$@"
	else
		start_daemon "$name" "$@"
	fi
}

# as_engine_user cmd args... — runs a command as $ENGINE_USER when root.
as_engine_user() {
	if [ "$(id -u)" = 0 ]; then runuser -u "$ENGINE_USER" -- "$@"; else "$@"; fi
}

ensure_engine_user() {
	[ "$(id -u)" = 0 ] || return 0
	if ! id "$ENGINE_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir "$STATE" --shell /usr/sbin/nologin "$ENGINE_USER"
	fi
}

# engine_owns dir — gives dir to the engine user (when root).
engine_owns() {
	local p
	for p in "$@"; do [ -e "$p" ] || mkdir -p "$p"; done
	if [ "$(id -u)" = 0 ]; then ensure_engine_user; chown -R "$ENGINE_USER:" "$@"; fi
}

# stop_daemon name [seconds] — SIGTERM to the process group, SIGKILL after the grace period.
stop_daemon() {
	local name=$1 grace=${2:-30} pf pid i
	pf=$(pidfile "$name")
	[ -f "$pf" ] || return 0
	pid=$(cat "$pf")
	if alive "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < grace * 10; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			warn "$name did not stop in ${grace}s; killing it"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pf"
}

# wait_until seconds what cmd args... — polls cmd until it succeeds or time runs out.
wait_until() {
	local limit=$1 what=$2; shift 2
	local t0=$SECONDS
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - t0 >= limit)); then
			warn "$what not ready after ${limit}s"
			return 1
		fi
		sleep 0.5
	done
}

# port_in_use port — true when something listens on 127.0.0.1:port.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# apt_install pkg... — installs Debian packages that are missing (runs apt-get update once).
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or install them)"
	info "installing Debian packages: ${missing[*]}"
	if [ ! -f "$STATE/.apt-updated" ] || [ -n "$(find "$STATE/.apt-updated" -mmin +1440 2>/dev/null)" ]; then
		apt-get update -qq
		touch "$STATE/.apt-updated"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_env — puts a Go toolchain of at least $GO_MIN on PATH. When the machine has none (or an
# older one), Debian's golang-go bootstraps it: it downloads the official toolchain module
# golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-<arch> through the Go module proxy into the
# module cache, and that toolchain is used from then on.
GO_MIN=1.26
GO_VERSION=1.26.8
go_env() {
	local gobin dir
	# Checked once per run: readiness polls call probe, and probe calls go_env.
	[ -z "${POLYSHOP_GO_CHECKED:-}" ] || return 0
	gobin=$(command -v go || true)
	if [ -n "$gobin" ] && _go_new_enough "$gobin"; then export POLYSHOP_GO_CHECKED=1; return 0; fi
	dir=$(_go_toolchain_dir)
	if [ ! -x "$dir/bin/go" ]; then
		[ -x /usr/lib/go/bin/go ] || [ -n "$gobin" ] || apt_install golang-go ca-certificates
		[ -n "$gobin" ] || gobin=/usr/lib/go/bin/go
		info "installing Go $GO_VERSION (the toolchain module, through the Go module proxy)"
		(cd / && GOFLAGS=-modcacherw GO111MODULE=on GOTOOLCHAIN=local "$gobin" mod download \
			"golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$(_go_arch)") ||
			die "could not download Go $GO_VERSION"
	fi
	chmod +x "$dir/bin/go" "$dir/bin/gofmt" "$dir/pkg/tool/"*/* 2>/dev/null || true
	export PATH="$dir/bin:$PATH" GOTOOLCHAIN=local
	_go_new_enough "$dir/bin/go" || die "Go $GO_MIN or newer is required; $dir/bin/go is not"
	export POLYSHOP_GO_CHECKED=1
}

_go_arch() { case "$(uname -m)" in aarch64 | arm64) echo arm64 ;; *) echo amd64 ;; esac; }
_go_toolchain_dir() {
	echo "${GOMODCACHE:-${GOPATH:-$HOME/go}/pkg/mod}/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$(_go_arch)"
}
_go_new_enough() {
	local v
	v=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	[ "$(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | head -1)" = "$GO_MIN" ]
}

# probe args... — the readiness checker with real clients (infra/checks/cmd/probe).
probe() {
	go_env
	if [ ! -x "$BIN/probe" ] || [ -n "$(find "$POLYSHOP_ROOT/infra/checks" -newer "$BIN/probe" -name '*.go' 2>/dev/null | head -1)" ]; then
		(cd "$POLYSHOP_ROOT/infra/checks" && GOWORK=off go build -o "$BIN/probe" ./cmd/probe)
	fi
	"$BIN/probe" "$@"
}

# --- mutual TLS between the services -------------------------------------------------------
# The local CA and one certificate per service plus "operator" (shared/pki) live in
# $POLYSHOP_TLS_DIR (default .polyshop/tls), made by `./scripts/stack up`. With
# POLYSHOP_TLS=on (infra/local.env) the internal services serve HTTPS and refuse callers
# without a certificate, except on /healthz and /readyz.
tls_dir() { echo "${POLYSHOP_TLS_DIR:-$STATE/tls}"; }
tls_on() { [ "${POLYSHOP_TLS:-off}" = on ]; }

# pki_ensure — creates the CA and the certificates when missing (infra/checks/cmd/pki;
# idempotent: valid files are kept; keys mode 0600).
pki_ensure() {
	go_env
	if [ ! -x "$BIN/pki" ] || [ -n "$(find "$POLYSHOP_ROOT/infra/checks/cmd/pki" "$POLYSHOP_ROOT/shared/pki" -newer "$BIN/pki" -name '*.go' 2>/dev/null | head -1)" ]; then
		(cd "$POLYSHOP_ROOT/infra/checks" && GOWORK=off go build -o "$BIN/pki" ./cmd/pki)
	fi
	"$BIN/pki" -dir "$(tls_dir)"
}

# icurl args... — curl for the internal services as the operator identity: with
# POLYSHOP_TLS=on it presents operator's certificate and trusts only the local CA; plain
# curl otherwise. Pair it with internal_url (scripts/lib/services.sh) for the base URL:
#   icurl -fsS "$(internal_url orders)/sagas"
icurl() {
	if tls_on; then
		local d
		d=$(tls_dir)
		curl --cacert "$d/ca.pem" --cert "$d/operator.pem" --key "$d/operator.key" "$@"
	else
		curl "$@"
	fi
}
