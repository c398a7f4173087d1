-- Accounts. A deleted account keeps its row (id, role, timestamps, version) so its event
-- sequence continues, but email, name, password hash and address are erased (NULL or '').
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text,
    name          text        NOT NULL DEFAULT '',
    role          text        NOT NULL CHECK (role IN ('customer', 'admin')),
    password_hash text        NOT NULL DEFAULT '',
    street        text,
    city          text,
    postal_code   text,
    country       char(2),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    -- the aggregate's sequence number: the sequence attribute of its latest event
    version       bigint      NOT NULL CHECK (version >= 1),
    CONSTRAINT users_live_has_email CHECK ((deleted_at IS NULL) = (email IS NOT NULL)),
    CONSTRAINT users_address_complete CHECK (
        (street IS NULL AND city IS NULL AND postal_code IS NULL AND country IS NULL) OR
        (street IS NOT NULL AND city IS NOT NULL AND postal_code IS NOT NULL AND country IS NOT NULL))
);

-- Emails are unique among live accounts, case-insensitively (citext needs a superuser to
-- install, so the index is on lower(email)). Deleted accounts have no email, which frees it
-- for a new sign-up.
CREATE UNIQUE INDEX users_email_live_key ON users (lower(email)) WHERE deleted_at IS NULL;
