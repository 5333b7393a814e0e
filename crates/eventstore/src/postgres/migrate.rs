//! Schema migrations of the log and of the components beside it, each
//! recorded with the SHA-256 of its text in `trellis.<component>_migrations`.
//!
//! `trellis migrate` applies them as the schema's owner ([`migrate`]). A
//! service opening its tables only checks them ([`prepare`]): when every
//! migration is applied it runs nothing but reads, so it runs as a login
//! role that is a member of [`RUNTIME_ROLE`]; a migration it does not know
//! (a newer schema) or one whose file changed stops it; what is pending it
//! applies only if it has the rights (a developer's own database), and
//! otherwise says to run `trellis migrate`.

use tokio_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use crate::Error;
use crate::types::{Migrations, Outcome, Plan, Recorded};

/// The log's migrations, in order. A migration is never edited once
/// released: changes are a new file.
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
    (
        4,
        "seals_and_merkle_tree",
        include_str!("../../migrations/postgres/0004_seals_and_merkle_tree.sql"),
    ),
    (
        5,
        "traceparent",
        include_str!("../../migrations/postgres/0005_traceparent.sql"),
    ),
    (
        6,
        "personal_data_keys",
        include_str!("../../migrations/postgres/0006_personal_data_keys.sql"),
    ),
    (
        7,
        "append_batch",
        include_str!("../../migrations/postgres/0007_append_batch.sql"),
    ),
    (
        8,
        "batch_seals",
        include_str!("../../migrations/postgres/0008_batch_seals.sql"),
    ),
    (
        9,
        "tree_segments",
        include_str!("../../migrations/postgres/0009_tree_segments.sql"),
    ),
];

/// The log's migrations (`trellis.schema_migrations`): the schema, the log,
/// the append functions, the subscribers' checkpoints and the runtime role.
pub const LOG_MIGRATIONS: Migrations = Migrations {
    component: "schema",
    dir: "crates/eventstore/migrations/postgres",
    steps: MIGRATIONS,
};

/// The role Trellis services run as, made by the log's first migration: it
/// reads the log and appends only through the append functions; every
/// component's migrations grant it what that component's code does.
pub const RUNTIME_ROLE: &str = "trellis_writer";

/// The record table of a component.
fn table(migrations: &Migrations) -> String {
    format!("trellis.{}_migrations", migrations.component)
}

/// Checks a component's tables when a service opens them: nothing but reads
/// when every migration is applied. A recorded migration this binary does
/// not know, or a changed file, is an error; pending migrations are applied
/// by [`migrate`] when this role may, and otherwise the error says to run
/// `trellis migrate` as the schema's owner.
#[tracing::instrument(name = "event_store.migrate", skip_all, fields(component = migrations.component))]
pub async fn prepare(
    client: &mut tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<Outcome, Error> {
    crate::types::check_component_name(migrations.component)?;
    let (ready, recorded) = read(client, migrations).await?;
    let plan = migrations.plan(&recorded)?;
    if ready && plan.is_empty() {
        return Ok(Outcome::new(migrations, &recorded));
    }
    run(client, migrations).await.map_err(|stop| match stop {
        Stop::Failed(e) => e,
        Stop::NoRights(reason) => Error::Internal(format!(
            "{}, and the role this connects as may not do that ({reason}): run `trellis \
             migrate` as the owner of schema trellis first",
            to_do(migrations, &plan),
        )),
    })
}

/// The files of a component's migrations not applied yet, by reads alone;
/// a recorded migration this binary does not know, or a changed file, is an
/// error (as for [`prepare`]).
pub async fn pending(
    client: &tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<Vec<String>, Error> {
    crate::types::check_component_name(migrations.component)?;
    let (_, recorded) = read(client, migrations).await?;
    let plan = migrations.plan(&recorded)?;
    Ok(plan
        .pending
        .iter()
        .map(|&(version, name, _)| migrations.file(version, name))
        .collect())
}

/// Applies a component's pending migrations as the schema's owner (what
/// `trellis migrate` does): each in its own transaction under an advisory
/// lock, so processes starting together do not race, recorded with its
/// checksum; records made before checksums were kept get theirs. Then lets
/// [`RUNTIME_ROLE`] read the records, so that a service can check them.
#[tracing::instrument(name = "event_store.migrate", skip_all, fields(component = migrations.component))]
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<Outcome, Error> {
    run(client, migrations).await.map_err(|stop| match stop {
        Stop::Failed(e) => e,
        Stop::NoRights(reason) => Error::Internal(format!(
            "the {} migrations need the rights of the owner of schema trellis ({reason}): run \
             `trellis migrate` as that role (on a new database: its owner, with CREATEROLE, \
             which makes {RUNTIME_ROLE})",
            migrations.component
        )),
    })
}

/// Why [`run`] stopped.
enum Stop {
    /// The role lacks a right the migrations need.
    NoRights(String),
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// `insufficient_privilege` (and "must be owner") as [`Stop::NoRights`].
fn pg(e: tokio_postgres::Error) -> Stop {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::INSUFFICIENT_PRIVILEGE => {
            Stop::NoRights(db.message().to_owned())
        }
        _ => Stop::Failed(e.into()),
    }
}

/// "the projection migrations 0003_x.sql and 0004_y.sql are pending".
fn to_do(migrations: &Migrations, plan: &Plan) -> String {
    let mut files: Vec<String> = plan
        .pending
        .iter()
        .map(|&(version, name, _)| format!("{version:04}_{name}.sql"))
        .collect();
    if files.is_empty() {
        return format!(
            "the records of the {} migrations predate checksums and need theirs",
            migrations.component
        );
    }
    let last = files.pop().unwrap_or_default();
    let (list, verb) = if files.is_empty() {
        (last, "is")
    } else {
        (format!("{} and {last}", files.join(", ")), "are")
    };
    format!(
        "the {} {} {list} {verb} not applied yet",
        migrations.component,
        if plan.pending.len() == 1 {
            "migration"
        } else {
            "migrations"
        }
    )
}

/// What the database records of a component, by reads alone: whether the
/// record table is ready (it exists and keeps checksums), and its records.
async fn read(
    client: &tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<(bool, Vec<Recorded>), Error> {
    let table = table(migrations);
    let (exists, checksums) = shape(client, &table).await?;
    if !exists {
        return Ok((false, Vec::new()));
    }
    let checksum = if checksums { "checksum" } else { "NULL::text" };
    let rows = client
        .query(
            &format!("SELECT version, name, {checksum} FROM {table} ORDER BY version"),
            &[],
        )
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) if *db.code() == SqlState::INSUFFICIENT_PRIVILEGE => Error::Internal(format!(
                "this role may not read {table} ({}): run `trellis migrate` as the owner \
                     of schema trellis, which lets {RUNTIME_ROLE} read it",
                db.message()
            )),
            _ => e.into(),
        })?;
    let recorded = rows
        .iter()
        .map(|row| Recorded {
            version: row.get(0),
            name: row.get(1),
            checksum: row.get(2),
        })
        .collect();
    Ok((checksums, recorded))
}

/// Whether the record table exists, and whether it keeps checksums.
async fn shape(client: &impl GenericClient, table: &str) -> Result<(bool, bool), Error> {
    let row = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attname = 'checksum' AND NOT attisdropped)",
            &[&table],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn run(
    client: &mut tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<Outcome, Stop> {
    crate::types::check_component_name(migrations.component)?;
    let table = table(migrations);
    let lock = format!("SELECT pg_advisory_xact_lock(hashtext('{table}'))");

    // The record table, made or given its checksum column, and what it
    // records, read under the lock.
    let tx = client.transaction().await.map_err(pg)?;
    tx.batch_execute(&lock).await.map_err(pg)?;
    let (exists, checksums) = shape(&tx, &table).await?;
    if !exists {
        let schema: bool = tx
            .query_one("SELECT to_regnamespace('trellis') IS NOT NULL", &[])
            .await
            .map_err(pg)?
            .get(0);
        if !schema {
            tx.batch_execute("CREATE SCHEMA trellis")
                .await
                .map_err(pg)?;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE {table} (version integer PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now(), checksum text)"
        ))
        .await
        .map_err(pg)?;
    } else if !checksums {
        tx.batch_execute(&format!("ALTER TABLE {table} ADD COLUMN checksum text"))
            .await
            .map_err(pg)?;
    }
    let recorded: Vec<Recorded> = tx
        .query(
            &format!("SELECT version, name, checksum FROM {table} ORDER BY version"),
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|row| Recorded {
            version: row.get(0),
            name: row.get(1),
            checksum: row.get(2),
        })
        .collect();
    let plan = migrations.plan(&recorded)?;
    let mut outcome = Outcome::new(migrations, &recorded);
    for (version, file, checksum) in &plan.unchecked {
        tx.execute(
            &format!("UPDATE {table} SET checksum = $2 WHERE version = $1 AND checksum IS NULL"),
            &[version, checksum],
        )
        .await
        .map_err(pg)?;
        tracing::info!(
            file,
            "recorded the checksum of a migration applied before checksums"
        );
        outcome.checksummed.push(file.clone());
    }
    tx.commit().await.map_err(pg)?;

    // Each pending migration in its own transaction; one that another
    // process applied meanwhile is skipped.
    for (version, name, text) in plan.pending {
        let file = migrations.file(version, name);
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(&lock).await.map_err(pg)?;
        let applied = tx
            .query_opt(
                &format!("SELECT 1 FROM {table} WHERE version = $1"),
                &[&version],
            )
            .await
            .map_err(pg)?
            .is_some();
        if !applied {
            tracing::info!(component = migrations.component, file, "applying migration");
            tx.batch_execute(text).await.map_err(|e| match pg(e) {
                Stop::NoRights(reason) => Stop::NoRights(format!("{file}: {reason}")),
                Stop::Failed(e) => Stop::Failed(Error::Internal(format!("{file} failed: {e}"))),
            })?;
            tx.execute(
                &format!("INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)"),
                &[&version, &name, &Migrations::checksum(text)],
            )
            .await
            .map_err(pg)?;
            outcome.applied.push(file);
        }
        tx.commit().await.map_err(pg)?;
        outcome.version = outcome.version.max(version);
    }

    // The runtime role reads the records, to check them without owner rights.
    client
        .batch_execute(&format!(
            "DO $$ BEGIN \
                 IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{RUNTIME_ROLE}') THEN \
                     GRANT SELECT ON {table} TO {RUNTIME_ROLE}; \
                 END IF; \
             END $$"
        ))
        .await
        .map_err(pg)?;
    Ok(outcome)
}

/// The components whose migrations the database records (a
/// `trellis.<component>_migrations` table) that `known` does not name: a
/// database migrated by a newer release, with a component this binary
/// does not have.
pub async fn unknown_components(
    client: &tokio_postgres::Client,
    known: &[&Migrations],
) -> Result<Vec<String>, Error> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'trellis' AND c.relkind = 'r' \
               AND c.relname LIKE '%\\_migrations' ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.get::<_, String>(0))
        .filter(|name| {
            let component = name.strip_suffix("_migrations").unwrap_or(name);
            !known.iter().any(|m| m.component == component)
        })
        .collect())
}

/// One thing in schema `trellis` and what [`RUNTIME_ROLE`] may do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `table`, `view`, `sequence` or `function`.
    pub kind: String,
    pub name: String,
    /// `SELECT`, `INSERT`, … (`USAGE` on a sequence, `EXECUTE` on a function).
    pub privileges: Vec<String>,
}

/// What [`RUNTIME_ROLE`] may do in schema `trellis`, directly or through
/// another role: every table and view with the privileges it has there
/// (none, for what it may not touch), every sequence, and the functions it
/// may call (trigger functions left out).
pub async fn runtime_grants(client: &tokio_postgres::Client) -> Result<Vec<Grant>, Error> {
    let rows = client
        .query(include_str!("runtime_grants.sql"), &[&RUNTIME_ROLE])
        .await?;
    Ok(rows
        .iter()
        .map(|row| Grant {
            kind: row.get(0),
            name: row.get(1),
            privileges: row.get(2),
        })
        .collect())
}
