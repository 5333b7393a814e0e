-- Seals: every event's content digest signed by the service's key; and the
-- Merkle tree over the whole log and its signed checkpoints. See the
-- PostgreSQL migration of the same name.

ALTER TABLE events ADD COLUMN seal BLOB CHECK (seal IS NULL OR length(seal) = 68);

CREATE TABLE tree_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE tree_leaves (
    leaf_index      INTEGER PRIMARY KEY CHECK (leaf_index >= 0),
    global_position INTEGER NOT NULL UNIQUE
);

CREATE TABLE tree_checkpoints (
    tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
    key_id    TEXT    NOT NULL,
    signed_at INTEGER NOT NULL,
    note      TEXT    NOT NULL,
    PRIMARY KEY (tree_size, key_id)
) WITHOUT ROWID;

CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'tree_nodes is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'tree_nodes is append-only: DELETE is not allowed'); END;
CREATE TRIGGER tree_leaves_no_update BEFORE UPDATE ON tree_leaves
BEGIN SELECT RAISE(ABORT, 'tree_leaves is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER tree_leaves_no_delete BEFORE DELETE ON tree_leaves
BEGIN SELECT RAISE(ABORT, 'tree_leaves is append-only: DELETE is not allowed'); END;
CREATE TRIGGER tree_checkpoints_no_update BEFORE UPDATE ON tree_checkpoints
BEGIN SELECT RAISE(ABORT, 'tree_checkpoints is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER tree_checkpoints_no_delete BEFORE DELETE ON tree_checkpoints
BEGIN SELECT RAISE(ABORT, 'tree_checkpoints is append-only: DELETE is not allowed'); END;
