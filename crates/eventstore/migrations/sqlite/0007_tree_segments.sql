-- The tree's lowest levels in segments of up to 16 leaves, nodes kept from
-- level 4 up. See the PostgreSQL migration of the same name. The file has
-- one order, by global position, so a segment's first leaf needs no
-- transaction.

DROP TABLE tree_leaves;
DROP TABLE tree_nodes;
DELETE FROM subscriber_checkpoints WHERE name = 'trellis.tree';

CREATE TABLE tree_segments (
    first_leaf     INTEGER PRIMARY KEY CHECK (first_leaf >= 0),
    first_position INTEGER NOT NULL UNIQUE,
    positions      BLOB    NOT NULL
        CHECK (length(positions) BETWEEN 8 AND 128 AND length(positions) % 8 = 0),
    hashes         BLOB    NOT NULL CHECK (length(hashes) = 4 * length(positions)),
    CHECK (first_leaf % 16 + length(positions) / 8 <= 16)
);

CREATE TABLE tree_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 4 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TRIGGER tree_segments_no_update BEFORE UPDATE ON tree_segments
BEGIN SELECT RAISE(ABORT, 'tree_segments is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER tree_segments_no_delete BEFORE DELETE ON tree_segments
BEGIN SELECT RAISE(ABORT, 'tree_segments is append-only: DELETE is not allowed'); END;
CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'tree_nodes is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'tree_nodes is append-only: DELETE is not allowed'); END;
