//! The stored Merkle tree in the embedded file (`tree_*`, migration 0003).

use rusqlite::{Connection, OptionalExtension, ToSql, params};

use crate::merkle::NodeId;
use crate::tree::{Leaf, StoredCheckpoint, TreeExtension, TreeState};
use crate::types::{limit, micros_to_time, to_i64};
use crate::{Checkpoint, Error, Hash};

/// The builder's read checkpoint, kept with the subscribers'.
const READER: &str = "trellis.tree";

fn hash(bytes: Vec<u8>) -> Result<Hash, Error> {
    Hash::from_slice(&bytes).ok_or_else(|| Error::Internal("a stored hash is not 32 bytes".into()))
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn size(conn: &Connection) -> Result<u64, Error> {
    let size: i64 = conn
        .prepare_cached("SELECT coalesce(max(leaf_index) + 1, 0) FROM tree_leaves")?
        .query_row([], |r| r.get(0))?;
    Ok(unsigned(size))
}

pub(super) fn state(conn: &Connection) -> Result<TreeState, Error> {
    let size = size(conn)?;
    let read = conn
        .prepare_cached("SELECT tx, position FROM subscriber_checkpoints WHERE name = ?1")?
        .query_row([READER], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?
        .map(|(tx, position)| Checkpoint {
            tx: unsigned(tx),
            position: unsigned(position),
        })
        .unwrap_or(Checkpoint::START);
    Ok(TreeState { size, read })
}

pub(super) fn extend(conn: &mut Connection, extension: &TreeExtension) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = size(&tx)?;
    if now != extension.from_size {
        return Err(Error::Unavailable(format!(
            "the log's tree has {now} leaves, not {}: another process is building it",
            extension.from_size
        )));
    }
    {
        let leaves = extension
            .positions
            .iter()
            .enumerate()
            .map(|(i, position)| {
                Ok([
                    to_i64(extension.from_size + i as u64, "leaf index")?,
                    to_i64(*position, "position")?,
                ])
            })
            .collect::<Result<Vec<[i64; 2]>, Error>>()?;
        let params: Vec<&dyn ToSql> = leaves
            .iter()
            .flat_map(|[leaf, position]| [leaf as &dyn ToSql, position])
            .collect();
        insert_rows(
            &tx,
            "INSERT INTO tree_leaves (leaf_index, global_position)",
            2,
            &params,
        )?;
        let nodes = extension
            .nodes
            .iter()
            .map(|(id, h)| Ok((i64::from(id.level), to_i64(id.index, "node index")?, &h.0)))
            .collect::<Result<Vec<_>, Error>>()?;
        let params: Vec<&dyn ToSql> = nodes
            .iter()
            .flat_map(|(level, index, h)| [level as &dyn ToSql, index, *h])
            .collect();
        insert_rows(&tx, "INSERT INTO tree_nodes (level, idx, hash)", 3, &params)?;
        tx.prepare_cached(
            "INSERT INTO subscriber_checkpoints (name, tx, position, updated_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, \
             position = excluded.position, updated_at = excluded.updated_at",
        )?
        .execute(params![
            READER,
            to_i64(extension.read.tx, "checkpoint")?,
            to_i64(extension.read.position, "checkpoint")?,
            chrono::Utc::now().timestamp_micros()
        ])?;
    }
    tx.commit()?;
    Ok(())
}

/// Rows per statement when the tree grows.
const ROWS_PER_INSERT: usize = 128;

/// Inserts rows of `columns` values each (`params`, row after row) with
/// statements of [`ROWS_PER_INSERT`] rows: an extension holds the file's
/// one writer, and a statement for each row spent most of that time
/// starting statements rather than inserting.
fn insert_rows(
    conn: &Connection,
    insert: &str,
    columns: usize,
    params: &[&dyn ToSql],
) -> Result<(), Error> {
    let sql = |rows: usize| {
        let row = format!("({})", vec!["?"; columns].join(", "));
        format!("{insert} VALUES {}", vec![row; rows].join(", "))
    };
    let full = sql(ROWS_PER_INSERT);
    for chunk in params.chunks(ROWS_PER_INSERT * columns) {
        let rows = chunk.len() / columns;
        if rows == ROWS_PER_INSERT {
            conn.prepare_cached(&full)?.execute(chunk)?;
        } else {
            conn.prepare(&sql(rows))?.execute(chunk)?;
        }
    }
    Ok(())
}

/// [`crate::EventStore::read_leaves`]: the events after `position`, in
/// `read_all`'s order, each one's position and hash only.
pub(super) fn read_leaves(
    conn: &Connection,
    position: i64,
    max: usize,
) -> Result<Vec<Leaf>, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT global_position, hash FROM events WHERE global_position > ?1 \
         ORDER BY global_position LIMIT ?2",
    )?;
    let rows = statement.query_map(params![position, limit(max)], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut leaves = Vec::new();
    for row in rows {
        let (position, h) = row?;
        let position = unsigned(position);
        leaves.push(Leaf {
            // As `read_all` gives it: the file has one order.
            checkpoint: Checkpoint {
                tx: position,
                position,
            },
            global_position: position,
            hash: hash(h)?,
        });
    }
    Ok(leaves)
}

pub(super) fn nodes(conn: &Connection, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, Error> {
    let mut statement =
        conn.prepare_cached("SELECT hash FROM tree_nodes WHERE level = ?1 AND idx = ?2")?;
    ids.iter()
        .map(|id| {
            statement
                .query_row(params![id.level, to_i64(id.index, "node index")?], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .optional()?
                .map(hash)
                .transpose()
        })
        .collect()
}

pub(super) fn leaf_range(
    conn: &Connection,
    from: u64,
    max: usize,
) -> Result<Vec<(u64, u64, Hash)>, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT l.leaf_index, l.global_position, n.hash FROM tree_leaves l \
         JOIN tree_nodes n ON n.level = 0 AND n.idx = l.leaf_index \
         WHERE l.leaf_index >= ?1 ORDER BY l.leaf_index LIMIT ?2",
    )?;
    let rows = statement.query_map(params![to_i64(from, "leaf index")?, limit(max)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (leaf, position, h) = row?;
        out.push((unsigned(leaf), unsigned(position), hash(h)?));
    }
    Ok(out)
}

pub(super) fn leaf_indexes(
    conn: &Connection,
    positions: &[u64],
) -> Result<Vec<Option<u64>>, Error> {
    let mut statement =
        conn.prepare_cached("SELECT leaf_index FROM tree_leaves WHERE global_position = ?1")?;
    positions
        .iter()
        .map(|p| {
            Ok(statement
                .query_row([to_i64(*p, "position")?], |r| r.get::<_, i64>(0))
                .optional()?
                .map(unsigned))
        })
        .collect()
}

pub(super) fn record(conn: &Connection, checkpoint: &StoredCheckpoint) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO tree_checkpoints (tree_size, key_id, signed_at, note) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        to_i64(checkpoint.size, "tree size")?,
        checkpoint.key_id,
        checkpoint.signed_at.timestamp_micros(),
        checkpoint.note
    ])?;
    Ok(())
}

fn stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, i64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_stored(
    (size, key_id, micros, note): (i64, String, i64, String),
) -> Result<StoredCheckpoint, Error> {
    Ok(StoredCheckpoint {
        size: unsigned(size),
        key_id,
        signed_at: micros_to_time(micros)?,
        note,
    })
}

pub(super) fn checkpoints(
    conn: &Connection,
    after_size: u64,
    max: usize,
) -> Result<Vec<StoredCheckpoint>, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT tree_size, key_id, signed_at, note FROM tree_checkpoints \
         WHERE tree_size > ?1 ORDER BY tree_size, signed_at LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![to_i64(after_size, "tree size")?, limit(max)],
        stored,
    )?;
    rows.map(|row| to_stored(row?)).collect()
}

pub(super) fn latest(conn: &Connection) -> Result<Option<StoredCheckpoint>, Error> {
    conn.prepare_cached(
        "SELECT tree_size, key_id, signed_at, note FROM tree_checkpoints \
         ORDER BY tree_size DESC, signed_at DESC LIMIT 1",
    )?
    .query_row([], stored)
    .optional()?
    .map(to_stored)
    .transpose()
}
