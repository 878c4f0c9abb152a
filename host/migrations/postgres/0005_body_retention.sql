-- Retention: a delivery's raw body is emptied once it is older than the
-- configured retention, and the row kept with the time it was dropped.
-- The partial index holds only rows that still have their body, so the
-- retention task's batch finds the oldest of them without a scan.
ALTER TABLE deliveries ADD COLUMN body_dropped_at TEXT;
CREATE INDEX deliveries_body_kept ON deliveries (received_at) WHERE body_dropped_at IS NULL;
