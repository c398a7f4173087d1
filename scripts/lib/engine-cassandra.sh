# shellcheck shell=bash
# Apache Cassandra 5.0 (one node, loopback, authentication on), natively on JDK 17.
# Central publishes no binary tarball, so the jars of org.apache.cassandra:cassandra-all come from
# Maven Central (infra/cassandra/pom.xml) and CassandraDaemon runs with plain java. CQL from bash
# (readiness, provisioning) goes through cqlsh from PyPI in a venv. See infra/cassandra/README.md.
#
#   .polyshop/cassandra/lib/          the jars (hard links into ~/.m2, which the engine user cannot read)
#   .polyshop/cassandra/classpath.txt resolved once; again only when infra/cassandra/pom.xml changes
#   .polyshop/cassandra/conf/         cassandra.yaml rendered from infra/cassandra/cassandra.yaml
#   .polyshop/cassandra/data/         data, commitlog, hints, saved caches (kept by `down`)
#   .polyshop/venv/                   cqlsh
#   .polyshop/logs/cassandra.log      console (WARN and up); logs/cassandra/system.log: INFO

CASSANDRA_HOME_DIR="$STATE/cassandra"
CASSANDRA_INFRA="$POLYSHOP_ROOT/infra/cassandra"
CASSANDRA_CQLSH_VERSION=6.2.2
CASSANDRA_CQLSH="$STATE/venv/bin/cqlsh"

# Cassandra 5.0 runs on Java 11 or 17 only: never pick whatever `java` happens to be first.
_cassandra_java() {
	local d
	for d in "${POLYSHOP_CASSANDRA_JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-* \
		/usr/lib/jvm/*-17-* "${JAVA_HOME:-}"; do
		[ -n "$d" ] && [ -x "$d/bin/java" ] || continue
		if "$d/bin/java" -version 2>&1 | head -1 | grep -Eq '"(17|11)[."]'; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

_cassandra_port() { echo "${POLYSHOP_CASSANDRA_PORT:-9042}"; }

# _cassandra_cql user password statements — runs CQL with cqlsh; output on stdout, errors on stderr.
# The password goes through a private credentials file, not the command line.
_cassandra_cql() {
	local user=$1 pass=$2 creds rc=0; shift 2
	port_in_use "$(_cassandra_port)" || { echo "nothing listens on 127.0.0.1:$(_cassandra_port)" >&2; return 1; }
	creds=$(umask 077 && mktemp "$STATE/.cqlsh-credentials.XXXXXX") || return 1
	printf '[plain_text_auth]\nusername = %s\npassword = %s\n' "$user" "$pass" >"$creds"
	HOME="$STATE/venv" "$CASSANDRA_CQLSH" --credentials="$creds" --connect-timeout=5 --request-timeout=30 \
		-e "$*" 127.0.0.1 "$(_cassandra_port)" | sed '/^WARNING: cqlsh was built against/d' || rc=$?
	rm -f "$creds"
	return "$rc"
}

# _cassandra_str text — a CQL string literal.
_cassandra_str() { printf "'%s'" "${1//\'/\'\'}"; }

# _cassandra_name what value — only plain lower-case identifiers (no quoting, no surprises).
_cassandra_name() {
	[[ $2 =~ ^[a-z][a-z0-9_]{0,47}$ ]] || die "$1 '$2' must be a lower-case CQL identifier ([a-z][a-z0-9_]*)"
}

cassandra_install() {
	local jh cp="$CASSANDRA_HOME_DIR/classpath.txt" lib="$CASSANDRA_HOME_DIR/lib" jar
	jh=$(_cassandra_java) || { apt_install openjdk-17-jdk-headless && jh=$(_cassandra_java); } ||
		die "Cassandra 5.0 needs JDK 17 (or 11): apt-get install openjdk-17-jdk-headless"
	mkdir -p "$CASSANDRA_HOME_DIR"

	# 1. The jars, resolved by Maven once (~/.m2 keeps them); again only when the pom changes.
	if [ ! -s "$cp" ] || [ "$CASSANDRA_INFRA/pom.xml" -nt "$cp" ]; then
		command -v mvn >/dev/null || apt_install maven
		info "resolving org.apache.cassandra:cassandra-all from Maven Central (jars cached in ~/.m2)"
		JAVA_HOME="$jh" mvn -q -B -Dstyle.color=never -f "$CASSANDRA_INFRA/pom.xml" dependency:build-classpath \
			-Dmdep.outputFile="$cp.maven" || return 1
		# The engine user cannot read root's ~/.m2: hard links (copies across file systems).
		rm -rf "$lib.new" && mkdir -p "$lib.new" || return 1
		tr ':' '\n' <"$cp.maven" | while IFS= read -r jar || [ -n "$jar" ]; do
			[ -n "$jar" ] || continue
			ln -f "$jar" "$lib.new/" 2>/dev/null || cp -f "$jar" "$lib.new/" || exit 1
		done || return 1
		chmod -R a+rX "$lib.new"
		rm -rf "$lib" && mv "$lib.new" "$lib" || return 1
		{ tr ':' '\n' <"$cp.maven"; echo; } | sed -e '/^$/d' -e "s|.*/|$lib/|" | paste -sd: - >"$cp.new" && mv "$cp.new" "$cp"
		rm -f "$cp.maven"
		ok "$(tr ':' '\n' <"$cp" | wc -l) jars in $lib"
	else
		ok "Cassandra $(tr ':' '\n' <"$cp" | sed -n 's|.*/cassandra-all-\(.*\)\.jar$|\1|p') jars already resolved"
	fi

	# 2. cqlsh (a real CQL client) for readiness and provisioning.
	if [ ! -x "$CASSANDRA_CQLSH" ] || ! "$CASSANDRA_CQLSH" --version 2>/dev/null | grep -q "$CASSANDRA_CQLSH_VERSION"; then
		command -v python3 >/dev/null || apt_install python3 python3-venv
		if [ ! -x "$STATE/venv/bin/pip" ]; then
			python3 -m venv "$STATE/venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$STATE/venv"; } || return 1
		fi
		info "installing cqlsh $CASSANDRA_CQLSH_VERSION from PyPI into $STATE/venv"
		"$STATE/venv/bin/pip" install -q --disable-pip-version-check "cqlsh==$CASSANDRA_CQLSH_VERSION" || return 1
	fi
	ok "$("$CASSANDRA_CQLSH" --version) in $STATE/venv; Java: $jh"
}

cassandra_start() {
	local jh port storage_port data="$CASSANDRA_HOME_DIR/data" conf="$CASSANDRA_HOME_DIR/conf" tmp="$CASSANDRA_HOME_DIR/tmp"
	local -a opts cmd
	jh=$(_cassandra_java) || die "no JDK 17 found"
	port=$(_cassandra_port)
	storage_port=${POLYSHOP_CASSANDRA_STORAGE_PORT:-7000}
	[ -s "$CASSANDRA_HOME_DIR/classpath.txt" ] || die "cassandra is not installed (run: ./scripts/stack up cassandra)"
	port_in_use "$port" && die "127.0.0.1:$port is already in use by another process (not started by the stack)"
	port_in_use "$storage_port" && die "127.0.0.1:$storage_port (Cassandra storage port) is already in use"

	mkdir -p "$conf" "$CASSANDRA_HOME_DIR/triggers"
	engine_owns "$data/data" "$data/commitlog" "$data/saved_caches" "$data/hints" "$data/cdc_raw" "$tmp" "$LOGS/cassandra"
	sed -e "s|@DATA@|$data|g" -e "s|@NATIVE_PORT@|$port|g" -e "s|@STORAGE_PORT@|$storage_port|g" \
		"$CASSANDRA_INFRA/cassandra.yaml" >"$conf/cassandra.yaml" || return 1
	chmod a+r "$conf/cassandra.yaml"

	mapfile -t opts < <(grep -E '^-' "$CASSANDRA_INFRA/jvm17.options")
	cmd=("$jh/bin/java" "${opts[@]}"
		"-javaagent:$(echo "$CASSANDRA_HOME_DIR"/lib/jamm-*.jar)"
		"-XX:HeapDumpPath=$data"
		"-Djava.io.tmpdir=$tmp" "-Djna.tmpdir=$tmp"
		"-Dcassandra.config=file://$conf/cassandra.yaml"
		"-Dcassandra.storagedir=$data"
		"-Dcassandra.logdir=$LOGS/cassandra"
		"-Dcassandra.triggers_dir=$CASSANDRA_HOME_DIR/triggers"
		"-Dlogback.configurationFile=$CASSANDRA_INFRA/logback.xml"
		"-Dcassandra-foreground=yes"
		-cp "$(cat "$CASSANDRA_HOME_DIR/classpath.txt")"
		org.apache.cassandra.service.CassandraDaemon)

	# Not start_daemon_as_engine_user: runuser stays the parent and SIGKILLs its child 2 s after
	# a SIGTERM, which would cut Cassandra's drain short. setpriv execs, so the recorded pid is
	# the JVM itself (and the leader of its session).
	if [ "$(id -u)" = 0 ]; then
		ensure_engine_user
		cmd=(setpriv --reuid="$(id -u "$ENGINE_USER")" --regid="$(id -g "$ENGINE_USER")" --init-groups -- "${cmd[@]}")
	fi
	# The JVM must inherit no descriptor but 0-2: one held open on the caller's pipe would keep
	# e.g. `./scripts/stack up | tail` waiting forever. The wrapper closes them and execs.
	# shellcheck disable=SC2016
	(cd "$data" && start_daemon cassandra bash -c 'for f in /proc/$$/fd/*; do f=${f##*/}
		case $f in 0 | 1 | 2) ;; *) eval "exec $f>&-" 2>/dev/null ;; esac; done; exec "$@"' cassandra "${cmd[@]}") || return 1
	ok "pid $(cat "$(pidfile cassandra)"), CQL on 127.0.0.1:$port; logs: $LOGS/cassandra.log, $LOGS/cassandra/system.log"
}

# Ready when a CQL query succeeds: as the Polyshop superuser, or, before the first provisioning,
# as the default cassandra/cassandra.
cassandra_ready() {
	local q='SELECT release_version FROM system.local'
	# A JVM that died during start: `exit` ends the polling (step runs wait_until in a subshell)
	# at once, and `up` prints the log, instead of polling a dead process until the timeout.
	if [ -f "$(pidfile cassandra)" ] && ! is_running cassandra; then
		echo "the Cassandra JVM has exited" >&2
		exit 1
	fi
	port_in_use "$(_cassandra_port)" || return 1
	_cassandra_cql "${POLYSHOP_CASSANDRA_SUPERUSER:-polyshop_admin}" "${POLYSHOP_CASSANDRA_SUPERPASSWORD:-}" "$q" >/dev/null 2>&1 ||
		_cassandra_cql cassandra cassandra "$q" >/dev/null 2>&1
}

cassandra_provision() {
	local su=${POLYSHOP_CASSANDRA_SUPERUSER:?} sp=${POLYSHOP_CASSANDRA_SUPERPASSWORD:?}
	local au=${ACTIVITY_CASSANDRA_USERNAME:-activity} ap=${ACTIVITY_CASSANDRA_PASSWORD:?}
	local ks=${ACTIVITY_CASSANDRA_KEYSPACE:-activity} q='SELECT release_version FROM system.local' out i
	_cassandra_name POLYSHOP_CASSANDRA_SUPERUSER "$su"
	_cassandra_name ACTIVITY_CASSANDRA_USERNAME "$au"
	_cassandra_name ACTIVITY_CASSANDRA_KEYSPACE "$ks"
	[ "$su" != cassandra ] || die "POLYSHOP_CASSANDRA_SUPERUSER must not be the default 'cassandra'"

	# 1. Replace the default superuser cassandra/cassandra by $su (this query doubles as $su's
	#    login check).
	local roles="SELECT can_login, is_superuser FROM system_auth.roles WHERE role = 'cassandra'"
	if out=$(_cassandra_cql "$su" "$sp" "$roles" 2>/dev/null); then
		ok "superuser $su: can log in"
	else
		_cassandra_cql cassandra cassandra "$q" >/dev/null ||
			die "neither $su nor the default cassandra superuser can log in (wrong POLYSHOP_CASSANDRA_SUPERPASSWORD?)"
		_cassandra_cql cassandra cassandra "
			CREATE ROLE IF NOT EXISTS $su WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = $(_cassandra_str "$sp");
			ALTER ROLE $su WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = $(_cassandra_str "$sp");" || return 1
		for ((i = 0; i < 20; i++)); do
			out=$(_cassandra_cql "$su" "$sp" "$roles" 2>/dev/null) && break
			sleep 0.5
		done
		out=$(_cassandra_cql "$su" "$sp" "$roles") || return 1
		ok "superuser $su: created"
	fi
	if grep -q True <<<"$out"; then
		_cassandra_cql "$su" "$sp" "ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false AND PASSWORD = $(_cassandra_str "$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')")" || return 1
		ok "default role cassandra: login and superuser disabled, password randomised"
	else
		ok "default role cassandra: already disabled"
	fi

	# 2. The activity service: its keyspace, its login role, all permissions on that keyspace only.
	local set_password=
	if _cassandra_cql "$au" "$ap" "$q" >/dev/null 2>&1; then
		ok "role $au: can log in"
	else
		set_password="ALTER ROLE $au WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = $(_cassandra_str "$ap");"
	fi
	_cassandra_cql "$su" "$sp" "
		CREATE KEYSPACE IF NOT EXISTS $ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};
		CREATE ROLE IF NOT EXISTS $au WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = $(_cassandra_str "$ap");
		$set_password
		GRANT ALL PERMISSIONS ON KEYSPACE $ks TO $au;" || return 1
	[ -z "$set_password" ] || ok "role $au: created (or password reset)"
	ok "keyspace $ks (SimpleStrategy, RF 1); ALL PERMISSIONS on it granted to $au, nothing else"

	# 3. The access-pattern harness (./scripts/bench), when BENCH_CASSANDRA_PASSWORD is set:
	#    the same shape, its own role and keyspace.
	[ -n "${BENCH_CASSANDRA_PASSWORD:-}" ] || return 0
	local bu=${BENCH_CASSANDRA_USERNAME:-bench} bp=$BENCH_CASSANDRA_PASSWORD bks=${BENCH_CASSANDRA_KEYSPACE:-bench}
	_cassandra_name BENCH_CASSANDRA_USERNAME "$bu"
	_cassandra_name BENCH_CASSANDRA_KEYSPACE "$bks"
	set_password=
	_cassandra_cql "$bu" "$bp" "$q" >/dev/null 2>&1 ||
		set_password="ALTER ROLE $bu WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = $(_cassandra_str "$bp");"
	_cassandra_cql "$su" "$sp" "
		CREATE KEYSPACE IF NOT EXISTS $bks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};
		CREATE ROLE IF NOT EXISTS $bu WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = $(_cassandra_str "$bp");
		$set_password
		GRANT ALL PERMISSIONS ON KEYSPACE $bks TO $bu;" || return 1
	ok "keyspace $bks; ALL PERMISSIONS on it granted to $bu, nothing else"
}
