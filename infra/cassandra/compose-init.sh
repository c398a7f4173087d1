#!/bin/sh
# One-shot provisioning of Cassandra in docker compose (the cassandra image has cqlsh): the
# same end state as scripts/lib/engine-cassandra.sh natively — a polyshop superuser replaces
# the default cassandra/cassandra, and the activity role owns the activity keyspace only.
set -eu
: "${CASSANDRA_HOST:=cassandra}" "${POLYSHOP_CASSANDRA_SUPERUSER:?}" "${POLYSHOP_CASSANDRA_SUPERPASSWORD:?}"
: "${ACTIVITY_CASSANDRA_USERNAME:?}" "${ACTIVITY_CASSANDRA_PASSWORD:?}" "${ACTIVITY_CASSANDRA_KEYSPACE:?}"

super() { cqlsh "$CASSANDRA_HOST" -u "$POLYSHOP_CASSANDRA_SUPERUSER" -p "$POLYSHOP_CASSANDRA_SUPERPASSWORD" "$@"; }

if ! super -e "SELECT now() FROM system.local" >/dev/null 2>&1; then
	cqlsh "$CASSANDRA_HOST" -u cassandra -p cassandra -e "CREATE ROLE IF NOT EXISTS $POLYSHOP_CASSANDRA_SUPERUSER WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = '$POLYSHOP_CASSANDRA_SUPERPASSWORD';"
fi
super -e "ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false AND PASSWORD = '$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')';"
super -e "CREATE KEYSPACE IF NOT EXISTS $ACTIVITY_CASSANDRA_KEYSPACE WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};"
super -e "CREATE ROLE IF NOT EXISTS $ACTIVITY_CASSANDRA_USERNAME WITH LOGIN = true AND PASSWORD = '$ACTIVITY_CASSANDRA_PASSWORD';"
super -e "ALTER ROLE $ACTIVITY_CASSANDRA_USERNAME WITH PASSWORD = '$ACTIVITY_CASSANDRA_PASSWORD';"
super -e "GRANT ALL PERMISSIONS ON KEYSPACE $ACTIVITY_CASSANDRA_KEYSPACE TO $ACTIVITY_CASSANDRA_USERNAME;"
echo "cassandra: provisioned"
