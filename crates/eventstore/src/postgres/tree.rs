//! The stored Merkle tree on PostgreSQL (`trellis.tree_*`, migration 0004).

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use crate::merkle::NodeId;
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
    let row = client
        .query_one(
            "SELECT coalesce(max(leaf_index) + 1, 0) FROM trellis.tree_leaves",
            &[],
        )
        .await?;
    Ok(unsigned(row.get(0)))
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

pub(super) async fn extend(
    client: &mut deadpool_postgres::Object,
    extension: &TreeExtension,
) -> Result<(), Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(LOCK).await?;
    let now = size(&*tx).await?;
    if now != extension.from_size {
        return Err(Error::Unavailable(format!(
            "the log's tree has {now} leaves, not {}: another process is building it",
            extension.from_size
        )));
    }
    let mut indexes = Vec::with_capacity(extension.positions.len());
    let mut positions = Vec::with_capacity(extension.positions.len());
    for (i, position) in extension.positions.iter().enumerate() {
        indexes.push(to_i64(extension.from_size + i as u64, "leaf index")?);
        positions.push(to_i64(*position, "position")?);
    }
    tx.execute(
        "INSERT INTO trellis.tree_leaves (leaf_index, global_position) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[])",
        &[&indexes, &positions],
    )
    .await?;
    let mut levels = Vec::with_capacity(extension.nodes.len());
    let mut idxs = Vec::with_capacity(extension.nodes.len());
    let mut hashes = Vec::with_capacity(extension.nodes.len());
    for (id, h) in &extension.nodes {
        levels.push(i16::from(id.level));
        idxs.push(to_i64(id.index, "node index")?);
        hashes.push(h.0.to_vec());
    }
    tx.execute(
        "INSERT INTO trellis.tree_nodes (level, idx, hash) \
         SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])",
        &[&levels, &idxs, &hashes],
    )
    .await?;
    tx.execute(
        "INSERT INTO trellis.subscriber_checkpoints (name, tx, position) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, position = excluded.position, \
         updated_at = now()",
        &[
            &READER,
            &to_i64(extension.read.tx, "checkpoint")?,
            &to_i64(extension.read.position, "checkpoint")?,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn nodes(
    client: &impl GenericClient,
    ids: &[NodeId],
) -> Result<Vec<Option<Hash>>, Error> {
    let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
    let idxs: Vec<i64> = ids
        .iter()
        .map(|id| to_i64(id.index, "node index"))
        .collect::<Result<_, _>>()?;
    let rows = client
        .query(
            "SELECT w.n, t.hash FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY \
                 AS w(level, idx, n) \
             JOIN trellis.tree_nodes t ON t.level = w.level AND t.idx = w.idx",
            &[&levels, &idxs],
        )
        .await?;
    let mut out = vec![None; ids.len()];
    for row in rows {
        let n: i64 = row.get(0);
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| out.get_mut(i))
            .ok_or_else(|| Error::Internal("a node came back out of range".into()))?;
        *slot = Some(hash(row.get(1))?);
    }
    Ok(out)
}

pub(super) async fn leaf_range(
    client: &impl GenericClient,
    from: u64,
    max: usize,
) -> Result<Vec<(u64, u64, Hash)>, Error> {
    // Leaf indexes have no gaps, so the page is the window `$1 .. $1 + $2`,
    // bounded on both sides of the join. With only its lower bound, the
    // server's plan (on a freshly grown tree, whose statistics lag) hashed
    // every leaf and level-0 node from the first leaf of the page to the
    // end of the tree, for every page: a verify of a million events spent
    // most of its time there.
    let rows = client
        .query(
            "SELECT l.leaf_index, l.global_position, n.hash FROM trellis.tree_leaves l \
             JOIN trellis.tree_nodes n ON n.level = 0 AND n.idx = l.leaf_index \
             WHERE l.leaf_index >= $1 AND l.leaf_index < $1 + $2 \
               AND n.idx >= $1 AND n.idx < $1 + $2 \
             ORDER BY l.leaf_index LIMIT $2",
            &[&to_i64(from, "leaf index")?, &limit(max)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                unsigned(row.get(0)),
                unsigned(row.get(1)),
                hash(row.get(2))?,
            ))
        })
        .collect()
}

pub(super) async fn leaf_indexes(
    client: &impl GenericClient,
    positions: &[u64],
) -> Result<Vec<Option<u64>>, Error> {
    let wanted: Vec<i64> = positions
        .iter()
        .map(|p| to_i64(*p, "position"))
        .collect::<Result<_, _>>()?;
    let rows = client
        .query(
            "SELECT w.n, l.leaf_index FROM unnest($1::bigint[]) WITH ORDINALITY AS w(position, n) \
             JOIN trellis.tree_leaves l ON l.global_position = w.position",
            &[&wanted],
        )
        .await?;
    let mut out = vec![None; positions.len()];
    for row in rows {
        let n: i64 = row.get(0);
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(unsigned(row.get(1)));
        }
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
