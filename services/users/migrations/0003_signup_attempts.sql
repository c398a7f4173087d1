-- Sign-up throttling: one fixed-window counter per key ("e:<email>" or "c:<client address>"),
-- counted before the password is hashed. Rows of expired windows are reused in place, so
-- the table holds at most one row per email or address that ever tried.
CREATE TABLE signup_attempts (
	key          text PRIMARY KEY,
	count        integer NOT NULL,
	window_start timestamptz NOT NULL
);
