-- Orders. status is the public state: PENDING until the saga ends, then CONFIRMED or
-- CANCELLED, never changed again. The shipping address is a copy taken at placement;
-- it is erased (NULL) when the user is deleted, once the order is terminal.
CREATE TABLE orders (
    id               uuid        PRIMARY KEY,
    user_id          uuid        NOT NULL,
    idempotency_key  text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash     text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    cancel_reason    text,
    total_amount     bigint      NOT NULL,
    currency         text        NOT NULL,
    street           text,
    city             text,
    postal_code      text,
    country          text,
    -- set by users.deleted while the order is PENDING: erase the address when it ends
    erase_address    boolean     NOT NULL DEFAULT false,
    payment_id       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT orders_idempotency UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_user_newest ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_newest ON orders (created_at DESC, id DESC);

-- Order lines: name and unit price copied from the product copy at placement.
CREATE TABLE order_items (
    order_id    uuid    NOT NULL REFERENCES orders (id),
    line        int     NOT NULL,
    product_id  uuid    NOT NULL,
    name        text    NOT NULL,
    quantity    int     NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_amount bigint  NOT NULL,
    currency    text    NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- The saga, one row per order. Timers are columns: next_attempt_at (resend the current
-- command), step_deadline_at (give the step up: RESERVING and CHARGING only) and
-- saga_deadline_at (never charge after it). Any orders process claims due rows with
-- FOR UPDATE SKIP LOCKED. version is the sequence of the commands and events it writes.
CREATE TABLE sagas (
    order_id          uuid        PRIMARY KEY REFERENCES orders (id),
    user_id           uuid        NOT NULL,
    state             text        NOT NULL CHECK (state IN
                          ('RESERVING', 'CHARGING', 'COMMITTING', 'REFUNDING', 'RELEASING', 'CONFIRMED', 'CANCELLED')),
    version           bigint      NOT NULL CHECK (version >= 1),
    reason            text,
    attempt           int         NOT NULL DEFAULT 1,
    last_failed       boolean     NOT NULL DEFAULT false,
    last_error        text,
    next_attempt_at   timestamptz,
    step_deadline_at  timestamptz,
    saga_deadline_at  timestamptz NOT NULL,
    state_since       timestamptz NOT NULL,
    -- the correlation id of the placement, carried by every command the saga sends
    correlation_id    text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
-- The timer worker's scan: only sagas that still have a timer.
CREATE INDEX sagas_due ON sagas (LEAST(next_attempt_at, step_deadline_at))
    WHERE state NOT IN ('CONFIRMED', 'CANCELLED');

-- Each step's history for the order's "steps": when, how many sends, the last error.
CREATE TABLE saga_steps (
    order_id   uuid        NOT NULL REFERENCES orders (id),
    step       int         NOT NULL,
    name       text        NOT NULL,
    status     text        NOT NULL,
    attempts   int         NOT NULL,
    error      text,
    started_at timestamptz NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (order_id, step)
);

-- Fault switches that survive a restart: one row.
CREATE TABLE faults (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    step_timeout_ms int
);
INSERT INTO faults (id) VALUES (true);
