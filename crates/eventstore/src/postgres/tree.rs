//! The stored Merkle tree on PostgreSQL (`trellis.tree_*`, migrations 0004
//! and 0009): leaves in segments ([`crate::segment`]), nodes from level 4 up.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use super::xid8::Xid8;
use crate::merkle::NodeId;
use crate::segment::{self, Segment};
use crate::tree::{StoredCheckpoint, TreeExtension, TreeState};
use crate::types::{limit, to_i64};
use crate::{Checkpoint, Error, Hash};

/// Serialises builders across processes for the length of one extension.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('trellis.tree'))";
/// The builder's read checkpoint, kept with the subscribers'.
const READER: &str = "trellis.tree";

fn hash(bytes: &[u8]) -> Result<Hash, Error> {
    Hash::from_slice(bytes)
        .ok_or_else(|| Error::Internal("a stored tree hash is not 32 bytes".into()))
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

async fn size(client: &impl GenericClient) -> Result<u64, Error> {
    Ok(unsigned(client.query_one(SIZE, &[]).await?.get(0)))
}

pub(super) async fn state(client: &impl GenericClient) -> Result<TreeState, Error> {
    let size = size(client).await?;
    let read = client
        .query_opt(
            "SELECT tx, position FROM trellis.subscriber_checkpoints WHERE name = $1",
            &[&READER],
        )
        .await?
        .map(|row| Checkpoint {
            tx: unsigned(row.get(0)),
            position: unsigned(row.get(1)),
        })
        .unwrap_or(Checkpoint::START);
    Ok(TreeState { size, read })
}

/// The stored tree's size, read inside an extension (see [`extend`]).
const SIZE: &str = "SELECT coalesce((SELECT first_leaf + length(positions) / 8 \
                    FROM trellis.tree_segments ORDER BY first_leaf DESC LIMIT 1), 0)";
const INSERT_SEGMENTS: &str = "INSERT INTO trellis.tree_segments \
         (first_leaf, first_tx, first_position, positions, hashes) \
     SELECT * FROM unnest($1::bigint[], $2::xid8[], $3::bigint[], $4::bytea[], $5::bytea[])";
const INSERT_NODES: &str = "INSERT INTO trellis.tree_nodes (level, idx, hash) \
     SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])";
const SAVE_READER: &str = "INSERT INTO trellis.subscriber_checkpoints (name, tx, position) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, position = excluded.position, \
     updated_at = now()";

/// Discards the stored tree: its segments, its nodes and where its builder
/// had read the log to. A builder then makes it again from the log's first
/// event (`trellis audit rebuild-tree`, the repair for a stored tree that
/// was altered). The recorded checkpoints stay.
///
/// The tables refuse deletes: their guards are dropped and made again
/// inside one transaction, which only the schema's owner may do, and no
/// other session sees them gone. Builders wait on their lock meanwhile and find
/// the tree empty after, which refuses their next extension (they reload).
pub(super) async fn discard(client: &mut deadpool_postgres::Object) -> Result<(), Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "{LOCK};
         DROP TRIGGER IF EXISTS tree_segments_no_delete ON trellis.tree_segments;
         DROP TRIGGER IF EXISTS tree_nodes_no_delete ON trellis.tree_nodes;
         DELETE FROM trellis.tree_segments;
         DELETE FROM trellis.tree_nodes;
         DELETE FROM trellis.subscriber_checkpoints WHERE name = '{READER}';"
    ))
    .await
    .map_err(|e| match e.code() {
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => Error::InvalidInput(
            "only the schema's owner may discard the stored tree, and this connection's role \
             is not it: connect as the role `trellis migrate` runs as"
                .into(),
        ),
        _ => e.into(),
    })?;
    // Made again as the migrations made them: a guard of these tables that
    // was already missing or altered is mended too.
    super::guards::restore_in(&*tx, Some(&["tree_segments", "tree_nodes"])).await?;
    tx.commit().await?;
    Ok(())
}

/// Stores `extension` in one transaction of three round trips: BEGIN; the
/// builders' lock, the size check and every write, sent together; COMMIT.
/// One after another, with a statement prepared for each write, the
/// statements took ten, which made most of a catch-up's time under load
/// (`trellis-bench append`: about 4 ms for 700 leaves).
///
/// The writes go out before the size is known: the server runs them in
/// order after the lock and the check, and when the size is not the one
/// the extension starts from, what they did (or the error a clash gave
/// them) is rolled back with the transaction, and another builder's work is
/// named as the cause.
pub(super) async fn extend(
    client: &mut deadpool_postgres::Object,
    extension: &TreeExtension,
) -> Result<(), Error> {
    let segment::Rows { segments, nodes } = segment::split(extension)?;
    let mut firsts = Vec::with_capacity(segments.len());
    let mut txs = Vec::with_capacity(segments.len());
    let mut first_positions = Vec::with_capacity(segments.len());
    let mut positions = Vec::with_capacity(segments.len());
    let mut hashes = Vec::with_capacity(segments.len());
    for s in &segments {
        firsts.push(to_i64(s.first_leaf, "leaf index")?);
        txs.push(Xid8(s.first.tx));
        first_positions.push(to_i64(s.first.position, "position")?);
        positions.push(s.positions_bytes());
        hashes.push(s.hashes_bytes());
    }
    let mut levels = Vec::with_capacity(nodes.len());
    let mut idxs = Vec::with_capacity(nodes.len());
    let mut node_hashes = Vec::with_capacity(nodes.len());
    for (id, h) in &nodes {
        levels.push(i16::from(id.level));
        idxs.push(to_i64(id.index, "node index")?);
        node_hashes.push(&h.0[..]);
    }
    let read_tx = to_i64(extension.read.tx, "checkpoint")?;
    let read_position = to_i64(extension.read.position, "checkpoint")?;

    let (lock, size, insert_segments, insert_nodes, save_reader) = (
        client.prepare_cached(LOCK).await?,
        client.prepare_cached(SIZE).await?,
        client.prepare_cached(INSERT_SEGMENTS).await?,
        client.prepare_cached(INSERT_NODES).await?,
        client.prepare_cached(SAVE_READER).await?,
    );
    let segment_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&firsts, &txs, &first_positions, &positions, &hashes];
    let reader_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&READER, &read_tx, &read_position];
    // Dropped before its COMMIT (an error, or the caller stopped waiting),
    // the transaction rolls back.
    let tx = client.transaction().await?;
    let (locked, now, segments_written, nodes_written, reader_saved) = futures_util::join!(
        tx.query_one(&lock, &[]),
        tx.query_one(&size, &[]),
        tx.execute(&insert_segments, &segment_params),
        async {
            if levels.is_empty() {
                return Ok(0);
            }
            tx.execute(&insert_nodes, &[&levels, &idxs, &node_hashes])
                .await
        },
        tx.execute(&save_reader, &reader_params),
    );
    locked?;
    let now = unsigned(now?.get(0));
    if now != extension.from_size {
        return Err(Error::Unavailable(format!(
            "the log's tree has {now} leaves, not {}: another process is building it",
            extension.from_size
        )));
    }
    segments_written?;
    nodes_written?;
    reader_saved?;
    tx.commit().await?;
    Ok(())
}

fn segment_of(row: &tokio_postgres::Row) -> Result<Segment, Error> {
    let tx: Xid8 = row.get("first_tx");
    Segment::from_columns(
        unsigned(row.get("first_leaf")),
        Checkpoint {
            tx: tx.0,
            position: unsigned(row.get("first_position")),
        },
        row.get("positions"),
        row.get("hashes"),
    )
}

const SEGMENT_COLUMNS: &str = "s.first_leaf, s.first_tx, s.first_position, s.positions, s.hashes";

pub(super) async fn nodes(
    client: &impl GenericClient,
    ids: &[NodeId],
) -> Result<Vec<Option<Hash>>, Error> {
    let upper = segment::stored(ids);
    let levels: Vec<i16> = upper.iter().map(|id| i16::from(id.level)).collect();
    let idxs: Vec<i64> = upper
        .iter()
        .map(|id| to_i64(id.index, "node index"))
        .collect::<Result<_, _>>()?;
    let rows = if upper.is_empty() {
        Vec::new()
    } else {
        client
            .query(
                "SELECT w.n, t.hash FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY \
                     AS w(level, idx, n) \
                 JOIN trellis.tree_nodes t ON t.level = w.level AND t.idx = w.idx",
                &[&levels, &idxs],
            )
            .await?
    };
    let mut stored = vec![None; upper.len()];
    for row in rows {
        let n: i64 = row.get(0);
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| stored.get_mut(i))
            .ok_or_else(|| Error::Internal("a node came back out of range".into()))?;
        *slot = Some(hash(row.get(1))?);
    }
    let tiles: Vec<i64> = segment::tiles(ids)
        .into_iter()
        .map(|tile| to_i64(tile * segment::WIDTH, "leaf index"))
        .collect::<Result<_, _>>()?;
    let segments = if tiles.is_empty() {
        Vec::new()
    } else {
        client
            .query(
                // A lateral subquery for each tile keeps the plan an index scan
                // a tile, whatever the statistics of a freshly grown table say.
                &format!(
                    "SELECT {SEGMENT_COLUMNS} FROM unnest($1::bigint[]) AS t(first) \
                     CROSS JOIN LATERAL ( \
                         SELECT * FROM trellis.tree_segments s \
                         WHERE s.first_leaf >= t.first AND s.first_leaf < t.first + $2 \
                         ORDER BY s.first_leaf LIMIT $2) s \
                     ORDER BY s.first_leaf"
                ),
                &[&tiles, &to_i64(segment::WIDTH, "width")?],
            )
            .await?
            .iter()
            .map(segment_of)
            .collect::<Result<_, _>>()?
    };
    Ok(segment::answer(ids, stored, &segments))
}

pub(super) async fn leaf_range(
    client: &impl GenericClient,
    from: u64,
    max: usize,
) -> Result<Vec<(u64, u64, Hash)>, Error> {
    let end = from.saturating_add(max as u64);
    let rows = client
        .query(
            &format!(
                "SELECT {SEGMENT_COLUMNS} FROM trellis.tree_segments s \
                 WHERE s.first_leaf >= $1 AND s.first_leaf < $2 ORDER BY s.first_leaf"
            ),
            &[
                &to_i64(segment::first_start(from), "leaf index")?,
                &to_i64(end, "leaf index")?,
            ],
        )
        .await?;
    let segments: Vec<Segment> = rows.iter().map(segment_of).collect::<Result<_, _>>()?;
    Ok(segment::leaf_range(&segments, from, max))
}

pub(super) async fn leaf_indexes(
    client: &impl GenericClient,
    positions: &[u64],
) -> Result<Vec<Option<u64>>, Error> {
    let wanted: Vec<i64> = positions
        .iter()
        .map(|p| to_i64(*p, "position"))
        .collect::<Result<_, _>>()?;
    // Leaves are in global order, so an event's leaf is in the segment whose
    // first leaf comes last at or before the event's place in that order.
    let rows = client
        .query(
            &format!(
                "SELECT w.n, {SEGMENT_COLUMNS} \
                 FROM unnest($1::bigint[]) WITH ORDINALITY AS w(position, n) \
                 JOIN trellis.events e ON e.global_position = w.position \
                 CROSS JOIN LATERAL ( \
                     SELECT * FROM trellis.tree_segments s \
                     WHERE (s.first_tx, s.first_position) <= (e.tx_id, e.global_position) \
                     ORDER BY s.first_tx DESC, s.first_position DESC LIMIT 1) s"
            ),
            &[&wanted],
        )
        .await?;
    let mut out = vec![None; positions.len()];
    for row in rows {
        let n: i64 = row.get(0);
        let Some(i) = usize::try_from(n - 1).ok().filter(|i| *i < out.len()) else {
            continue;
        };
        out[i] = segment_of(&row)?.leaf_of(positions[i]);
    }
    Ok(out)
}

pub(super) async fn record(
    client: &impl GenericClient,
    checkpoint: &StoredCheckpoint,
) -> Result<(), Error> {
    client
        .execute(
            "INSERT INTO trellis.tree_checkpoints (tree_size, key_id, signed_at, note) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[
                &to_i64(checkpoint.size, "tree size")?,
                &checkpoint.key_id,
                &checkpoint.signed_at,
                &checkpoint.note,
            ],
        )
        .await?;
    Ok(())
}

fn stored(row: &tokio_postgres::Row) -> StoredCheckpoint {
    let signed_at: DateTime<Utc> = row.get(2);
    StoredCheckpoint {
        size: unsigned(row.get(0)),
        key_id: row.get(1),
        signed_at,
        note: row.get(3),
    }
}

pub(super) async fn checkpoints(
    client: &impl GenericClient,
    after_size: u64,
    max: usize,
) -> Result<Vec<StoredCheckpoint>, Error> {
    let rows = client
        .query(
            "SELECT tree_size, key_id, signed_at, note FROM trellis.tree_checkpoints \
             WHERE tree_size > $1 ORDER BY tree_size, signed_at LIMIT $2",
            &[&to_i64(after_size, "tree size")?, &limit(max)],
        )
        .await?;
    Ok(rows.iter().map(stored).collect())
}

pub(super) async fn latest(client: &impl GenericClient) -> Result<Option<StoredCheckpoint>, Error> {
    let row = client
        .query_opt(
            "SELECT tree_size, key_id, signed_at, note FROM trellis.tree_checkpoints \
             ORDER BY tree_size DESC, signed_at DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.as_ref().map(stored))
}
