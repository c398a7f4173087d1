# shellcheck shell=bash
# Redis from Debian's packages, on 127.0.0.1:$POLYSHOP_REDIS_PORT with an ACL file: the
# default user needs a password, and the `sessions` user may run data commands on keys and
# channels starting with `sessions:` only.

REDIS_DIR="$STATE/redis"

redis_install() {
	command -v redis-server >/dev/null || apt_install redis-server
	# The Debian package starts a system instance on 6379; ours must not share its port.
	if [ "$(id -u)" = 0 ] && pgrep -x redis-server -u redis >/dev/null 2>&1; then
		info "stopping the Debian package's own redis-server (it holds port 6379)"
		service redis-server stop >/dev/null 2>&1 || pkill -u redis -x redis-server || true
	fi
	mkdir -p "$REDIS_DIR"
}

# redis_write_config renders the ACL and the config from infra/local.env (secrets stay out of git).
redis_write_config() {
	umask 077
	"$POLYSHOP_ROOT/infra/redis/render-acl.sh" >"$REDIS_DIR/users.acl"
	cat >"$REDIS_DIR/redis.conf" <<CONF
bind 127.0.0.1
port $POLYSHOP_REDIS_PORT
protected-mode yes
daemonize no
dir $REDIS_DIR
aclfile $REDIS_DIR/users.acl
appendonly yes
save ""
loglevel notice
CONF
	engine_owns "$REDIS_DIR"
}

redis_start() {
	port_in_use "$POLYSHOP_REDIS_PORT" && die "port $POLYSHOP_REDIS_PORT is taken by another process (set POLYSHOP_REDIS_PORT)"
	redis_write_config
	start_daemon_as_engine_user redis redis-server "$REDIS_DIR/redis.conf"
}

redis_ready() {
	[ "$(REDISCLI_AUTH="$POLYSHOP_REDIS_ADMIN_PASSWORD" redis-cli -h 127.0.0.1 -p "$POLYSHOP_REDIS_PORT" --user default ping 2>/dev/null)" = PONG ]
}

redis_provision() {
	# The ACL file is the source of truth; re-render it (passwords may have changed) and reload.
	redis_write_config
	REDISCLI_AUTH="$POLYSHOP_REDIS_ADMIN_PASSWORD" redis-cli -h 127.0.0.1 -p "$POLYSHOP_REDIS_PORT" --user default ACL LOAD >/dev/null
}
