-- Sluice's schema, PostgreSQL dialect. Times are RFC 3339 UTC text with
-- microseconds (`2026-11-22T18:12:00.123456Z`), which sorts as text.
-- Keep in step with ../sqlite/0001_init.sql: one conformance suite runs
-- against both.

CREATE TABLE tickets (
    guid              TEXT PRIMARY KEY,
    subject           TEXT NOT NULL,
    description       TEXT NOT NULL,
    status            TEXT NOT NULL,
    priority          TEXT NOT NULL,
    ticket_type       TEXT NOT NULL,
    assignee          TEXT,
    requested_by      TEXT,
    labels            TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    resolved_at       TEXT,
    resolved_by       TEXT,
    escalated_at      TEXT,
    escalated_by      TEXT,
    escalation_reason TEXT
);
CREATE INDEX tickets_status ON tickets (status, updated_at);
CREATE INDEX tickets_assignee ON tickets (assignee);
CREATE INDEX tickets_updated ON tickets (updated_at, guid);

-- The change feed and audit log: one row per applied change.
CREATE TABLE history (
    id          BIGSERIAL PRIMARY KEY,
    ticket_guid TEXT NOT NULL REFERENCES tickets (guid),
    kind        TEXT NOT NULL,            -- action name, or `update` / `note` from the API
    change      TEXT NOT NULL,            -- canonical JSON of the action
    actor       TEXT,
    origin      TEXT,                     -- provider, or NULL for the API
    delivery_id TEXT,
    mapper_hash TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX history_ticket ON history (ticket_guid, id);

CREATE TABLE comments (
    id          BIGSERIAL PRIMARY KEY,
    ticket_guid TEXT NOT NULL REFERENCES tickets (guid),
    body        TEXT NOT NULL,
    author      TEXT NOT NULL,
    origin      TEXT,
    external_id TEXT,                     -- the provider's comment id
    at          TEXT NOT NULL
);
CREATE INDEX comments_ticket ON comments (ticket_guid, id);
CREATE UNIQUE INDEX comments_external ON comments (origin, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE signoffs (
    ticket_guid TEXT NOT NULL REFERENCES tickets (guid),
    activity    TEXT NOT NULL,
    role        TEXT NOT NULL,            -- R, A, C, I
    email       TEXT NOT NULL,
    status      TEXT NOT NULL,            -- PENDING, APPROVED, REJECTED
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (ticket_guid, activity, role, email)
);

CREATE TABLE pr_links (
    repo        TEXT NOT NULL,
    pr_id       TEXT NOT NULL,
    ticket_guid TEXT NOT NULL REFERENCES tickets (guid),
    url         TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (repo, pr_id)
);
CREATE INDEX pr_links_ticket ON pr_links (ticket_guid);

-- Integration links: a provider's record mirrored by a ticket.
CREATE TABLE links (
    provider    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ticket_guid TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (provider, external_id)
);
CREATE INDEX links_ticket ON links (ticket_guid);

-- Deliveries whose actions were applied, with what they produced, so
-- applying one again changes nothing and answers the same.
CREATE TABLE applied (
    delivery_id TEXT PRIMARY KEY,
    result      TEXT NOT NULL,            -- JSON
    at          TEXT NOT NULL
);

-- The inbox: every verified delivery, raw.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    headers         TEXT NOT NULL,        -- JSON array of [name, value]
    body            BYTEA NOT NULL,
    received_at     TEXT NOT NULL,
    status          TEXT NOT NULL,        -- pending, applied, ignored, failed, dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    mapper_hash     TEXT,
    event_type      TEXT,
    output          TEXT,                 -- mapper output, canonical JSON
    UNIQUE (provider, dedupe_key)
);
CREATE INDEX deliveries_pending ON deliveries (status, next_attempt_at);

-- Outbound work: one row per (change, provider).
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    history_id      BIGINT NOT NULL REFERENCES history (id),
    provider        TEXT NOT NULL,
    status          TEXT NOT NULL,        -- pending, sent, failed, dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    UNIQUE (history_id, provider)
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

-- External ids the host itself created at a provider, to drop their echoes.
CREATE TABLE processed_external_ids (
    provider    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (provider, external_id)
);
