//! The stored Merkle tree in the embedded file (`tree_*`, migrations 0003
//! and 0007): leaves in segments ([`crate::segment`]), nodes from level 4 up.

use rusqlite::{Connection, OptionalExtension, ToSql, params};

use crate::merkle::NodeId;
use crate::segment::{self, Segment};
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
    let size: Option<i64> = conn
        .prepare_cached(
            "SELECT first_leaf + length(positions) / 8 FROM tree_segments \
             ORDER BY first_leaf DESC LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(size.map(unsigned).unwrap_or(0))
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

/// Discards the stored tree: its segments, its nodes and where its builder
/// had read the log to, so that a builder makes it again from the log's
/// first event (`trellis audit rebuild-tree`). The recorded checkpoints
/// stay. The tables refuse deletes: their guards are dropped and made again
/// as the migrations made them (a guard already missing or altered too),
/// all in one transaction.
pub(super) fn discard(conn: &mut Connection) -> Result<(), Error> {
    const TABLES: [&str; 2] = ["tree_segments", "tree_nodes"];
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for table in TABLES {
        tx.execute_batch(&format!("DROP TRIGGER IF EXISTS {table}_no_delete"))?;
    }
    tx.execute_batch("DELETE FROM tree_segments; DELETE FROM tree_nodes;")?;
    tx.execute(
        "DELETE FROM subscriber_checkpoints WHERE name = ?1",
        [READER],
    )?;
    super::guards::restore_in(&tx, Some(&TABLES))?;
    tx.commit()?;
    Ok(())
}

pub(super) fn extend(conn: &mut Connection, extension: &TreeExtension) -> Result<(), Error> {
    let segment::Rows { segments, nodes } = segment::split(extension)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = size(&tx)?;
    if now != extension.from_size {
        return Err(Error::Unavailable(format!(
            "the log's tree has {now} leaves, not {}: another process is building it",
            extension.from_size
        )));
    }
    {
        let rows = segments
            .iter()
            .map(|s| {
                Ok((
                    to_i64(s.first_leaf, "leaf index")?,
                    to_i64(s.first.position, "position")?,
                    s.positions_bytes(),
                    s.hashes_bytes(),
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let params: Vec<&dyn ToSql> = rows
            .iter()
            .flat_map(|(leaf, position, positions, hashes)| {
                [leaf as &dyn ToSql, position, positions, hashes]
            })
            .collect();
        insert_rows(
            &tx,
            "INSERT INTO tree_segments (first_leaf, first_position, positions, hashes)",
            4,
            &params,
        )?;
        let nodes = nodes
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

const SEGMENT_COLUMNS: &str = "first_leaf, first_position, positions, hashes";

fn segments(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Segment>, Error> {
    let rows = statement.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, Vec<u8>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (first_leaf, first_position, positions, hashes) = row?;
        let position = unsigned(first_position);
        out.push(Segment::from_columns(
            unsigned(first_leaf),
            // The file has one order.
            Checkpoint {
                tx: position,
                position,
            },
            &positions,
            &hashes,
        )?);
    }
    Ok(out)
}

/// The segments with a first leaf in `from .. to`, in order.
fn segments_between(conn: &Connection, from: u64, to: u64) -> Result<Vec<Segment>, Error> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM tree_segments \
         WHERE first_leaf >= ?1 AND first_leaf < ?2 ORDER BY first_leaf"
    ))?;
    segments(
        &mut statement,
        params![to_i64(from, "leaf index")?, to_i64(to, "leaf index")?],
    )
}

pub(super) fn nodes(conn: &Connection, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, Error> {
    let mut statement =
        conn.prepare_cached("SELECT hash FROM tree_nodes WHERE level = ?1 AND idx = ?2")?;
    let stored = segment::stored(ids)
        .iter()
        .map(|id| {
            statement
                .query_row(params![id.level, to_i64(id.index, "node index")?], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .optional()?
                .map(hash)
                .transpose()
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut kept = Vec::new();
    for tile in segment::tiles(ids) {
        let first = tile * segment::WIDTH;
        kept.extend(segments_between(conn, first, first + segment::WIDTH)?);
    }
    Ok(segment::answer(ids, stored, &kept))
}

pub(super) fn leaf_range(
    conn: &Connection,
    from: u64,
    max: usize,
) -> Result<Vec<(u64, u64, Hash)>, Error> {
    let segments = segments_between(
        conn,
        segment::first_start(from),
        from.saturating_add(max as u64),
    )?;
    Ok(segment::leaf_range(&segments, from, max))
}

pub(super) fn leaf_indexes(
    conn: &Connection,
    positions: &[u64],
) -> Result<Vec<Option<u64>>, Error> {
    // Leaves are in global order, so an event's leaf is in the last segment
    // that starts at or before its position.
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM tree_segments WHERE first_position <= ?1 \
         ORDER BY first_position DESC LIMIT 1"
    ))?;
    positions
        .iter()
        .map(|p| {
            let found = segments(&mut statement, [to_i64(*p, "position")?])?;
            Ok(found.first().and_then(|s| s.leaf_of(*p)))
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
