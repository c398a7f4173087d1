#!/usr/bin/env bash
# Creates one database and one login role per owning service, each able to enter only its own
# database. Used both by the native stack (scripts/lib/engine-postgres.sh) and by the official
# postgres image in docker-compose.yml (mounted into /docker-entrypoint-initdb.d).
#
# Needs: psql on PATH, PG* variables (or the image's POSTGRES_USER) for a superuser
# connection, and USERS_DB_PASSWORD, INVENTORY_DB_PASSWORD, ORDERS_DB_PASSWORD,
# PAYMENTS_DB_PASSWORD; BENCH_DB_PASSWORD, when set, adds the role and database `bench` of the
# access-pattern harness (./scripts/bench), which no service uses. Idempotent: roles get
# their password reset, existing databases stay.
# POLYSHOP_PG_OWNERS names other owners instead (natively, scripts/lib/engine-ferretdb.sh
# provisions the catalog's own role and database for FerretDB's PostgreSQL backend with it).
set -euo pipefail

: "${PGUSER:=${POSTGRES_USER:-postgres}}"
export PGUSER
psql_admin() { psql -v ON_ERROR_STOP=1 -qAt --dbname "${PGDATABASE:-postgres}" "$@"; }

# No database is open to everyone: CONNECT must be granted, and only to its owner.
for db in postgres template1; do
	psql_admin -c "REVOKE CONNECT ON DATABASE $db FROM PUBLIC;"
done

owners=${POLYSHOP_PG_OWNERS:-users inventory orders payments${BENCH_DB_PASSWORD:+ bench}}
for svc in $owners; do
	var="$(echo "$svc" | tr a-z A-Z)_DB_PASSWORD"
	pw="${!var:?$var is not set}"
	psql_admin -v svc="$svc" -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'svc')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'svc') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L', :'svc', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'svc', :'svc')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'svc') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'svc') \gexec
SELECT format('GRANT CONNECT, TEMPORARY, CREATE ON DATABASE %I TO %I', :'svc', :'svc') \gexec
SQL
	# The public schema belongs to the service's role, and to nobody else.
	psql_admin --dbname "$svc" -v svc="$svc" <<'SQL'
SELECT format('ALTER SCHEMA public OWNER TO %I', :'svc') \gexec
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
done
