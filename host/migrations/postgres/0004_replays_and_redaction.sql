-- A second dedupe key for providers whose delivery-id header is not signed:
-- the body's hash. A captured body resent under a fresh delivery id is then
-- a duplicate of the first delivery. NULL where the provider does not use it.
ALTER TABLE deliveries ADD COLUMN body_key TEXT;
CREATE UNIQUE INDEX deliveries_body_key ON deliveries (provider, body_key) WHERE body_key IS NOT NULL;
-- Verification tokens are removed from a delivery's headers and query before
-- it is stored. Rows stored before that are redacted by the host at start-up
-- (it knows each provider's token header and parameter from its config) and
-- then marked 1; the partial index keeps the start-up pass cheap.
ALTER TABLE deliveries ADD COLUMN redacted BIGINT NOT NULL DEFAULT 0;
CREATE INDEX deliveries_unredacted ON deliveries (provider) WHERE redacted = 0;
