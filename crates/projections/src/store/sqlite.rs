//! Read models in the embedded file, beside the log: the same tables and
//! views as PostgreSQL, on a connection of our own (WAL mode).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use trellis_eventstore::Checkpoint;
use trellis_eventstore::sqlite::{ComponentConnection, Migrations};

use super::{
    Batch, DocPage, Generation, Lease, LeaseKind, Part, Parts, ReadStore, Status, abandoned,
};
use crate::Error;
use crate::engine::off_the_runtime;
use crate::projection::DocChange;

/// The read models' migrations (`projection_migrations`).
pub const MIGRATIONS: Migrations = Migrations {
    component: "projection",
    dir: "crates/projections/migrations/sqlite",
    steps: &[(
        1,
        "read_models",
        include_str!("../../migrations/sqlite/0001_read_models.sql"),
    )],
};

/// Connections that serve documents beside the one that writes them. With
/// the one connection, a page waited behind the live runner's batch of
/// writes: at 5,000 reps under eight writers, stalls of 0.5–1.5 s.
const READERS: usize = 4;

/// Read models in the embedded file.
#[derive(Debug, Clone)]
pub struct SqliteReadStore {
    conn: ComponentConnection,
    /// Held (shared) by every part a bulk write has handed to the
    /// connection, until it is written; dropping a generation takes it
    /// exclusively first, so no part of an abandoned rebuild lands after
    /// its generation is dropped (where a later rebuild may reuse its
    /// number).
    bulk_parts: Arc<tokio::sync::RwLock<()>>,
}

impl SqliteReadStore {
    /// Opens the embedded store's file (`SqliteStore::path`) and applies the
    /// read-model migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let conn = async {
            ComponentConnection::open(path, MIGRATIONS)
                .await?
                .with_readers(READERS)
                .await
        }
        .await
        .map_err(|e| match e {
            // Its own tables, not the log: said once, as theirs.
            trellis_eventstore::Error::Unavailable(why) => Error::Unavailable(why),
            other => Error::Database(other.to_string()),
        })?;
        Ok(SqliteReadStore {
            conn,
            bulk_parts: Arc::default(),
        })
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const GENERATION_COLUMNS: &str = "model, generation, fingerprint, status, checkpoint_tx, \
    checkpoint_position, events_applied";

/// A row of [`GENERATION_COLUMNS`], column by column.
fn generation_of(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, i32, String, String, i64, i64, i64)> {
    row.try_into()
}

fn to_generation(
    (model, generation, fingerprint, status, tx, position, events): (
        String,
        i32,
        String,
        String,
        i64,
        i64,
        i64,
    ),
) -> Result<Generation, Error> {
    Ok(Generation {
        model,
        generation,
        fingerprint,
        status: Status::parse(&status)?,
        checkpoint: Checkpoint {
            tx: u64::try_from(tx).unwrap_or(0),
            position: u64::try_from(position).unwrap_or(0),
        },
        events_applied: u64::try_from(events).unwrap_or(0),
    })
}

/// The text of the equivalent `Value` (sorted keys), as this file has
/// always held: the same facts give the same bytes whatever the build.
fn canonical(change: &DocChange) -> Result<Option<String>, Error> {
    let Some(text) = change.doc.as_deref() else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Malformed {
        kind: change.kind.to_owned(),
        key: change.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(value.to_string()))
}

/// Rows per statement of a bulk write (five parameters each).
const ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO read_models ... VALUES` with `rows` rows of parameters.
fn insert_rows(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO read_models (model, generation, kind, key, doc) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?)");
    }
    sql
}

/// Writes one part of a bulk write in one immediate transaction, if the
/// generation is still building at `from`.
fn write_part(
    conn: &mut rusqlite::Connection,
    model: &str,
    generation: i32,
    from: Checkpoint,
    docs: &[(&'static str, String, String)],
) -> Result<bool, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let building = tx
        .query_row(
            "SELECT 1 FROM projection_checkpoints \
              WHERE model = ?1 AND generation = ?2 AND status = 'building' \
                AND checkpoint_tx = ?3 AND checkpoint_position = ?4",
            params![model, generation, to_i64(from.tx), to_i64(from.position)],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !building {
        return Ok(false);
    }
    {
        let mut chunks = docs.chunks_exact(ROWS_PER_INSERT);
        let mut many = tx.prepare_cached(&insert_rows(ROWS_PER_INSERT))?;
        for chunk in &mut chunks {
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(5 * chunk.len());
            for (kind, key, doc) in chunk {
                values.extend([&model as &dyn rusqlite::ToSql, &generation, kind, key, doc]);
            }
            many.execute(rusqlite::params_from_iter(values))?;
        }
        let mut one = tx.prepare_cached(&insert_rows(1))?;
        for (kind, key, doc) in chunks.remainder() {
            one.execute(params![model, generation, kind, key, doc])?;
        }
    }
    tx.commit()?;
    Ok(true)
}

/// The embedded backend has one process: leases are held in memory.
static LEASES: Mutex<BTreeSet<(PathBuf, String, LeaseKind)>> = Mutex::new(BTreeSet::new());

#[derive(Debug)]
struct LocalLease {
    key: (PathBuf, String, LeaseKind),
}

impl Drop for LocalLease {
    fn drop(&mut self) {
        LEASES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

#[async_trait]
impl Lease for LocalLease {
    async fn alive(&self) -> bool {
        true
    }
}

#[async_trait]
impl ReadStore for SqliteReadStore {
    async fn after_erasure(&self) -> Result<(), Error> {
        self.conn
            .call(|conn| {
                trellis_eventstore::sqlite::empty_the_wal(conn)
                    .map_err(|e| Error::Database(e.to_string()))
            })
            .await
    }

    async fn try_lease(
        &self,
        model: &str,
        kind: LeaseKind,
    ) -> Result<Option<Box<dyn Lease>>, Error> {
        let key = (self.conn.path().to_path_buf(), model.to_owned(), kind);
        let mut leases = LEASES.lock().unwrap_or_else(|p| p.into_inner());
        if leases.insert(key.clone()) {
            Ok(Some(Box::new(LocalLease { key })))
        } else {
            Ok(None)
        }
    }

    async fn generations(&self) -> Result<Vec<Generation>, Error> {
        self.conn
            .read(|conn| {
                let mut statement = conn.prepare_cached(&format!(
                "SELECT {GENERATION_COLUMNS} FROM projection_checkpoints ORDER BY model, generation"
            ))?;
                let rows = statement
                    .query_map([], generation_of)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter().map(to_generation).collect()
            })
            .await
    }

    async fn create_generation(
        &self,
        model: &str,
        fingerprint: &str,
        status: Status,
    ) -> Result<Generation, Error> {
        let (model, fingerprint) = (model.to_owned(), fingerprint.to_owned());
        self.conn.call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let row = tx.query_row(
                &format!(
                    "INSERT INTO projection_checkpoints (model, generation, fingerprint, status, activated_at) \
                     SELECT ?1, coalesce(max(generation), 0) + 1, ?2, ?3, \
                            CASE WHEN ?3 = 'active' THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END \
                       FROM projection_checkpoints WHERE model = ?1 \
                     RETURNING {GENERATION_COLUMNS}"
                ),
                params![model, fingerprint, status.as_str()],
                generation_of,
            )?;
            tx.commit()?;
            to_generation(row)
        })
        .await
    }

    async fn load(
        &self,
        model: &str,
        generation: i32,
        kinds: &[&str],
        page: DocPage<'_>,
    ) -> Result<Vec<(String, String, String)>, Error> {
        let model = model.to_owned();
        let kinds: Vec<(String, String)> = page
            .kinds(kinds)
            .into_iter()
            .map(|(kind, after_key)| (kind.to_owned(), after_key.to_owned()))
            .collect();
        let limit = page.limit;
        self.conn
            .read(move |conn| {
                let mut out = Vec::new();
                let mut statement = conn.prepare_cached(
                    "SELECT kind, key, doc FROM read_models \
                     WHERE model = ?1 AND generation = ?2 AND kind = ?3 AND key > ?4 \
                     ORDER BY key LIMIT ?5",
                )?;
                for (kind, after_key) in &kinds {
                    let room = i64::try_from(limit - out.len()).unwrap_or(i64::MAX);
                    let mut rows =
                        statement.query(params![model, generation, kind, after_key, room])?;
                    while let Some(row) = rows.next()? {
                        out.push((row.get(0)?, row.get(1)?, row.get(2)?));
                    }
                    if out.len() >= limit {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn commit(&self, batch: Batch<'_>) -> Result<bool, Error> {
        let (model, generation, status) = (batch.model, batch.generation, batch.status);
        let (from, to, events, changes) = (batch.from, batch.to, batch.events, batch.changes);
        let model = model.to_owned();
        // Parsing a few MB of documents again is CPU work: off the
        // runtime's worker, and before the file's one writer is taken.
        let changes = off_the_runtime(|| {
            changes
                .iter()
                .map(|c| Ok((c.kind, c.key.clone(), canonical(c)?)))
                .collect::<Result<Vec<_>, Error>>()
        })?;
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let moved = tx.execute(
                    "UPDATE projection_checkpoints \
                    SET checkpoint_tx = ?4, checkpoint_position = ?5, \
                        events_applied = events_applied + ?6, \
                        updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                  WHERE model = ?1 AND generation = ?2 AND status = ?3 \
                    AND checkpoint_tx = ?7 AND checkpoint_position = ?8",
                    params![
                        model,
                        generation,
                        status.as_str(),
                        to_i64(to.tx),
                        to_i64(to.position),
                        to_i64(events),
                        to_i64(from.tx),
                        to_i64(from.position)
                    ],
                )?;
                if moved != 1 {
                    return Ok(false);
                }
                {
                    let mut put = tx.prepare_cached(
                        "INSERT INTO read_models (model, generation, kind, key, doc) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (model, generation, kind, key) DO UPDATE SET doc = excluded.doc",
                    )?;
                    let mut delete = tx.prepare_cached(
                        "DELETE FROM read_models \
                     WHERE model = ?1 AND generation = ?2 AND kind = ?3 AND key = ?4",
                    )?;
                    for (kind, key, doc) in &changes {
                        match doc {
                            Some(doc) => put.execute(params![model, generation, kind, key, doc])?,
                            None => delete.execute(params![model, generation, kind, key])?,
                        };
                    }
                }
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// One immediate transaction per part, each with multi-row `INSERT`s
    /// (prepared, 64 rows each): the log shares this file and its one
    /// writer, so its appends wait for one part at a time, never for the
    /// whole rebuild. Each part is put in canonical form on the blocking
    /// pool before it takes the connection.
    async fn write_bulk(
        &self,
        model: &str,
        generation: i32,
        from: Checkpoint,
        parts: &Parts,
    ) -> Result<bool, Error> {
        loop {
            let changes = match parts.next().await {
                Some(Part::Docs(changes)) => changes,
                Some(Part::Done) => return Ok(true),
                None => return Err(abandoned(model, generation)),
            };
            let docs = tokio::task::spawn_blocking(move || {
                let mut docs = Vec::with_capacity(changes.len());
                for change in changes {
                    // A new generation holds nothing to remove.
                    if let Some(doc) = canonical(&change)? {
                        docs.push((change.kind, change.key, doc));
                    }
                }
                Ok::<_, Error>(docs)
            })
            .await
            .map_err(|e| Error::Database(format!("preparing documents panicked: {e}")))??;
            let model = model.to_owned();
            // Moved into the call: held until the part is written, even
            // when this writer is dropped meanwhile.
            let part = self.bulk_parts.clone().read_owned().await;
            let written = self
                .conn
                .call(move |conn| {
                    let written = write_part(conn, &model, generation, from, &docs);
                    drop(part);
                    written
                })
                .await?;
            if !written {
                return Ok(false);
            }
        }
    }

    async fn drop_generation(&self, model: &str, generation: i32) -> Result<(), Error> {
        let model = model.to_owned();
        let _no_part_in_flight = self.bulk_parts.write().await;
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let building = tx
                    .query_row(
                        "SELECT 1 FROM projection_checkpoints \
                          WHERE model = ?1 AND generation = ?2 AND status = 'building'",
                        params![model, generation],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if building {
                    tx.execute(
                        "DELETE FROM read_models WHERE model = ?1 AND generation = ?2",
                        params![model, generation],
                    )?;
                    tx.execute(
                        "DELETE FROM projection_checkpoints WHERE model = ?1 AND generation = ?2",
                        params![model, generation],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn activate(&self, model: &str, generation: i32, at: Checkpoint) -> Result<bool, Error> {
        let model = model.to_owned();
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let ready = tx
                    .query_row(
                        "SELECT 1 FROM projection_checkpoints \
                      WHERE model = ?1 AND generation = ?2 AND status = 'building' \
                        AND checkpoint_tx = ?3 AND checkpoint_position = ?4",
                        params![model, generation, to_i64(at.tx), to_i64(at.position)],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !ready {
                    return Ok(false);
                }
                tx.execute(
                    "UPDATE projection_checkpoints SET status = 'retired' \
                  WHERE model = ?1 AND status = 'active'",
                    params![model],
                )?;
                tx.execute(
                    "UPDATE projection_checkpoints \
                    SET status = 'active', activated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                  WHERE model = ?1 AND generation = ?2",
                    params![model, generation],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn drop_inactive(&self, model: &str, keep: Option<i32>) -> Result<(), Error> {
        let model = model.to_owned();
        let keep = keep.unwrap_or(-1);
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.execute(
                    "DELETE FROM read_models WHERE model = ?1 AND generation IN ( \
                   SELECT generation FROM projection_checkpoints \
                    WHERE model = ?1 AND status <> 'active' AND generation <> ?2)",
                    params![model, keep],
                )?;
                tx.execute(
                    "DELETE FROM projection_checkpoints \
                  WHERE model = ?1 AND status <> 'active' AND generation <> ?2",
                    params![model, keep],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn get(
        &self,
        model: &str,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        let (model, kind, keys) = (model.to_owned(), kind.to_owned(), keys.to_vec());
        self.conn.read(move |conn| {
            // One transaction, so a multi-document answer comes from one
            // generation (a reader's connection holds no other transaction).
            let tx = conn.unchecked_transaction()?;
            let mut out = Vec::new();
            {
                let mut statement = tx.prepare_cached(
                    "SELECT r.doc FROM read_models r \
                       JOIN projection_checkpoints c \
                         ON c.model = r.model AND c.generation = r.generation AND c.status = 'active' \
                      WHERE r.model = ?1 AND r.kind = ?2 AND r.key = ?3",
                )?;
                let mut sorted = keys;
                sorted.sort();
                sorted.dedup();
                for key in sorted {
                    let doc: Option<String> = statement
                        .query_row(params![model, kind, key], |r| r.get(0))
                        .optional()?;
                    if let Some(doc) = doc {
                        out.push((key, doc));
                    }
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn dump(
        &self,
        model: &str,
        generation: i32,
    ) -> Result<Vec<(String, String, String)>, Error> {
        let model = model.to_owned();
        self.conn
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT kind, key, doc FROM read_models \
                  WHERE model = ?1 AND generation = ?2 ORDER BY kind, key",
                )?;
                let rows = statement
                    .query_map(params![model, generation], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }
}
