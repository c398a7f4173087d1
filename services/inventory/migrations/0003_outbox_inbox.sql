-- The transactional outbox, as shared/outbox/pgoutbox.Schema defines it, and the inbox of
-- shared/inbox/pginbox (copied here so they are applied under pgmigrate's lock, once).
CREATE TABLE IF NOT EXISTS outbox (
	id           uuid PRIMARY KEY,
	seq          bigserial NOT NULL,
	aggregate    text NOT NULL,
	type         text NOT NULL,
	envelope     jsonb NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_aggregate ON outbox (aggregate, seq) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS inbox (
	consumer     text NOT NULL,
	event_id     uuid NOT NULL,
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS aggregate_seq (
	consumer  text NOT NULL,
	aggregate text NOT NULL,
	seq       bigint NOT NULL,
	PRIMARY KEY (consumer, aggregate)
);
