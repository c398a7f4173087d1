-- The lab fault switches, stored so they survive a restart; exactly one row.
CREATE TABLE faults (
	id         boolean PRIMARY KEY DEFAULT true CHECK (id),
	latency_ms integer NOT NULL DEFAULT 0 CHECK (latency_ms BETWEEN 0 AND 60000),
	down       boolean NOT NULL DEFAULT false,
	updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO faults DEFAULT VALUES;
