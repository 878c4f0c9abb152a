-- Two-way sync's memory. Keep in step with ../sqlite/0011_sync_conflicts.sql.
--
-- sync_state: per (ticket, provider, field) the value both sides last
-- agreed on, and where it came from: an inbound delivery applied from the
-- provider, an outbox row sent to it, or a conflict resolved. A field is
-- `status`, `priority`, `subject`, `description`, `assignee`,
-- `labels` (a sorted JSON array), `ticket_type` or `fields.<name>`; NULL
-- is an empty value (no assignee, an unset custom field).
CREATE TABLE sync_state (
    ticket_guid TEXT NOT NULL REFERENCES tickets (guid),
    provider    TEXT NOT NULL,
    field       TEXT NOT NULL,
    value       TEXT,
    source      TEXT NOT NULL,            -- inbound, outbound, resolution
    delivery_id TEXT,                     -- inbound: the delivery applied
    outbox_id   BIGINT,                   -- outbound: the row sent
    history_id  BIGINT,                   -- the change that carried the value
    synced_at   TEXT NOT NULL,
    PRIMARY KEY (ticket_guid, provider, field)
);

-- conflicts: a field both sides moved since it was last synced, to
-- different values, under a policy that applies neither (`manual`, or a
-- `merge` the field's kind cannot do). Resolved through the API.
CREATE TABLE conflicts (
    id             BIGSERIAL PRIMARY KEY,
    ticket_guid    TEXT NOT NULL REFERENCES tickets (guid),
    provider       TEXT NOT NULL,
    field          TEXT NOT NULL,
    policy         TEXT NOT NULL,         -- manual, merge
    base_value     TEXT,                  -- last synced
    local_value    TEXT,
    external_value TEXT,
    delivery_id    TEXT,                  -- the inbound delivery that met it
    state          TEXT NOT NULL,         -- open, resolved
    created_at     TEXT NOT NULL,
    resolved_at    TEXT,
    resolved_by    TEXT,
    resolution     TEXT,                  -- local, external, value
    resolved_value TEXT,
    history_id     BIGINT                 -- the change the resolution made
);
CREATE INDEX conflicts_state ON conflicts (state, id);
CREATE INDEX conflicts_ticket ON conflicts (ticket_guid, id);
