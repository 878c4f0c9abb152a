-- A lane claims one provider's due deliveries oldest first. Through
-- `deliveries_due` that meant reading every waiting delivery of the
-- provider and sorting them for each claim of 64 — a cost growing with the
-- backlog, paid on the one writer connection the acknowledgements need.
-- Kept in claim order, the claim reads the oldest few and stops. The
-- statuses are `DeliveryStatus::CLAIMABLE`, in its order: the claim's
-- WHERE clause must repeat them for the index to serve it.
CREATE INDEX deliveries_claimable ON deliveries (provider, received_at, id)
    WHERE status IN ('pending', 'retrying', 'processing');
