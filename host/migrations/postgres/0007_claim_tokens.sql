-- Fenced claims: each claim writes a fresh token; only the holder of the
-- current token may renew the lease or record the outcome, so a worker whose
-- lease ran out (and whose delivery another worker took) cannot finish it.
ALTER TABLE deliveries ADD COLUMN claim_token TEXT;
