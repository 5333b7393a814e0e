//! The embedded backend: the whole log in one SQLite file, for running
//! Trellis with nothing installed.
//!
//! Writes are serialized (one writer connection, `BEGIN IMMEDIATE`), so
//! global positions commit in order and a checkpoint is simply the position.
//! The file is in WAL mode with `synchronous = FULL`: an acknowledged append
//! survives a crash or power loss. Blocking SQLite calls run on tokio's
//! blocking pool, never on the async workers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::watch;
use uuid::Uuid;

use crate::chain::{canonical_json, link};
use crate::guards::GuardFinding;
use crate::note::{SEAL_LEN, SignerKey};
use crate::seal::{digest_of_new, seal_write};
use crate::types::{AppendRequest, limit, micros_to_time, to_i64, to_micros_precision};
use crate::{
    AppendOutcome, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Hash, Metadata,
    NewEvent, RecordedEvent, Seal, StreamId, StreamWrite, TraceParent, derived_command_id,
    validate_append, validate_many,
};

mod guards;
mod tree;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "trellis.db";

pub use crate::types::{Migrations, Outcome};

/// The log's migrations, in order. A migration is never edited once
/// released: changes are a new file.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../migrations/sqlite/0001_events.sql"),
    ),
    (
        2,
        "subscriber_checkpoints",
        include_str!("../migrations/sqlite/0002_subscriber_checkpoints.sql"),
    ),
    (
        3,
        "seals_and_merkle_tree",
        include_str!("../migrations/sqlite/0003_seals_and_merkle_tree.sql"),
    ),
    (
        4,
        "traceparent",
        include_str!("../migrations/sqlite/0004_traceparent.sql"),
    ),
    (
        5,
        "personal_data_keys",
        include_str!("../migrations/sqlite/0005_personal_data_keys.sql"),
    ),
    (
        6,
        "batch_seals",
        include_str!("../migrations/sqlite/0006_batch_seals.sql"),
    ),
    (
        7,
        "tree_segments",
        include_str!("../migrations/sqlite/0007_tree_segments.sql"),
    ),
];

/// The log's migrations, recorded in `schema_migrations` (and their count in
/// `PRAGMA user_version`, as files made before the records were kept have it).
pub const LOG_MIGRATIONS: Migrations = Migrations {
    component: "schema",
    dir: "crates/eventstore/migrations/sqlite",
    steps: MIGRATIONS,
};

const COLUMNS: &str = "global_position, event_id, stream_id, stream_version, event_type, \
    schema_version, payload, actor, command_id, correlation_id, causation_id, occurred_at, \
    recorded_at, prev_hash, hash, seal, traceparent, seal_path";

/// The embedded event store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Seals every appended event, when given ([`SqliteStore::sealing_with`]).
    seal_key: Option<Arc<SignerKey>>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Readers,
    appended: watch::Sender<u64>,
    /// This process's writers waiting for a scope ([`EventStore::exclusive`]).
    exclusive: crate::exclusive::Queue,
}

/// Connections for reading, which the file's write-ahead log lets run beside
/// each other and beside the writer: a reader sees what was committed when
/// its statement began, and neither waits for the writer's transaction nor
/// holds it up.
pub struct Readers {
    connections: Box<[Mutex<Connection>]>,
    /// Which connection the next read tries first.
    next: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl Readers {
    /// `n` (at least one) connections to the file at `path`, with the log's pragmas.
    pub fn open(path: &Path, n: usize) -> Result<Self, Error> {
        Ok(Readers {
            connections: (0..n.max(1))
                .map(|_| open_connection(path).map(Mutex::new))
                .collect::<Result<_, _>>()?,
            next: Default::default(),
        })
    }

    /// Runs `f` on the first free connection from a rotating start; when
    /// all are busy, on the one the rotation points at once it is free.
    /// Blocking: call it on the blocking pool.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let n = self.connections.len();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let free = (0..n).find_map(|i| match self.connections[(start + i) % n].try_lock() {
            Ok(conn) => Some(conn),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        });
        let conn = match free {
            Some(conn) => conn,
            None => self.connections[start % n]
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        };
        f(&conn)
    }
}

/// Connections reading the file at once. With one, a scan reading its next
/// page ahead held up everything else that read — the vault fetching the
/// keys of the page in hand, an API read beside a rebuild — until the page
/// was read.
const READERS: usize = 4;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn open_connection(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open(path).map_err(|e| {
        Error::Unavailable(format!(
            "cannot open the event log at {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // What is deleted or overwritten (an erased data key, a replaced read
    // model holding an erased person's name) is zeroed, not left in a free
    // page of the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Plans that do not depend on the values bound. Without it, reading a
    // stream's head (`stream_id = ?1 ORDER BY stream_version DESC LIMIT 1`)
    // was compiled again on every run of its cached statement, which the
    // bundled build's STAT4 planner allows for: about a tenth of the
    // writer's time at eight writers, holding the file's one writer.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/trellis.db` and applies pending migrations.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir))
            .await
            .map_err(|e| Error::Internal(format!("opening the embedded store panicked: {e}")))?
    }

    fn open_blocking(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE_NAME);
        let mut writer = open_connection(&path)?;
        migrate_log(&mut writer)?;
        let readers = Readers::open(&path, READERS)?;
        let (appended, _) = watch::channel(0);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers,
                appended,
                exclusive: Default::default(),
            }),
            seal_key: None,
        })
    }

    /// This store, sealing every event it appends with `key`.
    pub fn sealing_with(mut self, key: SignerKey) -> Self {
        self.seal_key = Some(Arc::new(key));
        self
    }

    /// Discards the stored Merkle tree, for a builder to make again from the
    /// log (the repair `trellis audit rebuild-tree` makes once `audit
    /// verify` found the stored tree altered and the log intact).
    pub async fn discard_stored_tree(&self) -> Result<(), Error> {
        self.with_writer(tree::discard).await
    }

    /// The guards ([`crate::guards`]) that are missing or not as the
    /// migrations made them.
    ///
    /// Read on a reader connection: `serve` asks at every scrape, and the
    /// writer's appends must not wait for it.
    pub async fn guard_findings(&self) -> Result<Vec<GuardFinding>, Error> {
        self.with_reader(guards::findings).await
    }

    /// Makes again every guard that is missing or not as the migrations
    /// made it (`trellis migrate`); the ones it made again.
    pub async fn restore_guards(&self) -> Result<Vec<GuardFinding>, Error> {
        self.with_writer(guards::restore).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file [`EventStore::exclusive`] locks: the log's, with
    /// `-writers.lock` after its name.
    fn lock_path(&self) -> PathBuf {
        let mut name = self.inner.path.as_os_str().to_owned();
        name.push("-writers.lock");
        PathBuf::from(name)
    }

    /// [`EventStore::read_all`], each row decoded by `decode`.
    async fn read_all_with<P: Send + 'static>(
        &self,
        after: Checkpoint,
        max: usize,
        decode: fn(&Row<'_>) -> Result<RecordedEvent<P>, Error>,
    ) -> Result<Vec<RecordedEvent<P>>, Error> {
        let position = to_i64(after.position, "position")?;
        self.with_reader(move |conn| {
            query_events_with(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM events WHERE global_position > ?1 \
                     ORDER BY global_position LIMIT ?2"
                ),
                params![position, limit(max)],
                decode,
            )
        })
        .await
    }

    async fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("an embedded store write panicked: {e}")))?
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.readers.with(f))
            .await
            .map_err(|e| Error::Internal(format!("an embedded store read panicked: {e}")))?
    }
}

/// Runs `f` with the connection's commits written to the WAL but not
/// flushed (`synchronous = NORMAL`), then puts back the log's flush on
/// every commit (`FULL`) whatever `f` returned.
///
/// For what need only be durable once a later write that depends on it
/// is: a person's new data key, which the vault makes just before it
/// encrypts a command with it. The WAL is one file written in order, so
/// the flush of that command's commit flushes the key's commit with it;
/// after a crash before it, the key is gone but so is every use of it.
/// On the file's one writer, a flush of its own for each new person's key
/// held up every batch behind it (`trellis-bench append`, the private
/// lines, write keys for each round's new reps).
///
/// The tree's extensions go this way too: the tree is made from the log,
/// so one lost in a crash is made again, and the flushed commit that
/// records a checkpoint flushes the tree it signed.
fn unflushed<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let outcome = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")?;
    outcome
}

/// Applies the log's pending migrations (see [`migrate`]). A file made
/// before the records were kept counts its applied migrations in
/// `user_version`: they are recorded first, with the checksums of the files
/// as this binary has them.
fn migrate_log(conn: &mut Connection) -> Result<Outcome, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let table = "schema_migrations";
    record_table(&tx, table)?;
    let counted: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let recorded: bool =
        tx.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| {
            r.get(0)
        })?;
    if !recorded {
        for version in 1..=counted {
            tx.execute(
                &format!("INSERT INTO {table} (version) VALUES (?1)"),
                [version],
            )?;
        }
    }
    let outcome = migrate_in(&tx, &LOG_MIGRATIONS)?;
    tx.pragma_update(None, "user_version", outcome.version)?;
    tx.commit()?;
    Ok(outcome)
}

/// The embedded file, opened by a component that keeps its own tables beside
/// the log (the read models, the webhooks): one connection of its own with
/// the log's pragmas, its migrations applied, and blocking calls run on
/// tokio's blocking pool; optionally connections for reading beside it
/// ([`ComponentConnection::with_readers`]).
#[derive(Clone)]
pub struct ComponentConnection {
    component: &'static str,
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    readers: Option<Arc<Readers>>,
}

impl std::fmt::Debug for ComponentConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConnection")
            .field("component", &self.component)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ComponentConnection {
    /// Opens the log's file (`SqliteStore::path`) and applies `migrations`
    /// (see [`migrate`]).
    pub async fn open(path: impl AsRef<Path>, migrations: Migrations) -> Result<Self, Error> {
        let component = migrations.component;
        let path = path.as_ref().to_path_buf();
        let opened = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, Error> {
            let mut conn = open_connection(&opened)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrate(&mut conn, &migrations)?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("opening the {component} tables panicked: {e}")))??;
        Ok(ComponentConnection {
            component,
            path,
            conn: Arc::new(Mutex::new(conn)),
            readers: None,
        })
    }

    /// This component, with `n` connections of its own for
    /// [`ComponentConnection::read`]: what it serves is then read beside its
    /// writes, not after them. With the one connection, a page waited for
    /// the read models' whole batch of writes to commit.
    pub async fn with_readers(mut self, n: usize) -> Result<Self, Error> {
        let path = self.path.clone();
        let readers = tokio::task::spawn_blocking(move || Readers::open(&path, n))
            .await
            .map_err(|e| {
                Error::Internal(format!(
                    "opening the {} readers panicked: {e}",
                    self.component
                ))
            })??;
        self.readers = Some(Arc::new(readers));
        Ok(self)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, on the blocking pool.
    pub async fn call<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (conn, component) = (self.conn.clone(), self.component);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(Error::Internal(format!("a {component} call panicked: {e}"))))?
    }

    /// Runs `f`, which only reads, on the blocking pool: on a reader when
    /// the component has them, else on its one connection. A reader sees
    /// what was committed when its transaction (or statement) began.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let Some(readers) = self.readers.clone() else {
            return self.call(move |conn| f(conn)).await;
        };
        let component = self.component;
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| E::from(Error::Internal(format!("a {component} read panicked: {e}"))))?
    }
}

/// Applies a component's pending migrations (a crate that keeps its own
/// tables in the embedded file, e.g. the read models or the webhooks), all
/// in one immediate transaction, each recorded in `<component>_migrations`
/// with the SHA-256 of its text. A recorded migration this binary does not
/// know (a file migrated by a newer release), or one whose file changed
/// since, is refused. The file is the process's own, so opening a component
/// applies what is pending.
pub fn migrate(conn: &mut Connection, migrations: &Migrations) -> Result<Outcome, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcome = migrate_in(&tx, migrations)?;
    tx.commit()?;
    Ok(outcome)
}

/// Brings the embedded file in `dir` up to date, creating it if needed: the
/// log's migrations, then each of `components`' (what `trellis migrate`
/// runs on the embedded store; opening each does the same).
pub async fn migrate_dir(
    dir: impl AsRef<Path>,
    components: &[Migrations],
) -> Result<Vec<Outcome>, Error> {
    let dir = dir.as_ref().to_path_buf();
    let components = components.to_vec();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut conn = open_connection(&dir.join(FILE_NAME))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut outcomes = vec![migrate_log(&mut conn)?];
        for migrations in &components {
            outcomes.push(migrate(&mut conn, migrations)?);
        }
        Ok(outcomes)
    })
    .await
    .map_err(|e| Error::Internal(format!("migrating the embedded store panicked: {e}")))?
}

/// [`migrate`] inside a transaction that holds the file's write lock.
fn migrate_in(tx: &Connection, migrations: &Migrations) -> Result<Outcome, Error> {
    crate::types::check_component_name(migrations.component)?;
    let table = format!("{}_migrations", migrations.component);
    record_table(tx, &table)?;
    let recorded = tx
        .prepare(&format!(
            "SELECT version, name, checksum FROM {table} ORDER BY version"
        ))?
        .query_map([], |row| {
            Ok(crate::types::Recorded {
                version: row.get(0)?,
                name: row.get(1)?,
                checksum: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let plan = migrations.plan(&recorded)?;
    let mut outcome = Outcome::new(migrations, &recorded);
    for (version, file, checksum) in plan.unchecked {
        let name = migrations
            .steps
            .iter()
            .find(|step| step.0 == version)
            .map(|step| step.1);
        tx.execute(
            &format!(
                "UPDATE {table} SET checksum = ?2, name = coalesce(name, ?3) WHERE version = ?1"
            ),
            params![version, checksum, name],
        )?;
        tracing::info!(
            file,
            "recorded the checksum of a migration applied before checksums"
        );
        outcome.checksummed.push(file);
    }
    for (version, name, text) in plan.pending {
        let file = migrations.file(version, name);
        tracing::info!(component = migrations.component, file, "applying migration");
        tx.execute_batch(text).map_err(|e| {
            // Not the whole file again: where in it, and why.
            let why = match &e {
                rusqlite::Error::SqlInputError { msg, offset, .. } => {
                    format!("{msg} at offset {offset}")
                }
                other => other.to_string(),
            };
            Error::Internal(format!("{file} failed: {why}"))
        })?;
        tx.execute(
            &format!("INSERT INTO {table} (version, name, checksum) VALUES (?1, ?2, ?3)"),
            params![version, name, Migrations::checksum(text)],
        )?;
        outcome.applied.push(file);
        outcome.version = outcome.version.max(version);
    }
    Ok(outcome)
}

/// Makes a component's record table, or gives one made before checksums
/// were kept its name and checksum columns.
fn record_table(conn: &Connection, table: &str) -> Result<(), Error> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} ( \
             version INTEGER PRIMARY KEY, \
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), \
             name TEXT, \
             checksum TEXT)"
    ))?;
    let columns = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for column in ["name", "checksum"] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"))?;
        }
    }
    Ok(())
}

/// How the tables of components beside the log in the embedded file (the
/// webhooks', the sign-in tables) keep times and ids as text.
pub mod text {
    use chrono::{DateTime, SecondsFormat, Utc};
    use uuid::Uuid;

    /// Fixed-width UTC text with microseconds, so text order is time order.
    pub fn time(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// A time kept by [`time`]; the error names the text.
    pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("a stored time {text:?} is malformed: {e}"))
    }

    /// An id kept as text; the error names the text.
    pub fn parse_id(text: &str) -> Result<Uuid, String> {
        Uuid::parse_str(text).map_err(|e| format!("a stored id {text:?} is malformed: {e}"))
    }
}

fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text)
        .map_err(|_| Error::Internal(format!("the log holds an invalid id {text:?}")))
}

fn row_to_event(row: &Row<'_>) -> Result<RecordedEvent, Error> {
    let event = row_to_event_json(row)?;
    let payload = serde_json::from_str(&event.payload)
        .map_err(|_| Error::Internal("the log holds an invalid payload".into()))?;
    Ok(event.map_payload(|_| payload))
}

/// [`row_to_event`] with the payload as the JSON text the log holds.
fn row_to_event_json(row: &Row<'_>) -> Result<RecordedEvent<String>, Error> {
    let bad = |what: &str| Error::Internal(format!("the log holds an invalid {what}"));
    let position: i64 = row.get(0)?;
    let position = u64::try_from(position).map_err(|_| bad("global position"))?;
    let stream_id: String = row.get(2)?;
    let version: i64 = row.get(3)?;
    let schema_version: i64 = row.get(5)?;
    let payload: String = row.get(6)?;
    let causation: Option<String> = row.get(10)?;
    let prev_hash: Vec<u8> = row.get(13)?;
    let hash: Vec<u8> = row.get(14)?;
    Ok(RecordedEvent {
        global_position: position,
        checkpoint: Checkpoint {
            tx: position,
            position,
        },
        event_id: parse_uuid(&row.get::<_, String>(1)?)?,
        stream_id: StreamId::new(stream_id)
            .unwrap_or_else(|_| StreamId::new("invalid").expect("a valid literal")),
        stream_version: u64::try_from(version).map_err(|_| bad("stream version"))?,
        event_type: row.get(4)?,
        schema_version: u16::try_from(schema_version).map_err(|_| bad("schema version"))?,
        payload,
        metadata: Metadata {
            actor: row.get(7)?,
            command_id: parse_uuid(&row.get::<_, String>(8)?)?,
            correlation_id: parse_uuid(&row.get::<_, String>(9)?)?,
            causation_id: causation.as_deref().map(parse_uuid).transpose()?,
            occurred_at: micros_to_time(row.get(11)?)?,
            recorded_at: micros_to_time(row.get(12)?)?,
            // Checked on the way in; a damaged one is dropped, not an error:
            // it is telemetry, nothing depends on it.
            traceparent: row
                .get::<_, Option<String>>(16)?
                .and_then(|t| TraceParent::new(t).ok()),
        },
        prev_hash: Hash::from_slice(&prev_hash).ok_or_else(|| bad("hash"))?,
        hash: Hash::from_slice(&hash).ok_or_else(|| bad("hash"))?,
        // A batch seal's place and path are kept beside its signature.
        seal: match row
            .get_ref(15)?
            .as_blob_or_null()
            .map_err(|_| bad("seal"))?
        {
            Some(head) => {
                let path = row
                    .get_ref(17)?
                    .as_blob_or_null()
                    .map_err(|_| bad("seal"))?;
                let whole = [head, path.unwrap_or_default()].concat();
                Some(Seal::from_vec(whole).ok_or_else(|| bad("seal"))?)
            }
            None => None,
        },
        content_digest: Default::default(),
    })
}

fn query_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, Error> {
    query_events_with(conn, sql, params, row_to_event)
}

fn query_events_with<P>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&Row<'_>) -> Result<RecordedEvent<P>, Error>,
) -> Result<Vec<RecordedEvent<P>>, Error> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(decode(row)?);
    }
    Ok(events)
}

fn append_blocking(
    conn: &mut Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    meta: &CommandMeta,
    events: &[NewEvent],
    prepared: &[Prepared],
) -> Result<AppendOutcome, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcome = append_in(
        &tx,
        stream,
        expected,
        meta,
        meta.command_id,
        events,
        prepared,
    )?;
    tx.commit()?;
    Ok(outcome)
}

fn append_many_blocking(
    conn: &mut Connection,
    meta: &CommandMeta,
    writes: &[StreamWrite],
    prepared: &[Vec<Prepared>],
) -> Result<Vec<AppendOutcome>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcomes = writes
        .iter()
        .zip(prepared)
        .map(|(w, prepared)| {
            let command_id = derived_command_id(meta.command_id, &w.stream);
            append_in(
                &tx, &w.stream, w.expected, meta, command_id, &w.events, prepared,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Dropping `tx` on an error above rolls everything back.
    tx.commit()?;
    Ok(outcomes)
}

/// A stream's last version and hash, read by every append.
const STREAM_HEAD: &str = "SELECT stream_version, hash FROM events WHERE stream_id = ?1 \
                           ORDER BY stream_version DESC LIMIT 1";

fn recorded_command_in(
    conn: &Connection,
    command_id: &str,
) -> Result<Option<AppendOutcome>, Error> {
    let found = conn
        .prepare_cached(
            "SELECT last_version, first_position, last_position, request_hash FROM commands \
             WHERE command_id = ?1",
        )?
        .query_row([command_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
            ))
        })
        .optional()?;
    Ok(
        found.map(|(version, first, last, request_hash)| AppendOutcome {
            stream_version: u64::try_from(version).unwrap_or_default(),
            first_position: u64::try_from(first).unwrap_or_default(),
            last_position: u64::try_from(last).unwrap_or_default(),
            replayed: true,
            request_hash: request_hash.as_deref().and_then(Hash::from_slice),
        }),
    )
}

/// What an append works out before it takes the writer, so the file is
/// held only for the writes: each event's content digest, its seal and its
/// canonical payload text.
struct Prepared {
    digest: [u8; 32],
    seal: Option<Vec<u8>>,
    payload: String,
}

/// Each event's digest and canonical payload; seals come after, for the
/// whole write at once ([`seal_prepared`]).
fn prepare(
    stream: &StreamId,
    meta: &CommandMeta,
    command_uuid: Uuid,
    events: &[NewEvent],
) -> Result<Vec<Prepared>, Error> {
    let mut scratch = Vec::with_capacity(512);
    events
        .iter()
        .map(|event| {
            let digest = digest_of_new(stream, meta, command_uuid, event, &mut scratch);
            let mut payload = Vec::with_capacity(256);
            canonical_json(&event.payload, &mut payload);
            Ok(Prepared {
                digest,
                seal: None,
                payload: String::from_utf8(payload)
                    .map_err(|_| Error::Internal("canonical JSON was not UTF-8".into()))?,
            })
        })
        .collect()
}

/// Seals every event of one write, in order, with one signature (`seal.rs`).
fn seal_prepared<'p>(key: Option<&SignerKey>, events: impl IntoIterator<Item = &'p mut Prepared>) {
    seal_write(key, events.into_iter().map(|e| (&e.digest, &mut e.seal)));
}

/// Several independent commands in one write transaction, each inside a
/// savepoint of its own: one that fails is rolled back alone and answered
/// with its error; the others commit together. A failure of the
/// transaction itself (it cannot start or commit) is every command's answer,
/// and nothing was written.
fn append_batch_blocking(
    conn: &mut Connection,
    requests: &[AppendRequest],
    prepared: Vec<Result<(CommandMeta, Vec<Prepared>), Error>>,
) -> Result<Vec<Result<AppendOutcome, Error>>, Error> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for (r, prepared) in requests.iter().zip(prepared) {
        let (meta, prepared) = match prepared {
            Ok(ready) => ready,
            Err(e) => {
                outcomes.push(Err(e));
                continue;
            }
        };
        let savepoint = tx.savepoint()?;
        let outcome = append_in(
            &savepoint,
            &r.stream,
            r.expected,
            &meta,
            meta.command_id,
            &r.events,
            &prepared,
        );
        if outcome.is_ok() {
            savepoint.commit()?;
        }
        // Dropping an uncommitted savepoint rolls back what it wrote.
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// One stream's append inside the caller's write transaction.
fn append_in(
    tx: &Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    meta: &CommandMeta,
    command_uuid: Uuid,
    events: &[NewEvent],
    prepared: &[Prepared],
) -> Result<AppendOutcome, Error> {
    let command_id = &command_uuid.to_string();
    if let Some(outcome) = recorded_command_in(tx, command_id)? {
        return Ok(outcome);
    }
    let head = tx
        .prepare_cached(STREAM_HEAD)?
        .query_row([stream.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    let (head_version, mut prev) = match head {
        Some((version, hash)) => (
            u64::try_from(version).unwrap_or_default(),
            Hash::from_slice(&hash)
                .ok_or_else(|| Error::Internal(format!("stream {stream} holds an invalid hash")))?,
        ),
        None => (0, Hash::GENESIS),
    };
    if let ExpectedVersion::Exact(v) = expected
        && v != head_version
    {
        return Err(Error::Conflict {
            stream: stream.clone(),
            expected,
            current: head_version,
        });
    }

    let recorded_at = meta.recorded_at.timestamp_micros();
    let correlation = meta.correlation_id.to_string();
    let causation = meta.causation_id.map(|c| c.to_string());
    let traceparent = meta.traceparent.as_ref().map(TraceParent::as_str);
    let mut first_position = 0;
    let mut last_position = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, \
             payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
             prev_hash, hash, seal, traceparent, seal_path) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for (i, event) in events.iter().enumerate() {
            let version = head_version + 1 + i as u64;
            let occurred = to_micros_precision(event.occurred_at);
            let ready = prepared
                .get(i)
                .ok_or_else(|| Error::Internal("an event was not prepared".into()))?;
            let hash = link(&prev, version, &ready.digest);
            let payload = ready.payload.as_str();
            // The signature in `seal`, a batch seal's place and path apart.
            let (seal, seal_path) = match ready.seal.as_deref() {
                Some(seal) if seal.len() > SEAL_LEN => {
                    let (head, path) = seal.split_at(SEAL_LEN);
                    (Some(head), Some(path))
                }
                seal => (seal, None),
            };
            insert
                .execute(params![
                    event.event_id.to_string(),
                    stream.as_str(),
                    to_i64(version, "version")?,
                    event.event_type,
                    i64::from(event.schema_version),
                    payload,
                    meta.actor,
                    command_id,
                    correlation,
                    causation,
                    occurred.timestamp_micros(),
                    recorded_at,
                    prev.0.as_slice(),
                    hash.0.as_slice(),
                    seal,
                    traceparent,
                    seal_path,
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => Error::InvalidInput(format!(
                        "event id {} is already in the log; every event needs a new id",
                        event.event_id
                    )),
                    _ => e.into(),
                })?;
            let position = u64::try_from(tx.last_insert_rowid()).unwrap_or_default();
            if i == 0 {
                first_position = position;
            }
            last_position = position;
            prev = hash;
        }
    }
    let stream_version = head_version + events.len() as u64;
    tx.prepare_cached(
        "INSERT INTO commands (command_id, stream_id, last_version, first_position, last_position, \
         request_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        command_id,
        stream.as_str(),
        to_i64(stream_version, "version")?,
        to_i64(first_position, "position")?,
        to_i64(last_position, "position")?,
        meta.request_hash.as_ref().map(|h| h.0.as_slice()),
    ])?;
    Ok(AppendOutcome {
        stream_version,
        first_position,
        last_position,
        replayed: false,
        request_hash: meta.request_hash,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    #[tracing::instrument(
        name = "event_store.append",
        skip_all,
        fields(stream = %stream, events = events.len(), command_id = %meta.command_id),
        err(level = "debug")
    )]
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error> {
        validate_append(events, meta)?;
        if let ExpectedVersion::Exact(v) = expected {
            to_i64(v, "expected version")?;
        }
        let inner = self.inner.clone();
        let seal_key = self.seal_key.clone();
        let stream = stream.clone();
        let meta = CommandMeta {
            recorded_at: to_micros_precision(meta.recorded_at),
            ..meta.clone()
        };
        let events = events.to_vec();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut prepared = prepare(&stream, &meta, meta.command_id, &events)?;
            seal_prepared(seal_key.as_deref(), &mut prepared);
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            append_blocking(&mut conn, &stream, expected, &meta, &events, &prepared)
        })
        .await
        .map_err(|e| Error::Internal(format!("an embedded append panicked: {e}")))??;
        if !outcome.replayed {
            self.inner.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(outcome)
    }

    #[tracing::instrument(
        name = "event_store.append_batch",
        skip_all,
        fields(commands = requests.len())
    )]
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, Error>> {
        if let [only] = &requests[..] {
            return vec![
                self.append(&only.stream, only.expected, &only.meta, &only.events)
                    .await,
            ];
        }
        let inner = self.inner.clone();
        let seal_key = self.seal_key.clone();
        let count = requests.len();
        let owned = requests;
        let outcomes = tokio::task::spawn_blocking(move || {
            let mut prepared: Vec<Result<(CommandMeta, Vec<Prepared>), Error>> = owned
                .iter()
                .map(|r| {
                    validate_append(&r.events, &r.meta)?;
                    if let ExpectedVersion::Exact(v) = r.expected {
                        to_i64(v, "expected version")?;
                    }
                    let meta = CommandMeta {
                        recorded_at: to_micros_precision(r.meta.recorded_at),
                        ..r.meta.clone()
                    };
                    let ready = prepare(&r.stream, &meta, meta.command_id, &r.events)?;
                    Ok((meta, ready))
                })
                .collect();
            // One signature for the whole batch.
            seal_prepared(
                seal_key.as_deref(),
                prepared
                    .iter_mut()
                    .flatten()
                    .flat_map(|(_, ready)| ready.iter_mut()),
            );
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            append_batch_blocking(&mut conn, &owned, prepared)
        })
        .await
        .map_err(|e| Error::Internal(format!("an embedded append panicked: {e}")))
        .and_then(|outcomes| outcomes);
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(e) => vec![Err(e); count],
        };
        if outcomes.iter().any(|o| matches!(o, Ok(o) if !o.replayed)) {
            self.inner.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
        outcomes
    }

    #[tracing::instrument(
        name = "event_store.append_many",
        skip_all,
        fields(streams = writes.len(), command_id = %meta.command_id),
        err(level = "debug")
    )]
    async fn append_many(
        &self,
        meta: &CommandMeta,
        writes: &[StreamWrite],
    ) -> Result<Vec<AppendOutcome>, Error> {
        validate_many(meta, writes)?;
        for write in writes {
            if let ExpectedVersion::Exact(v) = write.expected {
                to_i64(v, "expected version")?;
            }
        }
        let inner = self.inner.clone();
        let seal_key = self.seal_key.clone();
        let meta = CommandMeta {
            recorded_at: to_micros_precision(meta.recorded_at),
            ..meta.clone()
        };
        let writes = writes.to_vec();
        let outcomes = tokio::task::spawn_blocking(move || {
            let mut prepared = writes
                .iter()
                .map(|w| {
                    let command_id = derived_command_id(meta.command_id, &w.stream);
                    prepare(&w.stream, &meta, command_id, &w.events)
                })
                .collect::<Result<Vec<_>, _>>()?;
            seal_prepared(seal_key.as_deref(), prepared.iter_mut().flatten());
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            append_many_blocking(&mut conn, &meta, &writes, &prepared)
        })
        .await
        .map_err(|e| Error::Internal(format!("an embedded append panicked: {e}")))??;
        if outcomes.iter().any(|o| !o.replayed) {
            self.inner.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(outcomes)
    }

    #[tracing::instrument(name = "event_store.recorded_command", skip_all, err)]
    async fn recorded_command(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, Error> {
        self.with_reader(move |conn| recorded_command_in(conn, &command_id.to_string()))
            .await
    }

    #[tracing::instrument(name = "event_store.load_checkpoint", skip_all, fields(name), err)]
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, Error> {
        let name = name.to_owned();
        self.with_reader(move |conn| {
            let found = conn
                .prepare_cached("SELECT tx, position FROM subscriber_checkpoints WHERE name = ?1")?
                .query_row([&name], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .optional()?;
            Ok(found.map(|(tx, position)| Checkpoint {
                tx: u64::try_from(tx).unwrap_or_default(),
                position: u64::try_from(position).unwrap_or_default(),
            }))
        })
        .await
    }

    #[tracing::instrument(name = "event_store.save_checkpoint", skip_all, fields(name), err)]
    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), Error> {
        let name = name.to_owned();
        let tx = to_i64(checkpoint.tx, "checkpoint")?;
        let position = to_i64(checkpoint.position, "checkpoint")?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            conn.prepare_cached(
                "INSERT INTO subscriber_checkpoints (name, tx, position, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, \
                 position = excluded.position, updated_at = excluded.updated_at",
            )?
            .execute(params![
                name,
                tx,
                position,
                chrono::Utc::now().timestamp_micros()
            ])?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("saving a checkpoint panicked: {e}")))?
    }

    #[tracing::instrument(name = "event_store.stream_version", skip_all, fields(stream = %stream), err)]
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, Error> {
        let stream = stream.clone();
        self.with_reader(move |conn| {
            let version: i64 = conn
                .prepare_cached(
                    "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?1",
                )?
                .query_row([stream.as_str()], |r| r.get(0))?;
            Ok(u64::try_from(version).unwrap_or_default())
        })
        .await
    }

    #[tracing::instrument(name = "event_store.read_stream", skip_all, fields(stream = %stream), err)]
    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let stream = stream.clone();
        let after = to_i64(after_version, "version")?;
        self.with_reader(move |conn| {
            query_events(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version > ?2 \
                     ORDER BY stream_version LIMIT ?3"
                ),
                params![stream.as_str(), after, limit(max)],
            )
        })
        .await
    }

    #[tracing::instrument(name = "event_store.read_all", skip_all, fields(after = %after), err)]
    async fn read_all(&self, after: Checkpoint, max: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.read_all_with(after, max, row_to_event).await
    }

    #[tracing::instrument(name = "event_store.read_all_json", skip_all, fields(after = %after), err)]
    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, Error> {
        self.read_all_with(after, max, row_to_event_json).await
    }

    #[tracing::instrument(name = "event_store.head", skip_all, err)]
    async fn settled_head(&self) -> Result<Checkpoint, Error> {
        // One writer: a write that returned is committed, and readable.
        self.head().await
    }

    async fn head(&self) -> Result<Checkpoint, Error> {
        self.with_reader(|conn| {
            let position: i64 = conn
                .prepare_cached("SELECT coalesce(max(global_position), 0) FROM events")?
                .query_row([], |r| r.get(0))?;
            let position = u64::try_from(position).unwrap_or_default();
            Ok(Checkpoint {
                tx: position,
                position,
            })
        })
        .await
    }

    #[tracing::instrument(name = "event_store.scan_streams", skip_all, err)]
    async fn scan_streams(
        &self,
        after: Option<(StreamId, u64)>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let (stream, version) = match after {
            Some((stream, version)) => (stream.as_str().to_owned(), to_i64(version, "version")?),
            None => (String::new(), 0),
        };
        self.with_reader(move |conn| {
            query_events(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM events \
                     WHERE stream_id > ?1 OR (stream_id = ?1 AND stream_version > ?2) \
                     ORDER BY stream_id, stream_version LIMIT ?3"
                ),
                params![stream, version, limit(max)],
            )
        })
        .await
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }

    async fn ping(&self) -> Result<(), Error> {
        self.with_reader(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
    async fn tree_state(&self) -> Result<crate::tree::TreeState, Error> {
        self.with_reader(tree::state).await
    }

    async fn read_leaves(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<crate::tree::Leaf>, Error> {
        let position = to_i64(after.position, "position")?;
        self.with_reader(move |conn| tree::read_leaves(conn, position, max))
            .await
    }

    #[tracing::instrument(name = "event_store.extend_tree", skip_all, fields(leaves = extension.leaves.len()), err)]
    async fn extend_tree(&self, extension: &crate::tree::TreeExtension) -> Result<(), Error> {
        let extension = extension.clone();
        // Not flushed on its own (see `unflushed`): the tree is made from
        // the log, and a write lost in a crash is made again from it.
        // Recording a checkpoint, which is flushed, flushes what it signed.
        self.with_writer(move |conn| unflushed(conn, |conn| tree::extend(conn, &extension)))
            .await
    }

    async fn tree_nodes(&self, ids: &[crate::merkle::NodeId]) -> Result<Vec<Option<Hash>>, Error> {
        let ids = ids.to_vec();
        self.with_reader(move |conn| tree::nodes(conn, &ids)).await
    }

    async fn tree_leaf_range(&self, from: u64, max: usize) -> Result<Vec<(u64, u64, Hash)>, Error> {
        self.with_reader(move |conn| tree::leaf_range(conn, from, max))
            .await
    }

    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, Error> {
        let positions = positions.to_vec();
        self.with_reader(move |conn| tree::leaf_indexes(conn, &positions))
            .await
    }

    async fn record_tree_checkpoint(
        &self,
        checkpoint: &crate::tree::StoredCheckpoint,
    ) -> Result<(), Error> {
        let checkpoint = checkpoint.clone();
        self.with_writer(move |conn| tree::record(conn, &checkpoint))
            .await
    }

    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<crate::tree::StoredCheckpoint>, Error> {
        self.with_reader(move |conn| tree::checkpoints(conn, after_size, max))
            .await
    }

    async fn latest_tree_checkpoint(&self) -> Result<Option<crate::tree::StoredCheckpoint>, Error> {
        self.with_reader(tree::latest).await
    }

    async fn exclusive(&self, scope: &str) -> Result<crate::Exclusive, Error> {
        // This store's turn first, then the file's: one lock file beside
        // the log holds every scope (the checks are rare and short), locked
        // through its own open handle, so two stores on one file, in one
        // process or two, wait for each other.
        let turn = self.inner.exclusive.enter(scope).await?;
        let path = self.lock_path();
        let opened = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(opened)
        })
        .await
        .map_err(|e| Error::Internal(format!("opening the lock file panicked: {e}")))?
        .map_err(|e| Error::Unavailable(format!("could not open {}: {e}", path.display())))?;
        crate::exclusive::take(scope, || {
            std::future::ready(match file.try_lock() {
                Ok(()) => Ok(Some(())),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(Error::Unavailable(format!(
                    "could not lock {}: {e}",
                    path.display()
                ))),
            })
        })
        .await?;
        // Closing the file lets go.
        Ok(crate::Exclusive::new((file, turn)))
    }
}

#[async_trait]
impl crate::vault::KeyStore for SqliteStore {
    async fn data_keys(
        &self,
        persons: &[Uuid],
        make_missing: bool,
    ) -> Result<std::collections::HashMap<Uuid, crate::vault::KeyState>, Error> {
        let persons = persons.to_vec();
        // One statement for the whole page's persons, as a JSON array.
        let read = move |conn: &Connection, persons: &[Uuid]| {
            let mut keys = std::collections::HashMap::with_capacity(persons.len());
            let wanted = serde_json::to_string(persons)
                .map_err(|e| Error::Internal(format!("persons as JSON: {e}")))?;
            let mut select = conn.prepare_cached(
                "SELECT person, data_key, erased_at FROM personal_data_keys \
                 WHERE person IN (SELECT value FROM json_each(?1))",
            )?;
            let mut rows = select.query([wanted])?;
            while let Some(row) = rows.next()? {
                let person: String = row.get(0)?;
                let person = Uuid::parse_str(&person)
                    .map_err(|e| Error::Internal(format!("a person id in the key table: {e}")))?;
                let state = key_state(person, row.get(1)?, row.get(2)?)?;
                keys.insert(person, state);
            }
            Ok::<_, Error>(keys)
        };
        if !make_missing {
            return self.with_reader(move |conn| read(conn, &persons)).await;
        }
        // Not flushed on its own: see `unflushed`.
        self.with_writer(move |conn| unflushed(conn, |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut keys = read(&tx, &persons)?;
            let now = chrono::Utc::now().timestamp_micros();
            let missing: Vec<Uuid> =
                persons.iter().filter(|p| !keys.contains_key(p)).copied().collect();
            for person in &missing {
                let key = crate::vault::DataKey::generate()?;
                tx.prepare_cached(
                    "INSERT INTO personal_data_keys (person, data_key, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![person.to_string(), key.0.to_vec(), now])?;
                keys.insert(*person, crate::vault::KeyState::Live(key));
            }
            tx.commit()?;
            Ok(keys)
        }))
        .await
    }

    async fn erase_data_key(
        &self,
        person: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::DateTime<chrono::Utc>, Error> {
        self.with_writer(move |conn| {
            let micros = at.timestamp_micros();
            conn.prepare_cached(
                "INSERT INTO personal_data_keys (person, data_key, created_at, erased_at) \
                 VALUES (?1, NULL, ?2, ?2) \
                 ON CONFLICT (person) DO UPDATE SET data_key = NULL, erased_at = excluded.erased_at \
                 WHERE erased_at IS NULL",
            )?
            .execute(params![person.to_string(), micros])?;
            let erased: i64 = conn
                .prepare_cached("SELECT erased_at FROM personal_data_keys WHERE person = ?1")?
                .query_row([person.to_string()], |r| r.get(0))?;
            empty_the_wal(conn)?;
            chrono::DateTime::from_timestamp_micros(erased)
                .ok_or_else(|| Error::Internal(format!("the erasure time of {person} is out of range")))
        })
        .await
    }
}

fn key_state(
    person: Uuid,
    key: Option<Vec<u8>>,
    erased_at: Option<i64>,
) -> Result<crate::vault::KeyState, Error> {
    use crate::vault::{DataKey, KeyState};
    match (key, erased_at) {
        (_, Some(at)) => Ok(KeyState::Erased(
            chrono::DateTime::from_timestamp_micros(at).unwrap_or_default(),
        )),
        (Some(key), None) => Ok(KeyState::Live(DataKey(key.try_into().map_err(|_| {
            Error::Internal(format!("the data key of {person} is not 32 bytes"))
        })?))),
        (None, None) => Err(Error::Internal(format!(
            "the data key of {person} is missing but not erased"
        ))),
    }
}

/// Folds the write-ahead log into the file and empties it. What was
/// overwritten or deleted (an erased key, a person's scrubbed name) may
/// still sit in old frames of the log, which are not zeroed as the file's
/// free pages are (`secure_delete`): each component that scrubs an erased
/// person's data calls this after it commits. It waits for readers (the
/// connection's busy timeout); one still reading can hold frames back, which
/// the next checkpoint then empties.
pub fn empty_the_wal(conn: &Connection) -> Result<(), Error> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled SQLite may compile a statement again when a value bound
    /// to it could change its plan; the head of a stream was read that way
    /// on every append until the connections asked for stable plans.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_reads_the_stream_head_without_compiling_it_again() {
        let dir = std::env::temp_dir().join(format!("trellis-head-plan-{}", Uuid::now_v7()));
        let store = SqliteStore::open(&dir).await.unwrap();
        let streams: Vec<StreamId> = (0..5)
            .map(|_| StreamId::for_entity("rep", Uuid::now_v7()).unwrap())
            .collect();
        for version in 0..10u64 {
            for stream in &streams {
                let meta = CommandMeta::new("test", chrono::Utc::now());
                let event = NewEvent::new(
                    "Noted",
                    1,
                    serde_json::json!({"n": version}),
                    chrono::Utc::now(),
                );
                store
                    .append(stream, ExpectedVersion::Exact(version), &meta, &[event])
                    .await
                    .unwrap();
            }
        }
        let (runs, compiled_again) = {
            let conn = store.inner.writer.lock().unwrap();
            let head = conn.prepare_cached(STREAM_HEAD).unwrap();
            (
                head.get_status(rusqlite::StatementStatus::Run),
                head.get_status(rusqlite::StatementStatus::RePrepare),
            )
        };
        assert_eq!(runs, 50, "every append read its stream's head");
        assert_eq!(compiled_again, 0, "the head's plan was made once");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_is_not_held_up_by_another_under_way() {
        let dir = std::env::temp_dir().join(format!("trellis-readers-{}", Uuid::now_v7()));
        let store = SqliteStore::open(&dir).await.unwrap();
        // One read holds its connection until told to finish.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel();
        let slow = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .with_reader(move |_conn| {
                        let _ = started.send(());
                        let _ = held.recv_timeout(std::time::Duration::from_secs(30));
                        Ok(())
                    })
                    .await
            })
        };
        has_started.await.unwrap();
        // Another read goes ahead meanwhile, on another connection.
        let head = tokio::time::timeout(std::time::Duration::from_secs(10), store.head()).await;
        assert!(head.is_ok(), "a second read waited for the first to end");
        head.unwrap().unwrap();
        release.send(()).unwrap();
        slow.await.unwrap().unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A batch's events share one signature, kept with each event's path
    /// (split across `seal` and `seal_path`, read back whole); a command
    /// alone keeps the single event's 68-byte seal. Every seal verifies.
    #[tokio::test]
    async fn a_batch_is_sealed_with_one_signature_and_every_seal_verifies() {
        let dir = std::env::temp_dir().join(format!("trellis-batch-seal-{}", Uuid::now_v7()));
        let key = SignerKey::generate("trellis.test/seal").unwrap();
        let store = SqliteStore::open(&dir)
            .await
            .unwrap()
            .sealing_with(key.clone());
        let event = |note: &str| {
            NewEvent::new(
                "FeedbackGiven",
                1,
                serde_json::json!({ "note": note }),
                chrono::Utc::now(),
            )
        };
        let streams: Vec<StreamId> = (0..3)
            .map(|_| StreamId::for_entity("rep", Uuid::now_v7()).unwrap())
            .collect();
        let requests = streams
            .iter()
            .enumerate()
            .map(|(i, stream)| AppendRequest {
                stream: stream.clone(),
                expected: ExpectedVersion::Exact(0),
                meta: CommandMeta::new("user-1", chrono::Utc::now()),
                events: (0..=i).map(|n| event(&format!("note {n}"))).collect(),
            })
            .collect();
        for outcome in store.append_batch(requests).await {
            outcome.unwrap();
        }
        let alone = StreamId::for_entity("rep", Uuid::now_v7()).unwrap();
        let meta = CommandMeta::new("user-1", chrono::Utc::now());
        store
            .append(&alone, ExpectedVersion::Exact(0), &meta, &[event("alone")])
            .await
            .unwrap();

        let mut batch = Vec::new();
        for stream in &streams {
            batch.extend(store.read_stream(stream, 0, 10).await.unwrap());
        }
        assert_eq!(batch.len(), 6);
        let alone = store.read_stream(&alone, 0, 10).await.unwrap();
        let mut scratch = Vec::new();
        let keys = [key.verifier()];
        let mut check = crate::note::SealCheck::new(&keys);
        let mut heads = std::collections::HashSet::new();
        for event in &batch {
            let seal = event.seal.as_ref().expect("the event is sealed");
            assert!(seal.0.len() > SEAL_LEN, "a batch seal carries its path");
            heads.insert(seal.0[..SEAL_LEN].to_vec());
            let digest = event.stored_digest(&mut scratch).unwrap();
            assert!(check.verifies(&digest, &seal.0));
        }
        assert_eq!(heads.len(), 1, "one signature for the batch");
        let seal = alone[0].seal.as_ref().expect("the event is sealed");
        assert_eq!(seal.0.len(), SEAL_LEN);
        let digest = alone[0].stored_digest(&mut scratch).unwrap();
        assert!(check.verifies(&digest, &seal.0));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    const NOTES: Migrations = Migrations {
        component: "notes",
        dir: "-",
        steps: &[(
            1,
            "notes",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);",
        )],
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_components_reader_sees_what_was_committed_while_its_writer_is_mid_transaction() {
        let dir = std::env::temp_dir().join(format!("trellis-component-{}", Uuid::now_v7()));
        let store = SqliteStore::open(&dir).await.unwrap();
        let component = ComponentConnection::open(store.path(), NOTES)
            .await
            .unwrap()
            .with_readers(2)
            .await
            .unwrap();
        component
            .call(|conn| {
                conn.execute("INSERT INTO notes (id, text) VALUES (1, 'committed')", [])?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        // The writer changes the row and holds its transaction open until told.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (changed, has_changed) = tokio::sync::oneshot::channel();
        let writer = {
            let component = component.clone();
            tokio::spawn(async move {
                component
                    .call(move |conn| {
                        let tx = conn
                            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        tx.execute("UPDATE notes SET text = 'uncommitted' WHERE id = 1", [])?;
                        let _ = changed.send(());
                        let _ = held.recv_timeout(std::time::Duration::from_secs(30));
                        tx.commit()?;
                        Ok::<_, Error>(())
                    })
                    .await
            })
        };
        has_changed.await.unwrap();
        let read = || {
            component.read(|conn| {
                Ok::<String, Error>(conn.query_row(
                    "SELECT text FROM notes WHERE id = 1",
                    [],
                    |r| r.get(0),
                )?)
            })
        };
        let seen = tokio::time::timeout(std::time::Duration::from_secs(10), read()).await;
        assert!(seen.is_ok(), "the read waited for the writer's transaction");
        assert_eq!(seen.unwrap().unwrap(), "committed");
        release.send(()).unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(read().await.unwrap(), "uncommitted");
        drop((component, store));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The tree is written many rows to a statement (through `unflushed`):
    /// every leaf and node is stored (a tree loaded again has the same
    /// root), and the writer is left flushing every commit.
    #[tokio::test]
    async fn the_tree_grows_in_multi_row_writes_and_leaves_the_writer_flushing_every_commit() {
        use crate::tree::TreeBuilder;
        let dir = std::env::temp_dir().join(format!("trellis-tree-rows-{}", Uuid::now_v7()));
        let store = SqliteStore::open(&dir).await.unwrap();
        let stream = StreamId::for_entity("rep", Uuid::now_v7()).unwrap();
        // More than a statement's rows, and not a multiple of them.
        let events: Vec<NewEvent> = (0..300)
            .map(|n| NewEvent::new("Noted", 1, serde_json::json!({"n": n}), chrono::Utc::now()))
            .collect();
        let meta = CommandMeta::new("test", chrono::Utc::now());
        store
            .append(&stream, ExpectedVersion::Exact(0), &meta, &events)
            .await
            .unwrap();
        store
            .inner
            .writer
            .lock()
            .unwrap()
            .pragma_update(None, "synchronous", "EXTRA")
            .unwrap();
        let mut builder = TreeBuilder::load(&store).await.unwrap();
        assert_eq!(builder.catch_up(&store).await.unwrap(), 300);
        let synchronous: i64 = store
            .inner
            .writer
            .lock()
            .unwrap()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL again after the tree's write");
        let loaded = TreeBuilder::load(&store).await.unwrap();
        assert_eq!((loaded.size(), loaded.root()), (300, builder.root()));
        let leaves = store.tree_leaf_range(0, 1_000).await.unwrap();
        let positions: Vec<u64> = leaves.iter().map(|(_, position, _)| *position).collect();
        assert_eq!(positions, (1..=300).collect::<Vec<u64>>());
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A new person's key is committed without a flush of its own, and the
    /// log's commits are flushed again afterwards, even when the key's
    /// write failed.
    #[tokio::test]
    async fn a_new_persons_key_is_not_flushed_alone_and_the_writer_flushes_again_after() {
        use crate::vault::{KeyState, KeyStore};
        let dir = std::env::temp_dir().join(format!("trellis-unflushed-{}", Uuid::now_v7()));
        let store = SqliteStore::open(&dir).await.unwrap();
        let synchronous = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        let writer = || store.inner.writer.lock().unwrap();
        assert_eq!(
            synchronous(&writer()),
            2,
            "the log flushes every commit (FULL)"
        );

        let during = unflushed(&mut writer(), |conn| Ok(synchronous(conn))).unwrap();
        assert_eq!(during, 1, "NORMAL: written to the WAL, not flushed");
        assert_eq!(synchronous(&writer()), 2);
        let failed: Result<(), Error> =
            unflushed(&mut writer(), |_| Err(Error::Internal("refused".into())));
        assert!(failed.is_err());
        assert_eq!(synchronous(&writer()), 2, "FULL again after a failure");

        // Making a key goes through `unflushed`: from any other level
        // (EXTRA here), the writer is left at FULL.
        writer()
            .pragma_update(None, "synchronous", "EXTRA")
            .unwrap();
        let person = Uuid::now_v7();
        let made = store.data_keys(&[person], true).await.unwrap();
        assert!(matches!(made.get(&person), Some(KeyState::Live(_))));
        assert_eq!(
            synchronous(&writer()),
            2,
            "making a key went through `unflushed`, which put FULL back"
        );
        let again = store.data_keys(&[person], false).await.unwrap();
        assert_eq!(again.get(&person), made.get(&person), "the key was kept");
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
