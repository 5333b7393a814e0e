-- A delivery carries the W3C `traceparent` its event was recorded with. See
-- the PostgreSQL migration of the same name.
ALTER TABLE webhook_deliveries ADD COLUMN traceparent TEXT;
