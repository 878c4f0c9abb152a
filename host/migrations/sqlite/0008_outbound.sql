-- Outbound sync (the change feed's worker) and what milestone 2's world adds
-- to a ticket. Keep in step with the other dialect's 0008_outbound.sql.

-- Custom fields (a JSON object of strings) and when the ticket entered its
-- status (NULL: it never moved, so its creation).
ALTER TABLE tickets ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tickets ADD COLUMN status_changed_at TEXT;

-- The outbox becomes a leased queue like the inbox: a claim token fences
-- the worker that holds a row; the ticket orders a provider's rows (a
-- comment never goes out before the create of its target); the mapper's
-- requests are kept with how many were sent, so a retry resends only what
-- did not go out.
ALTER TABLE outbox ADD COLUMN ticket_guid TEXT;
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
ALTER TABLE outbox ADD COLUMN mapper_hash TEXT;
ALTER TABLE outbox ADD COLUMN requests TEXT;
ALTER TABLE outbox ADD COLUMN sent_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN updated_at TEXT;
UPDATE outbox SET ticket_guid = (SELECT ticket_guid FROM history WHERE history.id = outbox.history_id);
DROP INDEX outbox_pending;
CREATE INDEX outbox_due ON outbox (status, provider, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox (provider, ticket_guid, id);

-- Every request the outbound worker sent, with what came back.
CREATE TABLE outbox_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id        INTEGER NOT NULL REFERENCES outbox (id),
    attempt          INTEGER NOT NULL,
    request_index    INTEGER NOT NULL,
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    status_code      INTEGER,                -- NULL: no answer (timeout, connection)
    error            TEXT,
    response_excerpt TEXT,
    duration_ms      INTEGER NOT NULL,
    at               TEXT NOT NULL
);
CREATE INDEX outbox_attempts_row ON outbox_attempts (outbox_id, id);
