-- Stable error codes (auth_failed, not_found, rate_limited, validation_failed,
-- conflict, unavailable, refused, mapping_failed) beside the free-text
-- errors of outbox rows and attempts, so operators and alerts can act on a
-- class of failure. Keep in step with the other dialect's 0013.
ALTER TABLE outbox ADD COLUMN error_code TEXT;
ALTER TABLE outbox_attempts ADD COLUMN error_code TEXT;
