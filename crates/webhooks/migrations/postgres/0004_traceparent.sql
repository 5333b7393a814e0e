-- A delivery carries the W3C `traceparent` its event was recorded with (the
-- log's `traceparent`, NULL when the event had none), sent as a header so the
-- receiver continues the trace of the request that appended the event.
ALTER TABLE trellis.webhook_deliveries ADD COLUMN traceparent text;
