package pgstore

// StatsQueries are the record counts payments exposes on GET /admin/stats (via
// pgstats.Count): payments (charged, declined or refunded) and tombstones (a refund that
// came before any charge). Each is a count(*): a sequential scan, cheap at workshop sizes.
var StatsQueries = map[string]string{
	"payments":   `SELECT count(*) FROM payments WHERE status <> 'tombstone'`,
	"tombstones": `SELECT count(*) FROM payments WHERE status = 'tombstone'`,
}
