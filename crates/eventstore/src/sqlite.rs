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
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::watch;
use uuid::Uuid;

use crate::chain::{DigestInput, canonical_json, link};
use crate::types::to_micros_precision;
use crate::{
    AppendOutcome, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Hash, Metadata,
    NewEvent, RecordedEvent, StreamId, StreamWrite, derived_command_id, validate_append,
    validate_many,
};

/// The file name inside the data directory.
pub const FILE_NAME: &str = "trellis.db";

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_events.sql"),
    include_str!("../migrations/sqlite/0002_subscriber_checkpoints.sql"),
];

const COLUMNS: &str = "global_position, event_id, stream_id, stream_version, event_type, \
    schema_version, payload, actor, command_id, correlation_id, causation_id, occurred_at, \
    recorded_at, prev_hash, hash";

/// The embedded event store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    appended: watch::Sender<u64>,
}

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
        migrate(&mut writer)?;
        let reader = open_connection(&path)?;
        let (appended, _) = watch::channel(0);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                appended,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
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

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("an embedded store read panicked: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now < version {
            tx.execute_batch(sql).map_err(|e| {
                Error::Internal(format!("embedded migration {version} failed: {e}"))
            })?;
            tx.pragma_update(None, "user_version", version)?;
        }
        tx.commit()?;
    }
    Ok(())
}

/// The embedded file, opened by a component that keeps its own tables beside
/// the log (the read models, the webhooks): one connection of its own with
/// the log's pragmas, its migrations applied, and blocking calls run on
/// tokio's blocking pool.
#[derive(Clone)]
pub struct ComponentConnection {
    component: &'static str,
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
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
    /// (see [`migrate_component`]).
    pub async fn open(
        path: impl AsRef<Path>,
        component: &'static str,
        migrations: &'static [(i64, &'static str)],
    ) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let opened = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, Error> {
            let mut conn = open_connection(&opened)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrate_component(&mut conn, component, migrations)?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::Internal(format!("opening the {component} tables panicked: {e}")))??;
        Ok(ComponentConnection {
            component,
            path,
            conn: Arc::new(Mutex::new(conn)),
        })
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
}

/// Applies a component's migrations (a crate that keeps its own tables in the
/// embedded file, e.g. the read models or the webhooks): each in its own
/// immediate transaction, recorded in `<component>_migrations`. `component`
/// is a lowercase identifier chosen by the caller (never user input).
pub fn migrate_component(
    conn: &mut Connection,
    component: &str,
    migrations: &[(i64, &str)],
) -> Result<(), Error> {
    crate::types::check_component_name(component)?;
    let table = format!("{component}_migrations");
    for (version, sql) in migrations {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} ( \
                 version INTEGER PRIMARY KEY, \
                 applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
        ))?;
        let applied = tx
            .query_row(
                &format!("SELECT 1 FROM {table} WHERE version = ?1"),
                [version],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !applied {
            tx.execute_batch(sql).map_err(|e| {
                Error::Internal(format!("{component} migration {version} failed: {e}"))
            })?;
            tx.execute(
                &format!("INSERT INTO {table} (version) VALUES (?1)"),
                [version],
            )?;
        }
        tx.commit()?;
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

fn micros_to_time(micros: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::Internal(format!("the log holds an invalid timestamp {micros}")))
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
        },
        prev_hash: Hash::from_slice(&prev_hash).ok_or_else(|| bad("hash"))?,
        hash: Hash::from_slice(&hash).ok_or_else(|| bad("hash"))?,
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

fn to_i64(value: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidInput(format!("{what} {value} is too large for the log")))
}

fn limit(max: usize) -> i64 {
    i64::try_from(max.clamp(1, 100_000)).unwrap_or(100_000)
}

fn append_blocking(
    conn: &mut Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    meta: &CommandMeta,
    events: &[NewEvent],
) -> Result<AppendOutcome, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcome = append_in(&tx, stream, expected, meta, meta.command_id, events)?;
    tx.commit()?;
    Ok(outcome)
}

fn append_many_blocking(
    conn: &mut Connection,
    meta: &CommandMeta,
    writes: &[StreamWrite],
) -> Result<Vec<AppendOutcome>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let outcomes = writes
        .iter()
        .map(|w| {
            let command_id = derived_command_id(meta.command_id, &w.stream);
            append_in(&tx, &w.stream, w.expected, meta, command_id, &w.events)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Dropping `tx` on an error above rolls everything back.
    tx.commit()?;
    Ok(outcomes)
}

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

/// One stream's append inside the caller's write transaction.
fn append_in(
    tx: &rusqlite::Transaction<'_>,
    stream: &StreamId,
    expected: ExpectedVersion,
    meta: &CommandMeta,
    command_uuid: Uuid,
    events: &[NewEvent],
) -> Result<AppendOutcome, Error> {
    let command_id = &command_uuid.to_string();
    if let Some(outcome) = recorded_command_in(tx, command_id)? {
        return Ok(outcome);
    }
    let head = tx
        .prepare_cached(
            "SELECT stream_version, hash FROM events WHERE stream_id = ?1 \
             ORDER BY stream_version DESC LIMIT 1",
        )?
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
    let mut scratch = Vec::with_capacity(512);
    let mut payload_text = Vec::with_capacity(256);
    let mut first_position = 0;
    let mut last_position = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, \
             payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
             prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for (i, event) in events.iter().enumerate() {
            let version = head_version + 1 + i as u64;
            let occurred = to_micros_precision(event.occurred_at);
            let digest = DigestInput {
                command_id: command_uuid,
                occurred_at_micros: occurred.timestamp_micros(),
                ..DigestInput::of_new(stream, meta, event)
            }
            .digest(&mut scratch);
            let hash = link(&prev, version, &digest);
            payload_text.clear();
            canonical_json(&event.payload, &mut payload_text);
            let payload = std::str::from_utf8(&payload_text)
                .map_err(|_| Error::Internal("canonical JSON was not UTF-8".into()))?;
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
        let stream = stream.clone();
        let meta = CommandMeta {
            recorded_at: to_micros_precision(meta.recorded_at),
            ..meta.clone()
        };
        let events = events.to_vec();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            append_blocking(&mut conn, &stream, expected, &meta, &events)
        })
        .await
        .map_err(|e| Error::Internal(format!("an embedded append panicked: {e}")))??;
        if !outcome.replayed {
            self.inner.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(outcome)
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
        let meta = CommandMeta {
            recorded_at: to_micros_precision(meta.recorded_at),
            ..meta.clone()
        };
        let writes = writes.to_vec();
        let outcomes = tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            append_many_blocking(&mut conn, &meta, &writes)
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
}
