#!/bin/sh
# Prints Redis ACL rules from the environment. Used natively (written to .polyshop/redis/users.acl)
# and by docker-compose.yml (written to /tmp/users.acl in the redis container before start).
#
# - default: password-protected, used only by operators and the bring-up scripts.
# - sessions: keys and channels `sessions:*` only; data, stream, transaction and scripting
#   commands; nothing administrative or dangerous (no KEYS, FLUSHALL, CONFIG, DEBUG, ACL...).
# - bench (only when BENCH_REDIS_PASSWORD is set): the access-pattern harness (./scripts/bench),
#   the same command set on keys and channels `bench:*` only.
set -eu
: "${POLYSHOP_REDIS_ADMIN_PASSWORD:?}" "${SESSIONS_REDIS_PASSWORD:?}"
echo "user default on >${POLYSHOP_REDIS_ADMIN_PASSWORD} ~* &* +@all"
echo "user sessions on >${SESSIONS_REDIS_PASSWORD} resetkeys ~sessions:* resetchannels &sessions:* -@all +@connection +@read +@write +@keyspace +@string +@hash +@set +@sortedset +@list +@stream +@transaction +@scripting +@pubsub -@admin -@dangerous +scan"
if [ -n "${BENCH_REDIS_PASSWORD:-}" ]; then
	echo "user bench on >${BENCH_REDIS_PASSWORD} resetkeys ~bench:* resetchannels &bench:* -@all +@connection +@read +@write +@keyspace +@string +@hash +@set +@sortedset +@list +@stream +@transaction +@scripting +@pubsub -@admin -@dangerous +scan"
fi
