//! Read models in the embedded file, beside the log: the same tables and
//! views as PostgreSQL, on a connection of our own (WAL mode).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use trellis_eventstore::Checkpoint;
use trellis_eventstore::sqlite::ComponentConnection;

use super::{Batch, Generation, Lease, LeaseKind, ReadStore, Status};
use crate::Error;

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    include_str!("../../migrations/sqlite/0001_read_models.sql"),
)];

/// Read models in the embedded file.
#[derive(Debug, Clone)]
pub struct SqliteReadStore {
    conn: ComponentConnection,
}

impl SqliteReadStore {
    /// Opens the embedded store's file (`SqliteStore::path`) and applies the
    /// read-model migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let conn = ComponentConnection::open(path, "projection", MIGRATIONS).await?;
        Ok(SqliteReadStore { conn })
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
            .call(|conn| {
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
    ) -> Result<Vec<(String, String, Value)>, Error> {
        let model = model.to_owned();
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        self.conn
            .call(move |conn| {
                let mut out = Vec::new();
                let mut statement = conn.prepare_cached(
                    "SELECT kind, key, doc FROM read_models \
                 WHERE model = ?1 AND generation = ?2 AND kind = ?3 ORDER BY key",
                )?;
                for kind in &kinds {
                    let mut rows = statement.query(params![model, generation, kind])?;
                    while let Some(row) = rows.next()? {
                        let (kind, key, doc): (String, String, String) =
                            (row.get(0)?, row.get(1)?, row.get(2)?);
                        let doc = serde_json::from_str(&doc).map_err(|e| Error::Malformed {
                            kind: kind.clone(),
                            key: key.clone(),
                            reason: e.to_string(),
                        })?;
                        out.push((kind, key, doc));
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
        // The text of the equivalent `Value` (sorted keys), as this file has
        // always held: the same facts give the same bytes whatever the build.
        let changes: Vec<(&'static str, String, Option<String>)> = changes
            .iter()
            .map(|c| {
                let doc = c
                    .doc
                    .as_deref()
                    .map(|text| {
                        serde_json::from_str::<Value>(text)
                            .map(|v| v.to_string())
                            .map_err(|e| Error::Malformed {
                                kind: c.kind.to_owned(),
                                key: c.key.clone(),
                                reason: e.to_string(),
                            })
                    })
                    .transpose()?;
                Ok((c.kind, c.key.clone(), doc))
            })
            .collect::<Result<_, Error>>()?;
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
    ) -> Result<Vec<(String, Value)>, Error> {
        let (model, kind, keys) = (model.to_owned(), kind.to_owned(), keys.to_vec());
        self.conn.call(move |conn| {
            // One transaction, so a multi-document answer comes from one generation.
            let tx = conn.transaction()?;
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
                        let value = serde_json::from_str(&doc).map_err(|e| Error::Malformed {
                            kind: kind.clone(),
                            key: key.clone(),
                            reason: e.to_string(),
                        })?;
                        out.push((key, value));
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
            .call(move |conn| {
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
