-- The tree's lowest levels in segments (crates/eventstore/src/segment.rs):
-- a row for up to 16 consecutive leaves of one aligned run of 16, each
-- leaf's hash and its event's global position, and the place in the global
-- order (transaction, position) of its first leaf. The nodes of levels 1 to
-- 3 are hashed from a segment's leaves when a proof needs them; the nodes
-- from level 4 up are kept a row each, as before. A leaf and its nodes had
-- taken three rows an event, most of the tree's cost.
--
-- The stored tree is made from the log, so it is not converted: the old
-- tables go, and the builder integrates the log again from its first event
-- on its next start (a few microseconds an event). The signed
-- checkpoints stay; the tree made again has the same roots, as
-- `trellis audit verify` checks.

DROP TABLE trellis.tree_leaves;
DROP TABLE trellis.tree_nodes;
DELETE FROM trellis.subscriber_checkpoints WHERE name = 'trellis.tree';

CREATE TABLE trellis.tree_segments (
    first_leaf     bigint PRIMARY KEY CHECK (first_leaf >= 0),
    first_tx       xid8   NOT NULL,
    first_position bigint NOT NULL,
    -- Each leaf's event's global position, eight big-endian bytes each.
    positions      bytea  NOT NULL
        CHECK (length(positions) BETWEEN 8 AND 128 AND length(positions) % 8 = 0),
    -- Each leaf's hash, 32 bytes each.
    hashes         bytea  NOT NULL CHECK (length(hashes) = 4 * length(positions)),
    -- Within one aligned run of 16 leaves.
    CHECK (first_leaf % 16 + length(positions) / 8 <= 16)
);
-- Which leaf an event is: the segment whose first leaf comes last in the
-- global order at or before the event's place.
CREATE INDEX tree_segments_first_key ON trellis.tree_segments (first_tx, first_position);

CREATE TABLE trellis.tree_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 4 AND 63),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TRIGGER tree_segments_no_update BEFORE UPDATE ON trellis.tree_segments
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_segments_no_delete BEFORE DELETE ON trellis.tree_segments
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_segments_no_truncate BEFORE TRUNCATE ON trellis.tree_segments
    FOR EACH STATEMENT EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON trellis.tree_nodes
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON trellis.tree_nodes
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON trellis.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION trellis.refuse_change();

REVOKE ALL ON trellis.tree_segments, trellis.tree_nodes FROM PUBLIC;
GRANT SELECT, INSERT ON trellis.tree_segments, trellis.tree_nodes TO trellis_writer;
