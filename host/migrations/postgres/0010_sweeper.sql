-- The stale-ticket sweeper's memory: one row per notice it recorded, keyed
-- by (rule, kind, ticket, period), so a restart, a rerun or a second
-- replica never records the same notice twice: the insert that loses the
-- race inserts nothing and its transaction writes no history or outbox row.
-- A digest covers no one ticket: its ticket_guid is ''. The period is the
-- schedule tick (RFC 3339, UTC) the notice belongs to. Keep in step with
-- the other dialect's 0011_sweeper.sql.
CREATE TABLE sweeper_notices (
    rule        TEXT NOT NULL,
    kind        TEXT NOT NULL,            -- direct, digest
    ticket_guid TEXT NOT NULL,
    period      TEXT NOT NULL,
    history_id  BIGINT NOT NULL REFERENCES history (id),
    tickets     BIGINT NOT NULL,          -- how many tickets the notice covers
    at          TEXT NOT NULL,
    PRIMARY KEY (rule, kind, ticket_guid, period)
);
CREATE INDEX sweeper_notices_at ON sweeper_notices (rule, at);
