//! Schema migrations, applied on start.

use crate::Error;

/// The migrations, in order. A migration is never edited once released:
/// changes are a new file.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../../migrations/postgres/0001_events.sql"),
    ),
    (
        2,
        "subscriber_checkpoints",
        include_str!("../../migrations/postgres/0002_subscriber_checkpoints.sql"),
    ),
];

/// Applies every migration the database has not seen, each in its own
/// transaction, under an advisory lock so processes starting together do not
/// race.
#[tracing::instrument(name = "event_store.migrate", skip_all, err)]
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), Error> {
    for (version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext('trellis.migrations')); \
             CREATE SCHEMA IF NOT EXISTS trellis; \
             CREATE TABLE IF NOT EXISTS trellis.schema_migrations ( \
                 version integer PRIMARY KEY, \
                 name text NOT NULL, \
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let applied = tx
            .query_opt(
                "SELECT 1 FROM trellis.schema_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if !applied {
            tracing::info!(version, name, "applying migration");
            tx.batch_execute(sql).await.map_err(|e| {
                Error::Internal(format!("migration {version} ({name}) failed: {e}"))
            })?;
            tx.execute(
                "INSERT INTO trellis.schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
