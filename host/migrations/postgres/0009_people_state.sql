-- The people directory and mapper state. Keep in step with the other
-- dialect's 0009_people_state.sql.

-- One person per e-mail (stored lower-case: e-mails are looked up
-- case-insensitively), seeded from the config's `people:` and edited
-- through /v1/people.
CREATE TABLE people (
    email      TEXT PRIMARY KEY,
    name       TEXT,
    updated_at TEXT NOT NULL
);

-- A person's id at a provider (a GitHub login, a Slack user id). An id
-- names one person; a person may have several ids at one provider.
CREATE TABLE person_identities (
    provider    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    email       TEXT NOT NULL REFERENCES people (email) ON DELETE CASCADE,
    PRIMARY KEY (provider, external_id)
);
CREATE INDEX person_identities_email ON person_identities (email);

-- A provider's mapper state (a history cursor, a sync token): written
-- only by compare-and-set, in the transaction that applies the delivery
-- whose mapping made the write.
CREATE TABLE mapper_state (
    provider   TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (provider, key)
);
