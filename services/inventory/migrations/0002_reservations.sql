-- One row per order: the unit every saga command of that order locks (SELECT … FOR
-- UPDATE). A command for an order without a row inserts it first (status 'none'), so a
-- release that comes before its reserve has a row to leave its tombstone in. Rows are
-- never deleted: tombstones must outlive any delay. The stored replies (one per verb) are
-- what a repeated command gets back.
CREATE TABLE reservations (
	order_id      uuid PRIMARY KEY,
	id            uuid NOT NULL UNIQUE,
	user_id       text NOT NULL DEFAULT '',
	status        text NOT NULL DEFAULT 'none'
		CHECK (status IN ('none', 'active', 'rejected', 'released', 'committed', 'expired', 'tombstone')),
	items         jsonb NOT NULL DEFAULT '[]',
	reserve_reply jsonb,
	release_reply jsonb,
	commit_reply  jsonb,
	replies       bigint NOT NULL DEFAULT 0,
	version       bigint NOT NULL DEFAULT 0,
	created_at    timestamptz NOT NULL DEFAULT now(),
	expires_at    timestamptz,
	updated_at    timestamptz NOT NULL DEFAULT now()
);
-- The sweeper's work list: active reservations by expiry.
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'active';
