-- One row per product the catalog announced. The ledger columns make the stock auditable
-- from outside: initial + restocked = available + reserved + sold holds after every
-- transaction (CHECK ledger). released only counts what came back from reservations
-- (release or expiry); reserved is what is held right now.
CREATE TABLE stock (
	product_id text PRIMARY KEY,
	initial    bigint NOT NULL CHECK (initial >= 0),
	restocked  bigint NOT NULL DEFAULT 0,
	reserved   bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
	sold       bigint NOT NULL DEFAULT 0 CHECK (sold >= 0),
	released   bigint NOT NULL DEFAULT 0 CHECK (released >= 0),
	available  bigint NOT NULL CHECK (available >= 0),
	version    bigint NOT NULL CHECK (version >= 1),
	retired_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT ledger CHECK (initial + restocked = available + reserved + sold)
);
