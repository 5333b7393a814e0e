-- Batch seals (ADR 8): a write's events share one signature, of the root of
-- a small Merkle tree over their digests, and each event's seal goes on with
-- its place in that tree and its audit path (key id 4, signature 64, index
-- 4, size 4, then 32 bytes a hash). A seal of one event alone keeps its 68
-- bytes. Every seal written before this migration is 68 bytes, which the new
-- check admits, so it is added NOT VALID: no scan of the log, and new rows
-- are checked all the same.
ALTER TABLE trellis.events DROP CONSTRAINT events_seal_check;
ALTER TABLE trellis.events ADD CONSTRAINT events_seal_shape
    CHECK (seal IS NULL OR length(seal) = 68
           OR (length(seal) >= 76 AND (length(seal) - 76) % 32 = 0)) NOT VALID;
