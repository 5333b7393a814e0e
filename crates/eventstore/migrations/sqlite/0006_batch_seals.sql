-- Batch seals (ADR 8): a write's events share one signature, of the root of
-- a small Merkle tree over their digests, and each event's seal goes on with
-- its place and audit path in that tree. The 68 bytes of key id and
-- signature stay in `seal`; the rest (index, size, path) is kept here, since
-- SQLite cannot change the old column's length check without copying the
-- log. NULL for a seal of one event alone and for events without a seal.
-- See the PostgreSQL migration of the same name.

ALTER TABLE events ADD COLUMN seal_path BLOB
    CHECK (seal_path IS NULL OR (seal IS NOT NULL AND length(seal_path) >= 8
        AND (length(seal_path) - 8) % 32 = 0));
