package pgstore

// StatsQueries are the record counts inventory exposes on GET /admin/stats (via
// pgstats.Count): products with stock (not retired), and reservations by what they hold
// (a row with status 'none' is an order a command has not acted on yet, so not counted).
// Each is a count(*): a sequential scan, cheap at workshop sizes.
var StatsQueries = map[string]string{
	"products":            `SELECT count(*) FROM stock WHERE retired_at IS NULL`,
	"reservations":        `SELECT count(*) FROM reservations WHERE status <> 'none'`,
	"active reservations": `SELECT count(*) FROM reservations WHERE status = 'active'`,
}
