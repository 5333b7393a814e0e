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
    (
        3,
        "append_through_functions_only",
        include_str!("../../migrations/postgres/0003_append_through_functions_only.sql"),
    ),
];

/// Applies every migration of the log the database has not seen (recorded in
/// `trellis.schema_migrations`).
#[tracing::instrument(name = "event_store.migrate", skip_all, err)]
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), Error> {
    migrate_component(client, "schema", MIGRATIONS).await
}

/// Applies a component's migrations (a crate that keeps its own tables beside
/// the log, e.g. the read models or the webhooks): each in its own
/// transaction, recorded in `trellis.<component>_migrations`, under an
/// advisory lock so processes starting together do not race. `component` is
/// a lowercase identifier chosen by the caller (never user input).
pub async fn migrate_component(
    client: &mut tokio_postgres::Client,
    component: &str,
    migrations: &[(i32, &str, &str)],
) -> Result<(), Error> {
    crate::types::check_component_name(component)?;
    let table = format!("trellis.{component}_migrations");
    for (version, name, sql) in migrations {
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('{table}')); \
             CREATE SCHEMA IF NOT EXISTS trellis; \
             CREATE TABLE IF NOT EXISTS {table} ( \
                 version integer PRIMARY KEY, name text NOT NULL, \
                 applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await?;
        let applied = tx
            .query_opt(
                &format!("SELECT 1 FROM {table} WHERE version = $1"),
                &[version],
            )
            .await?
            .is_some();
        if !applied {
            tracing::info!(component, version, name, "applying migration");
            tx.batch_execute(sql).await.map_err(|e| {
                Error::Internal(format!(
                    "{component} migration {version} ({name}) failed: {e}"
                ))
            })?;
            tx.execute(
                &format!("INSERT INTO {table} (version, name) VALUES ($1, $2)"),
                &[version, name],
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
