#!/bin/sh
# One-shot provisioning of Elasticsearch in docker compose: the search_service role (its own
# indices only, as infra/elasticsearch/roles.yml natively) and the search user.
set -eu
: "${ES_URL:=http://elasticsearch:9200}" "${ELASTIC_PASSWORD:?}" "${SEARCH_ELASTICSEARCH_PASSWORD:?}"
: "${SEARCH_ELASTICSEARCH_USERNAME:=search}"
es() { curl -fsS -u "elastic:$ELASTIC_PASSWORD" -H 'Content-Type: application/json' "$@"; }
es -X PUT "$ES_URL/_security/role/search_service" -d '{
  "cluster": ["cluster:monitor/main", "cluster:monitor/health"],
  "indices": [{"names": ["products*", "search-*"], "privileges": ["all"]}]
}' >/dev/null
es -X PUT "$ES_URL/_security/user/$SEARCH_ELASTICSEARCH_USERNAME" -d "{
  \"password\": \"$SEARCH_ELASTICSEARCH_PASSWORD\", \"roles\": [\"search_service\"]
}" >/dev/null
echo "elasticsearch: provisioned"
