-- Local copies (read models owned by orders), kept from the owners' events. Placing an
-- order reads only these, never the users or catalog service.

-- A customer's current shipping address, from users.registered (row without address),
-- users.address_changed (full address) and users.deleted (row removed). Stale or duplicate
-- events are dropped by pginbox.Advance (aggregate_seq), so a late address_changed cannot
-- bring back a deleted user's address.
CREATE TABLE customers (
    user_id     uuid        PRIMARY KEY,
    street      text,
    city        text,
    postal_code text,
    country     text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_address_complete CHECK (
        (street IS NULL AND city IS NULL AND postal_code IS NULL AND country IS NULL) OR
        (street IS NOT NULL AND city IS NOT NULL AND postal_code IS NOT NULL AND country IS NOT NULL))
);

-- A product's name and price, from catalog.product_created / product_updated (full state)
-- and product_deleted (deleted_at set; the row stays so the reason can be named).
CREATE TABLE products (
    product_id   uuid        PRIMARY KEY,
    name         text        NOT NULL,
    price_amount bigint      NOT NULL CHECK (price_amount >= 0),
    currency     text        NOT NULL,
    deleted_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The inbox (shared/inbox/pginbox.Schema, copied so it is applied under pgmigrate's lock).
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

-- The transactional outbox (shared/outbox/pgoutbox.Schema): commands and order events are
-- written in the same transaction as the saga's state; the relay publishes them.
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
