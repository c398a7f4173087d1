// Package inbox documents how Polyshop consumers stay idempotent; its subpackages hold the
// helpers for engines that need one (pginbox for PostgreSQL).
//
// A consumer may see an event more than once (broker redelivery, a relay republishing after
// a crash, a dead-letter replay) and may see an aggregate's events out of order (a retried
// event overtaken by a later one when Concurrency > 1). Every handler therefore makes
// duplicates and stale events leave the same state:
//
//   - PostgreSQL (users, inventory, orders, payments): pginbox.Claim records the event id in
//     the inbox table inside the handler's transaction, so the side effects and the record
//     commit or roll back together; a second delivery finds the id and does nothing.
//     pginbox.Advance keeps the last applied sequence per aggregate for projections that
//     must drop stale events.
//   - Cassandra (activity): there are no transactions, so writes are keyed
//     deterministically: the row key is derived from the event (the aggregate or user id
//     plus a time bucket taken from the event's time as partition key, the event id as
//     clustering key), so a redelivery writes the same row with the same values and simply
//     overwrites it. Never use now() or a random id in a key.
//   - Elasticsearch (search): documents are indexed with version_type=external and
//     version = the event's sequence. A duplicate or stale event has a version not greater
//     than the stored one and is rejected with 409 version_conflict_engine_exception, which
//     the handler treats as success. Deletes carry the version too, so a late update cannot
//     resurrect a deleted document (within the index's gc_deletes window).
//   - MongoDB and Redis consumers use upserts keyed by aggregate id guarded by the stored
//     sequence ({seq: {$lt: e.sequence}} in the filter), the same rule as Advance.
package inbox
