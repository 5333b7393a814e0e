//! Read models in PostgreSQL, schema `trellis`, beside the log.

use std::ops::Range;
use std::pin::pin;

use async_trait::async_trait;
use deadpool_postgres::{ClientWrapper, Object, Pool};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use trellis_eventstore::Checkpoint;
use trellis_eventstore::postgres::Migrations;

use super::{
    Batch, DocPage, Generation, Lease, LeaseKind, Part, Parts, ReadStore, Status, abandoned,
};
use crate::Error;

/// The read models' migrations (`trellis.projection_migrations`).
pub const MIGRATIONS: Migrations = Migrations {
    component: "projection",
    dir: "crates/projections/migrations/postgres",
    steps: &[
        (
            1,
            "read_models",
            include_str!("../../migrations/postgres/0001_read_models.sql"),
        ),
        (
            2,
            "lz4_documents",
            include_str!("../../migrations/postgres/0002_lz4_documents.sql"),
        ),
        (
            3,
            "runtime_grants",
            include_str!("../../migrations/postgres/0003_runtime_grants.sql"),
        ),
        (
            4,
            "documents_as_json",
            include_str!("../../migrations/postgres/0004_documents_as_json.sql"),
        ),
        (
            5,
            "documents_as_text",
            include_str!("../../migrations/postgres/0005_documents_as_text.sql"),
        ),
    ],
};

/// Advisory lock class ids (the first key of the two-key form); the second
/// key is `hashtext(model)`.
const RUNNER_LOCK: i32 = 0x7472_6c01;
const REBUILD_LOCK: i32 = 0x7472_6c02;

/// Read models in the log's PostgreSQL database.
#[derive(Clone)]
pub struct PostgresReadStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresReadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReadStore").finish_non_exhaustive()
    }
}

impl PostgresReadStore {
    /// Uses the event store's pool (`PostgresStore::pool`) and checks the
    /// read-model migrations (`trellis_eventstore::postgres::prepare`).
    pub async fn new(pool: Pool) -> Result<Self, Error> {
        let mut client = pool.get().await?;
        trellis_eventstore::postgres::prepare(&mut client, &MIGRATIONS)
            .await
            .map_err(|e| match e {
                // Its own tables, not the log: said once, as theirs.
                trellis_eventstore::Error::Unavailable(why) => Error::Unavailable(why),
                other => Error::Database(other.to_string()),
            })?;
        warn_without_autovacuum(&client).await;
        Ok(PostgresReadStore { pool })
    }

    async fn client(&self) -> Result<Object, Error> {
        Ok(self.pool.get().await?)
    }
}

/// Says so in the log when the server does not vacuum on its own: every
/// write of a document leaves its old version behind, which only `VACUUM`
/// reclaims, and the planner has statistics only from `ANALYZE`. Without
/// them the read models grow without end and reads slow down with them.
async fn warn_without_autovacuum(client: &Object) {
    match client
        .query_one("SELECT current_setting('autovacuum')", &[])
        .await
        .map(|row| row.get::<_, String>(0))
    {
        Ok(setting) if setting == "off" => tracing::warn!(
            "autovacuum is off on this PostgreSQL server: the read models' old document \
             versions are never reclaimed and the planner has no statistics, so they grow \
             and slow down under writes; set autovacuum = on in postgresql.conf (see \
             docs/operations.md, Sizing), or run VACUUM ANALYZE on schema trellis regularly"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "could not read the autovacuum setting"),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn checkpoint(tx: i64, position: i64) -> Checkpoint {
    Checkpoint {
        tx: u64::try_from(tx).unwrap_or(0),
        position: u64::try_from(position).unwrap_or(0),
    }
}

fn generation_of(row: &tokio_postgres::Row) -> Result<Generation, Error> {
    Ok(Generation {
        model: row.get(0),
        generation: row.get(1),
        fingerprint: row.get(2),
        status: Status::parse(row.get(3))?,
        checkpoint: checkpoint(row.get(4), row.get(5)),
        events_applied: u64::try_from(row.get::<_, i64>(6)).unwrap_or(0),
    })
}

/// The most document bytes one statement of [`ReadStore::commit`] carries (a
/// larger document goes alone). A connection keeps buffers as large as the
/// largest message it has sent, for as long as it lives in the pool: with
/// the whole batch in one statement, a live runner that had fallen behind
/// under writes sent hundreds of megabytes at once, and the pool kept that
/// much per connection (the server's memory grew to gigabytes).
pub const STATEMENT_BYTES: usize = 4 << 20;

/// Consecutive runs of the items whose sizes are `sizes`, each of at most
/// `limit` bytes, or of one item larger than that.
fn runs(sizes: impl IntoIterator<Item = usize>, limit: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes, mut end) = (0, 0, 0);
    for size in sizes {
        if end > start && bytes + size > limit {
            runs.push(start..end);
            (start, bytes) = (end, 0);
        }
        bytes += size;
        end += 1;
    }
    if end > start {
        runs.push(start..end);
    }
    runs
}

/// A page of one kind's documents in a generation, in key order, after a
/// key (`$4`, `""` for the first): one range of the primary key. Several
/// kinds in one statement (`kind = ANY`) had the planner walk every
/// document of the generation and filter them by kind.
pub const LOAD_DOCUMENTS: &str = "SELECT key, doc FROM trellis.read_models \
     WHERE model = $1 AND generation = $2 AND kind = $3 AND key > $4 \
     ORDER BY key LIMIT $5";

/// [`ReadStore::get`]'s statement: `$1` the model, `$2` the kind, `$3` the
/// keys (sorted, without repeats). One probe of the primary key per key,
/// whatever the statistics say. Written as `key = ANY($3)`, the planner,
/// with no statistics on the table (a generation just built, a server
/// without autovacuum), estimated one row per kind and filtered every
/// document of the kind by key instead: 20–30 ms for 50 of 5,000 profiles,
/// against 3 ms. `OFFSET 0` keeps the lookup a subquery run once per key,
/// which the planner would otherwise flatten into that same scan.
pub const GET_DOCUMENTS: &str = "SELECT k.key, d.doc \
       FROM trellis.projection_checkpoints c \
      CROSS JOIN unnest($3::text[]) AS k(key) \
      CROSS JOIN LATERAL ( \
            SELECT r.doc FROM trellis.read_models r \
             WHERE r.model = c.model AND r.generation = c.generation \
               AND r.kind = $2 AND r.key = k.key \
            OFFSET 0) AS d \
      WHERE c.model = $1 AND c.status = 'active' \
      ORDER BY k.key";

const GENERATION_COLUMNS: &str = "model, generation, fingerprint, status, checkpoint_tx, \
    checkpoint_position, events_applied";

/// An advisory lock held by a dedicated connection (taken out of the pool, so
/// the lock ends when the connection does, never lingers in the pool).
struct PgLease {
    client: ClientWrapper,
}

impl std::fmt::Debug for PgLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLease").finish_non_exhaustive()
    }
}

#[async_trait]
impl Lease for PgLease {
    async fn alive(&self) -> bool {
        self.client.simple_query("SELECT 1").await.is_ok()
    }

    async fn release(self: Box<Self>) {
        // Best effort: if this fails the connection closes anyway, and the
        // server frees the lock when it notices.
        if let Err(e) = self
            .client
            .simple_query("SELECT pg_advisory_unlock_all()")
            .await
        {
            tracing::debug!(error = %e, "releasing a lease failed; its connection closes instead");
        }
    }
}

#[async_trait]
impl ReadStore for PostgresReadStore {
    async fn try_lease(
        &self,
        model: &str,
        kind: LeaseKind,
    ) -> Result<Option<Box<dyn Lease>>, Error> {
        let class = match kind {
            LeaseKind::Runner => RUNNER_LOCK,
            LeaseKind::Rebuild => REBUILD_LOCK,
        };
        let client = Object::take(self.client().await?);
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&class, &model],
            )
            .await?
            .get(0);
        Ok(got.then(|| Box::new(PgLease { client }) as Box<dyn Lease>))
    }

    async fn generations(&self) -> Result<Vec<Generation>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {GENERATION_COLUMNS} FROM trellis.projection_checkpoints \
                     ORDER BY model, generation"
                ),
                &[],
            )
            .await?;
        rows.iter().map(generation_of).collect()
    }

    async fn create_generation(
        &self,
        model: &str,
        fingerprint: &str,
        status: Status,
    ) -> Result<Generation, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO trellis.projection_checkpoints (model, generation, fingerprint, status, activated_at) \
                     SELECT $1, coalesce(max(generation), 0) + 1, $2, $3, \
                            CASE WHEN $3 = 'active' THEN now() END \
                       FROM trellis.projection_checkpoints WHERE model = $1 \
                     RETURNING {GENERATION_COLUMNS}"
                ),
                &[&model, &fingerprint, &status.as_str()],
            )
            .await?;
        generation_of(&row)
    }

    async fn load(
        &self,
        model: &str,
        generation: i32,
        kinds: &[&str],
        page: DocPage<'_>,
    ) -> Result<Vec<(String, String, String)>, Error> {
        let client = self.client().await?;
        let mut out = Vec::new();
        for (kind, after_key) in page.kinds(kinds) {
            let room = page.limit - out.len();
            let room = i64::try_from(room).unwrap_or(i64::MAX);
            let rows = client
                .query(
                    LOAD_DOCUMENTS,
                    &[&model, &generation, &kind, &after_key, &room],
                )
                .await?;
            out.extend(
                rows.into_iter()
                    .map(|r| (kind.to_owned(), r.get(0), r.get(1))),
            );
            if out.len() >= page.limit {
                break;
            }
        }
        Ok(out)
    }

    async fn commit(&self, batch: Batch<'_>) -> Result<bool, Error> {
        let (model, generation, status) = (batch.model, batch.generation, batch.status);
        let (from, to, events, changes) = (batch.from, batch.to, batch.events, batch.changes);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let moved = if from == to && events == 0 {
            // Nothing moves (e.g. the rebuild of an empty log): the
            // generation must still stand at `from`, and its row is
            // share-locked until commit, never beside a move or a switch.
            tx.query_opt(
                "SELECT 1 FROM trellis.projection_checkpoints \
                  WHERE model = $1 AND generation = $2 AND status = $3 \
                    AND checkpoint_tx = $4 AND checkpoint_position = $5 \
                    FOR SHARE",
                &[
                    &model,
                    &generation,
                    &status.as_str(),
                    &to_i64(from.tx),
                    &to_i64(from.position),
                ],
            )
            .await?
            .map_or(0, |_| 1)
        } else {
            tx.execute(
                "UPDATE trellis.projection_checkpoints \
                    SET checkpoint_tx = $4, checkpoint_position = $5, \
                        events_applied = events_applied + $6, updated_at = now() \
                  WHERE model = $1 AND generation = $2 AND status = $3 \
                    AND checkpoint_tx = $7 AND checkpoint_position = $8",
                &[
                    &model,
                    &generation,
                    &status.as_str(),
                    &to_i64(to.tx),
                    &to_i64(to.position),
                    &to_i64(events),
                    &to_i64(from.tx),
                    &to_i64(from.position),
                ],
            )
            .await?
        };
        if moved != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let (mut put_kinds, mut put_keys, mut put_docs) = (vec![], vec![], vec![]);
        let (mut del_kinds, mut del_keys) = (vec![], vec![]);
        for change in changes {
            match &change.doc {
                Some(doc) => {
                    put_kinds.push(change.kind);
                    put_keys.push(change.key.as_str());
                    put_docs.push(doc.as_str());
                }
                None => {
                    del_kinds.push(change.kind);
                    del_keys.push(change.key.as_str());
                }
            }
        }
        for run in runs(put_docs.iter().map(|doc| doc.len()), STATEMENT_BYTES) {
            tx.execute(
                "INSERT INTO trellis.read_models (model, generation, kind, key, doc) \
                 SELECT $1, $2, u.kind, u.key, u.doc \
                   FROM unnest($3::text[], $4::text[], $5::text[]) AS u(kind, key, doc) \
                 ON CONFLICT (model, generation, kind, key) DO UPDATE SET doc = EXCLUDED.doc",
                &[
                    &model,
                    &generation,
                    &&put_kinds[run.clone()],
                    &&put_keys[run.clone()],
                    &&put_docs[run],
                ],
            )
            .await?;
        }
        if !del_keys.is_empty() {
            tx.execute(
                "DELETE FROM trellis.read_models \
                  WHERE model = $1 AND generation = $2 \
                    AND (kind, key) IN (SELECT * FROM unnest($3::text[], $4::text[]))",
                &[&model, &generation, &del_kinds, &del_keys],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One short transaction and one `COPY ... FROM STDIN (FORMAT binary)`
    /// per part: a transaction that writes holds back every reader of the
    /// log until it ends (ADR 1), so none may last the whole rebuild. Each
    /// share-locks the generation's row, so a move, a switch or a drop
    /// waits for the part in progress. Parts commit without waiting for the
    /// disk: the checkpoint's move commits after them and waits for all.
    async fn write_bulk(
        &self,
        model: &str,
        generation: i32,
        from: Checkpoint,
        parts: &Parts,
    ) -> Result<bool, Error> {
        let mut client = self.client().await?;
        loop {
            let changes = match parts.next().await {
                Some(Part::Docs(changes)) => changes,
                Some(Part::Done) => return Ok(true),
                None => return Err(abandoned(model, generation)),
            };
            let tx = client.transaction().await?;
            tx.batch_execute("SET LOCAL synchronous_commit = off")
                .await?;
            let building = tx
                .query_opt(
                    "SELECT 1 FROM trellis.projection_checkpoints \
                      WHERE model = $1 AND generation = $2 AND status = 'building' \
                        AND checkpoint_tx = $3 AND checkpoint_position = $4 \
                        FOR SHARE",
                    &[
                        &model,
                        &generation,
                        &to_i64(from.tx),
                        &to_i64(from.position),
                    ],
                )
                .await?
                .is_some();
            if !building {
                tx.rollback().await?;
                return Ok(false);
            }
            let sink = tx
                .copy_in(
                    "COPY trellis.read_models (model, generation, kind, key, doc) \
                     FROM STDIN (FORMAT binary)",
                )
                .await?;
            // Dropped unfinished (this writer dropped), the COPY is aborted
            // and the transaction rolls back.
            let mut rows = pin!(BinaryCopyInWriter::new(
                sink,
                &[Type::TEXT, Type::INT4, Type::TEXT, Type::TEXT, Type::TEXT],
            ));
            for change in &changes {
                // A new generation holds nothing to remove.
                let Some(doc) = &change.doc else { continue };
                rows.as_mut()
                    .write(&[
                        &model,
                        &generation,
                        &change.kind,
                        &change.key,
                        &doc.as_str(),
                    ])
                    .await?;
            }
            rows.as_mut().finish().await?;
            tx.commit().await?;
        }
    }

    async fn drop_generation(&self, model: &str, generation: i32) -> Result<(), Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let building = tx
            .query_opt(
                "SELECT 1 FROM trellis.projection_checkpoints \
                  WHERE model = $1 AND generation = $2 AND status = 'building' FOR UPDATE",
                &[&model, &generation],
            )
            .await?
            .is_some();
        if building {
            tx.execute(
                "DELETE FROM trellis.read_models WHERE model = $1 AND generation = $2",
                &[&model, &generation],
            )
            .await?;
            tx.execute(
                "DELETE FROM trellis.projection_checkpoints WHERE model = $1 AND generation = $2",
                &[&model, &generation],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn activate(&self, model: &str, generation: i32, at: Checkpoint) -> Result<bool, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Lock the projection's rows so a live commit and the switch serialize.
        tx.execute(
            "SELECT 1 FROM trellis.projection_checkpoints WHERE model = $1 FOR UPDATE",
            &[&model],
        )
        .await?;
        let ready = tx
            .query_opt(
                "SELECT 1 FROM trellis.projection_checkpoints \
                  WHERE model = $1 AND generation = $2 AND status = 'building' \
                    AND checkpoint_tx = $3 AND checkpoint_position = $4",
                &[&model, &generation, &to_i64(at.tx), &to_i64(at.position)],
            )
            .await?
            .is_some();
        if !ready {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.execute(
            "UPDATE trellis.projection_checkpoints SET status = 'retired', updated_at = now() \
              WHERE model = $1 AND status = 'active'",
            &[&model],
        )
        .await?;
        tx.execute(
            "UPDATE trellis.projection_checkpoints \
                SET status = 'active', activated_at = now(), updated_at = now() \
              WHERE model = $1 AND generation = $2",
            &[&model, &generation],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn drop_inactive(&self, model: &str, keep: Option<i32>) -> Result<(), Error> {
        let client = self.client().await?;
        let keep = keep.unwrap_or(-1);
        client
            .execute(
                "DELETE FROM trellis.read_models r USING trellis.projection_checkpoints c \
                  WHERE r.model = $1 AND c.model = r.model AND c.generation = r.generation \
                    AND c.status <> 'active' AND c.generation <> $2",
                &[&model, &keep],
            )
            .await?;
        client
            .execute(
                "DELETE FROM trellis.projection_checkpoints \
                  WHERE model = $1 AND status <> 'active' AND generation <> $2",
                &[&model, &keep],
            )
            .await?;
        Ok(())
    }

    async fn get(
        &self,
        model: &str,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        keys.sort_unstable();
        keys.dedup();
        let client = self.client().await?;
        let rows = client.query(GET_DOCUMENTS, &[&model, &kind, &keys]).await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn dump(
        &self,
        model: &str,
        generation: i32,
    ) -> Result<Vec<(String, String, String)>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT kind, key, doc FROM trellis.read_models \
                  WHERE model = $1 AND generation = $2 ORDER BY kind, key",
                &[&model, &generation],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a run is a range of items
    fn a_commit_is_cut_into_runs_of_at_most_the_limit_and_a_large_document_goes_alone() {
        assert!(runs([], 10).is_empty());
        assert_eq!(runs([3, 3, 3], 10), [0..3]);
        assert_eq!(runs([4, 4, 4, 4], 10), [0..2, 2..4]);
        assert_eq!(runs([5, 5], 10), [0..2]);
        assert_eq!(runs([2, 30, 2, 2], 10), [0..1, 1..2, 2..4]);
        assert_eq!(runs([30], 10), [0..1]);
    }
}
