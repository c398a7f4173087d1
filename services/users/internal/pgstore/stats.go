package pgstore

// StatsQueries are the record counts the users service exposes on GET /admin/stats (via
// pgstats.Count): live accounts, and deleted ones (kept as rows without personal data).
// Each is a count(*) over the users table: a sequential scan, cheap at workshop sizes.
var StatsQueries = map[string]string{
	"accounts":         `SELECT count(*) FROM users WHERE deleted_at IS NULL`,
	"deleted accounts": `SELECT count(*) FROM users WHERE deleted_at IS NOT NULL`,
}
