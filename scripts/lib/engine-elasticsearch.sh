# shellcheck shell=bash
# Elasticsearch, natively: Elastic's own integration-test distribution from Maven Central
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip), run with the
# Debian JDK 17 as $ENGINE_USER. Real Elasticsearch, so the Go client's product check
# (header X-Elastic-Product: Elasticsearch) passes. Details and limits: infra/elasticsearch/README.md
#
# Layout (all under $STATE/elasticsearch): dist/elasticsearch-<v>/ (unpacked once, read-only),
# config/ (rendered from infra/elasticsearch), data/, logs/, tmp/. The zip is cached in
# $DOWNLOADS/elasticsearch and in ~/.m2. Sourced after scripts/lib/common.sh and load_env.

ES_VERSION="${POLYSHOP_ES_VERSION:-8.8.2}"
ES_DIR="$STATE/elasticsearch"
ES_CONF="$ES_DIR/config"

_es_port() { echo "${POLYSHOP_ES_PORT:-9200}"; }
_es_url() { echo "http://127.0.0.1:$(_es_port)"; }
_es_home() { echo "$ES_DIR/dist/elasticsearch-$ES_VERSION"; }
_es_admin_user() { echo "${POLYSHOP_ES_SUPERUSER:-polyshop_admin}"; }
_es_admin_password() { echo "${POLYSHOP_ES_SUPERPASSWORD:-lab-es-admin-7a3f}"; }
_es_search_user() { echo "${SEARCH_ELASTICSEARCH_USERNAME:-search}"; }

# _es_java_home — JDK 17 (Elasticsearch 8.8 needs 17..20; it uses the SecurityManager,
# which JDK 24+ no longer has, so a newer JDK does not work). POLYSHOP_ES_JAVA_HOME overrides.
_es_java_home() {
	if [ -n "${POLYSHOP_ES_JAVA_HOME:-}" ]; then echo "$POLYSHOP_ES_JAVA_HOME"; return; fi
	echo "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture 2>/dev/null || echo amd64)"
}

# _es_curl user password curl-args... — credentials go through stdin, not the command line.
_es_curl() {
	local u=$1 p=$2; shift 2
	p=${p//\\/\\\\}; p=${p//\"/\\\"}
	printf 'user = "%s:%s"\n' "$u" "$p" | curl -K - -sS --max-time 10 "$@"
}
_es_admin_curl() { _es_curl "$(_es_admin_user)" "$(_es_admin_password)" "$@"; }

# _es_env — the environment of every Elasticsearch process (server and CLI tools).
_es_env() {
	echo "HOME=$ES_DIR"
	echo "ES_JAVA_HOME=$(_es_java_home)"
	echo "ES_PATH_CONF=$ES_CONF"
	echo "ES_TMPDIR=$ES_DIR/tmp"
}

# _es_tool name args... — runs bin/elasticsearch-<name> as the engine user.
_es_tool() {
	local tool=$1; shift
	local envs; mapfile -t envs < <(_es_env)
	as_engine_user env "${envs[@]}" "$(_es_home)/bin/elasticsearch-$tool" "$@"
}

_es_fetch() {
	local zip="$DOWNLOADS/elasticsearch/elasticsearch-$ES_VERSION.zip" tmp out
	[ -s "$zip" ] && return 0
	command -v mvn >/dev/null || apt_install maven
	info "downloading Elasticsearch $ES_VERSION (integ-test-zip, ~80 MB) from Maven Central"
	tmp="$DOWNLOADS/elasticsearch/.download.$$"
	mkdir -p "$tmp"
	out=$(cd "$tmp" && mvn -B -q -Dstyle.color=never dependency:copy \
		-Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
		-DoutputDirectory="$tmp" 2>&1) || {
		printf '%s\n' "$out" | tail -n 20 >&2
		rm -rf "$tmp"
		die "could not fetch Elasticsearch $ES_VERSION from Maven Central"
	}
	mv "$tmp/elasticsearch-$ES_VERSION.zip" "$zip"
	rm -rf "$tmp"
	ok "cached in $zip"
}

_es_unpack() {
	local home tmp
	home=$(_es_home)
	[ -x "$home/bin/elasticsearch" ] && return 0
	info "unpacking into $ES_DIR/dist"
	tmp="$ES_DIR/dist/.unpack.$$"
	rm -rf "$tmp"; mkdir -p "$tmp"
	unzip -q "$DOWNLOADS/elasticsearch/elasticsearch-$ES_VERSION.zip" -d "$tmp" ||
		{ rm -rf "$tmp"; die "corrupt download? remove $DOWNLOADS/elasticsearch/elasticsearch-$ES_VERSION.zip and retry"; }
	rm -rf "$home"
	mv "$tmp/elasticsearch-$ES_VERSION" "$home"
	rm -rf "$tmp"
	[ -d "$home/modules/x-pack-security" ] || die "this distribution has no x-pack-security module; infra/elasticsearch/elasticsearch.yml assumes it"
	ok "modules: $(ls "$home/modules" | tr '\n' ' ')"
}

# _es_render template dest — fills in the @PLACEHOLDERS@ of an infra/elasticsearch template.
_es_render() {
	sed -e "s|@HTTP_PORT@|$(_es_port)|g" \
		-e "s|@TRANSPORT_PORT@|${POLYSHOP_ES_TRANSPORT_PORT:-9300}|g" \
		-e "s|@DATA@|$ES_DIR/data|g" -e "s|@LOGS@|$ES_DIR/logs|g" \
		-e "s|@ADMIN_USER@|$(_es_admin_user)|g" \
		"$POLYSHOP_ROOT/infra/elasticsearch/$1" >"$2.tmp"
	mv "$2.tmp" "$2"
}

_es_configure() {
	local home f
	home=$(_es_home)
	mkdir -p "$ES_CONF/jvm.options.d" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp"
	_es_render elasticsearch.yml "$ES_CONF/elasticsearch.yml"
	_es_render jvm.options "$ES_CONF/jvm.options"
	# File-realm files are edited by elasticsearch-users: copy only once.
	# Roles are ours (file realm, reloaded by the server when the file changes).
	_es_render roles.yml "$ES_CONF/roles.yml"
	for f in log4j2.properties role_mapping.yml users users_roles; do
		[ -e "$ES_CONF/$f" ] || cp "$home/config/$f" "$ES_CONF/$f"
	done
	engine_owns "$ES_CONF" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp"
	chmod 750 "$ES_CONF"
}

# _es_file_user user password role — a file-realm user (config/users, config/users_roles),
# written with bin/elasticsearch-users; re-run only when name, password or role change. The
# server reloads these files by itself (within ~5s). The native realm is not an option: its
# .security index needs the analysis-common module, which this distribution lacks.
_es_file_user() {
	local u=$1 p=$2 r=$3 fp fpf
	fpf="$ES_CONF/.polyshop-user-$u"
	fp=$(printf '%s:%s:%s' "$u" "$p" "$r" | sha256sum | cut -d' ' -f1)
	[ "$(cat "$fpf" 2>/dev/null)" = "$fp" ] && return 0
	if grep -q "^$u:" "$ES_CONF/users"; then
		info "updating the file-realm user $u (role $r)"
		_es_tool users passwd "$u" -p "$p" >/dev/null
		_es_tool users roles "$u" -a "$r" >/dev/null
	else
		info "creating the file-realm user $u (role $r)"
		_es_tool users useradd "$u" -p "$p" -r "$r" >/dev/null
	fi
	echo "$fp" >"$fpf"
}

elasticsearch_install() {
	local jh
	jh=$(_es_java_home)
	if [ ! -x "$jh/bin/java" ]; then
		[ -z "${POLYSHOP_ES_JAVA_HOME:-}" ] || die "POLYSHOP_ES_JAVA_HOME=$jh has no bin/java"
		apt_install openjdk-17-jre-headless
	fi
	command -v curl >/dev/null || apt_install curl
	command -v unzip >/dev/null || apt_install unzip
	_es_fetch
	_es_unpack
	_es_configure
	# The scripts' own superuser exists before the first start (readiness checks use it).
	_es_file_user "$(_es_admin_user)" "$(_es_admin_password)" superuser
}

elasticsearch_start() {
	local port envs
	port=$(_es_port)
	if port_in_use "$port"; then
		die "127.0.0.1:$port is taken by a process that ./scripts/stack did not start (an Elasticsearch left over? check: pgrep -af org.elasticsearch)"
	fi
	mapfile -t envs < <(_es_env)
	# -XX:-AlwaysPreTouch: the heap is not touched up front (about 0.7 GB less idle RSS).
	envs+=("ES_JAVA_OPTS=-Xms${POLYSHOP_ES_HEAP:-1g} -Xmx${POLYSHOP_ES_HEAP:-1g} -XX:-AlwaysPreTouch ${POLYSHOP_ES_JAVA_OPTS:-}")
	# Not start_daemon_as_engine_user: runuser stays as a parent and SIGKILLs its child 2s after
	# a SIGTERM, which would cut Elasticsearch's orderly shutdown short. setpriv execs, so the
	# recorded pid is the CLI launcher JVM (session leader), which on SIGTERM waits for the
	# server JVM to finish shutting down; stop_daemon's group SIGTERM reaches both.
	(
		cd "$ES_DIR"
		if [ "$(id -u)" = 0 ]; then
			ensure_engine_user
			start_daemon elasticsearch setpriv --reuid="$ENGINE_USER" --regid="$(id -g "$ENGINE_USER")" --init-groups -- \
				env "${envs[@]}" "$(_es_home)/bin/elasticsearch"
		else
			start_daemon elasticsearch env "${envs[@]}" "$(_es_home)/bin/elasticsearch"
		fi
	)
	ok "pid $(cat "$(pidfile elasticsearch)"), http $(_es_url), log $LOGS/elasticsearch.log (and $ES_DIR/logs)"
}

# elasticsearch_ready — GET / answers with the product header the Go client requires, and the
# cluster is yellow or green.
elasticsearch_ready() {
	local hdr health
	hdr=$(_es_admin_curl -f -o /dev/null -D - "$(_es_url)/") || return 1
	grep -qi '^x-elastic-product: *Elasticsearch' <<<"$hdr" || return 1
	health=$(_es_admin_curl -f "$(_es_url)/_cluster/health") || return 1
	grep -Eq '"status":"(green|yellow)"' <<<"$health"
}

# elasticsearch_provision — the search service's user, with role search_service (defined in
# infra/elasticsearch/roles.yml: everything on indices products* and search-*, nothing else).
elasticsearch_provision() {
	local user pass
	user=$(_es_search_user)
	pass=${SEARCH_ELASTICSEARCH_PASSWORD:-}
	[ -n "$pass" ] || die "SEARCH_ELASTICSEARCH_PASSWORD is not set (infra/local.env)"
	# roles.yml again: a running server reloads it, so new roles need no restart.
	_es_render roles.yml "$ES_CONF/roles.yml"
	engine_owns "$ES_CONF/roles.yml"
	_es_file_user "$user" "$pass" search_service
	wait_until 30 "authentication as $user" \
		_es_curl "$user" "$pass" -f -o /dev/null "$(_es_url)/_security/_authenticate" || return 1
	ok "user $user (role search_service: indices products*, search-*)"
	# The access-pattern harness (./scripts/bench): role bench, indices bench-* only.
	if [ -n "${BENCH_ELASTICSEARCH_PASSWORD:-}" ]; then
		user=${BENCH_ELASTICSEARCH_USERNAME:-bench}
		_es_file_user "$user" "$BENCH_ELASTICSEARCH_PASSWORD" bench
		wait_until 30 "authentication as $user" \
			_es_curl "$user" "$BENCH_ELASTICSEARCH_PASSWORD" -f -o /dev/null "$(_es_url)/_security/_authenticate" || return 1
		ok "user $user (role bench: indices bench-*)"
	fi
}
