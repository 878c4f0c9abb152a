-- Claiming due deliveries filters by status, provider and time: with the
-- provider in the index, a provider whose deliveries wait (no mapper
-- serving) no longer makes every other provider's claim scan them.
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_due ON deliveries (status, provider, next_attempt_at);
