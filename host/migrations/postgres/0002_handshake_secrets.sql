-- Secrets a provider hands over in a handshake (Asana's `X-Hook-Secret`):
-- one per webhook it created, each a key its later signatures may use.
-- Kept in step between the SQLite and PostgreSQL dialects.
CREATE TABLE handshake_secrets (
    provider   TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (provider, secret)
);
