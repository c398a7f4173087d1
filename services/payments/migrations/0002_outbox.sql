-- The transactional outbox, as shared/outbox/pgoutbox.Schema defines it (copied here so it
-- is applied under pgmigrate's lock, once). pgoutbox.Add writes to it in the same
-- transaction as the payments row; the relay publishes it to the NATS stream PAYMENTS.
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
