-- Why a delivery was ignored (unsupported_event, no_ticket, echo, bot,
-- filtered). Transient failures now wait as `retrying` rather than
-- `pending`, which is left to deliveries never processed.
ALTER TABLE deliveries ADD COLUMN reason TEXT;
UPDATE deliveries SET status = 'retrying' WHERE status = 'pending' AND attempts > 0;
