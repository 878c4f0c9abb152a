-- How a delivery's stored body is encoded: NULL as received, `lz4` an LZ4
-- block with the original length in front (store/body.rs). Rows written
-- before this migration keep NULL and read as they always did. Keep in
-- step with the other dialect's 0014.
ALTER TABLE deliveries ADD COLUMN body_encoding TEXT;
