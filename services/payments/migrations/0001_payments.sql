-- One payment per order: the unique order id is the idempotency key that makes a second
-- charge impossible. A tombstone (a refund that came before any charge) is a row too, so a
-- late charge finds it and is declined; tombstones are never removed.
CREATE TABLE payments (
    id              uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('charged', 'declined', 'refunded', 'tombstone')),
    -- what was charged (or asked for, when declined); 0 and '' for a tombstone
    amount          bigint      NOT NULL CHECK (amount >= 0),
    currency        text        NOT NULL,
    -- what was given back; never more than the charge
    refunded_amount bigint      CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    -- decline reason, or the order's cancel reason for refunded payments and tombstones
    reason          text        NOT NULL DEFAULT '',
    -- replies written for the order: the next reply's envelope sequence is replies + 1
    replies         bigint      NOT NULL CHECK (replies >= 1),
    -- the payment's event sequence (1 charged/declined, 2 refunded)
    version         bigint      NOT NULL CHECK (version >= 1),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT payments_order_key UNIQUE (order_id),
    CONSTRAINT payments_refunded_iff CHECK ((status = 'refunded') = (refunded_amount IS NOT NULL))
);

-- The lab's fault switches: one row, so they survive a restart and every instance sees them.
CREATE TABLE faults (
    id           int              PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    decline_rate double precision NOT NULL DEFAULT 0 CHECK (decline_rate BETWEEN 0 AND 1),
    error_rate   double precision NOT NULL DEFAULT 0 CHECK (error_rate BETWEEN 0 AND 1),
    latency_ms   integer          NOT NULL DEFAULT 0 CHECK (latency_ms BETWEEN 0 AND 60000),
    down         boolean          NOT NULL DEFAULT false,
    updated_at   timestamptz      NOT NULL DEFAULT now()
);
INSERT INTO faults (id) VALUES (1);
