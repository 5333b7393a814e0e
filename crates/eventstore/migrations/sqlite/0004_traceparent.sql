-- Trace context: the W3C `traceparent` of the request that appended an
-- event, kept with it so that a subscriber continues the trace. NULL for
-- events appended before it existed or without a trace. Not covered by the
-- hash chain, the seals or the Merkle tree. See the PostgreSQL migration of
-- the same name.

ALTER TABLE events ADD COLUMN traceparent TEXT
    CHECK (traceparent IS NULL OR (length(traceparent) = 55 AND traceparent GLOB
        '00-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f]'));
