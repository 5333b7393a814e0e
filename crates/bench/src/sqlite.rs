//! The embedded measurements: `SqliteStore` against plain rusqlite statements
//! on a second file in the same directory, with the same table and pragmas.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::DateTime;
use rusqlite::{Connection, params};
use trellis_eventstore::sqlite::{FILE_NAME, SqliteStore};
use trellis_eventstore::{EventStore, GroupCommit, GroupCommitConfig, GroupCommitStats};
use uuid::Uuid;

use crate::workload::{
    self, ACTOR, EVENT_TYPE, RawEvent, RawMeta, RawRow, Report, Rng, SCHEMA_VERSION,
    STREAMS_PER_WRITER, Tally,
};
use crate::{Plan, ROUNDS};

/// `events` as crates/eventstore/migrations/sqlite/0001_events.sql creates
/// it, without the append-only triggers (and without `commands`).
const RAW_TABLE: &str = "CREATE TABLE events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    command_id      TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    occurred_at     INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    UNIQUE (stream_id, stream_version)
)";

const RAW_COLUMNS: &str = "global_position, event_id, stream_id, stream_version, event_type, \
    schema_version, payload, actor, command_id, correlation_id, causation_id, occurred_at, \
    recorded_at, prev_hash, hash";

/// The baseline file: one writer and one reader connection, each behind a
/// mutex and used from tokio's blocking pool, as the store does.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

/// The pragmas `SqliteStore` sets on every connection.
fn open(path: &Path) -> Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

impl Raw {
    /// A fresh baseline file at `path`, with its table.
    pub(crate) async fn create(path: &Path) -> Result<Raw> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let writer = open(&path)?;
            writer.execute_batch(RAW_TABLE)?;
            let reader = open(&path)?;
            anyhow::Ok(Raw {
                writer: Arc::new(Mutex::new(writer)),
                reader: Arc::new(Mutex::new(reader)),
            })
        })
        .await?
    }
}

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the planned embedded measurements in `dir` (which must be empty).
pub async fn run(dir: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let store_dir = dir.join("trellis");
    let plain = SqliteStore::open(&store_dir)
        .await
        .context("failed to open the embedded event store")?;
    let store: Arc<dyn EventStore> = Arc::new(plain.clone());
    let raw = Raw::create(&dir.join("raw.db")).await?;
    if plan.append {
        append(&store, &plain, &raw, plan.seconds, report).await?;
    }
    if plan.read_all {
        let private = workload::private(store.clone(), Arc::new(plain.clone()));
        read_all(
            &store,
            &private,
            &raw,
            store_dir.join(FILE_NAME),
            plan.sqlite_events,
            plan.page,
            report,
        )
        .await?;
    }
    Ok(())
}

async fn append(
    store: &Arc<dyn EventStore>,
    plain: &SqliteStore,
    raw: &Raw,
    seconds: Duration,
    report: &mut Report,
) -> Result<()> {
    let slice = seconds / ROUNDS as u32;
    // Each command committed alone, as before group commit.
    let writer = |deadline, per_append| raw_writer(raw.clone(), deadline, per_append);
    workload::append_scenario(
        report,
        "sqlite_append_8w_alone",
        (8, 1),
        slice,
        "raw single-row autocommit INSERT",
        writer,
        "SqliteStore::append, 1 event, Exact version, one commit per command",
        store,
    )
    .await?;
    // As `trellis serve` appends: through group commit.
    let plain_group = GroupCommit::new(store.clone(), GroupCommitConfig::single_writer());
    let mut seen = GroupCommitStats::default();
    let grouped: Arc<dyn EventStore> = Arc::new(plain_group.clone());
    let store = &grouped;
    for (name, writers, per_append, baseline_what) in [
        ("sqlite_append_1w", 1, 1, "raw single-row autocommit INSERT"),
        ("sqlite_append_8w", 8, 1, "raw single-row autocommit INSERT"),
    ] {
        let writer = |deadline, per_append| raw_writer(raw.clone(), deadline, per_append);
        workload::append_scenario(
            report,
            name,
            (writers, per_append),
            slice,
            baseline_what,
            writer,
            "SqliteStore through GroupCommit",
            store,
        )
        .await?;
        batches(name, &plain_group, &mut seen);
    }
    // The same with every event sealed and the tree signed behind the
    // appends, as `trellis serve` runs: compare with the plain lines above.
    let key = workload::bench_key()?;
    let sealed_group = GroupCommit::new(
        Arc::new(plain.clone().sealing_with(key.clone())),
        GroupCommitConfig::single_writer(),
    );
    let sealed: Arc<dyn EventStore> = Arc::new(sealed_group.clone());
    seen = GroupCommitStats::default();
    let signer = workload::Signer::start(sealed.clone(), key).await?;
    for (name, writers) in [
        ("sqlite_append_1w_sealed", 1),
        ("sqlite_append_8w_sealed", 8),
    ] {
        let writer = |deadline, per_append| raw_writer(raw.clone(), deadline, per_append);
        workload::append_scenario(
            report,
            name,
            (writers, 1),
            slice,
            "raw single-row autocommit INSERT",
            writer,
            "SqliteStore sealing, through GroupCommit, tree signed every 1,000 events",
            &sealed,
        )
        .await?;
        batches(name, &sealed_group, &mut seen);
    }
    signer.stop().await;
    // Everything on, as `trellis serve` runs: compare with the plain lines.
    let key = workload::bench_key()?;
    let sealed: Arc<dyn EventStore> = Arc::new(plain.clone().sealing_with(key.clone()));
    // As `trellis serve` composes them: the vault encrypts before a command
    // queues for its batch.
    let private_group = GroupCommit::new(sealed.clone(), GroupCommitConfig::single_writer());
    let private = workload::private(Arc::new(private_group.clone()), Arc::new(plain.clone()));
    seen = GroupCommitStats::default();
    // As serve's checkpoint worker: the tree reads the log as stored.
    let signer = workload::Signer::start(sealed.clone(), key.clone()).await?;
    for (name, writers) in [
        ("sqlite_append_1w_private", 1),
        ("sqlite_append_8w_private", 8),
    ] {
        let writer = |deadline, per_append| raw_writer(raw.clone(), deadline, per_append);
        workload::append_scenario(
            report,
            name,
            (writers, 1),
            slice,
            "raw single-row autocommit INSERT",
            writer,
            "SqliteStore sealing and encrypting personal data, through GroupCommit, tree signed",
            &private,
        )
        .await?;
        batches(name, &private_group, &mut seen);
    }
    signer.stop().await;
    for (name, writers) in [
        ("sqlite_append_1w_on_off", 1),
        ("sqlite_append_8w_on_off", 8),
    ] {
        workload::on_off_scenario(
            report,
            name,
            writers,
            slice,
            ("SqliteStore through GroupCommit", store),
            (
                "SqliteStore sealing and encrypting, through GroupCommit, tree signed",
                &private,
            ),
            (&sealed, &key),
        )
        .await?;
    }
    // Last: its million events would leave the lines after it measuring a
    // larger file than the plain lines they are compared with.
    let writer = |deadline, per_append| raw_writer(raw.clone(), deadline, per_append);
    workload::append_scenario(
        report,
        "sqlite_batch_100",
        (1, 100),
        slice,
        "raw 100 INSERTs in one transaction",
        writer,
        "SqliteStore through GroupCommit",
        &grouped,
    )
    .await?;
    Ok(())
}

/// How a scenario's commands were grouped (`seen`: the group's counts
/// before it): the commands per commit are what group commit gives the one
/// writer, so a line that differs from another in them differs in its
/// batches, not in each commit's work.
pub(crate) fn batches(name: &str, group: &GroupCommit, seen: &mut GroupCommitStats) {
    let now = group.stats();
    let (commands, batches) = (now.commands - seen.commands, now.batches - seen.batches);
    println!(
        "{name} batches  {:.2} commands per commit ({commands} commands in {batches} commits)",
        commands as f64 / batches.max(1) as f64
    );
    *seen = now;
}

/// The baseline writer: the same rows through a cached prepared INSERT, one
/// autocommit statement per event, or `per_append` in one transaction.
pub(crate) async fn raw_writer(raw: Raw, deadline: Instant, per_append: usize) -> Result<u64> {
    let streams: Vec<String> = workload::streams(STREAMS_PER_WRITER)?
        .into_iter()
        .map(String::from)
        .collect();
    let mut versions = vec![0i64; streams.len()];
    let mut rng = Rng::new();
    let mut written = 0u64;
    let mut next = 0;
    while Instant::now() < deadline {
        let i = next % streams.len();
        next += 1;
        let rows = workload::raw_rows(per_append, &mut versions[i], &mut rng);
        let meta = RawMeta::new();
        let stream = streams[i].clone();
        let writer = raw.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&writer);
            if rows.len() > 1 {
                let tx = conn.transaction()?;
                insert_rows(&tx, &stream, &meta, &rows)?;
                tx.commit()?;
            } else {
                insert_rows(&conn, &stream, &meta, &rows)?;
            }
            anyhow::Ok(())
        })
        .await??;
        written += per_append as u64;
    }
    Ok(written)
}

fn insert_rows(conn: &Connection, stream: &str, meta: &RawMeta, rows: &[RawRow]) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, \
         payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
         prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let command_id = meta.command_id.to_string();
    let correlation_id = meta.correlation_id.to_string();
    for row in rows {
        insert.execute(params![
            row.event_id.to_string(),
            stream,
            row.stream_version,
            EVENT_TYPE,
            i64::from(SCHEMA_VERSION),
            serde_json::to_string(&row.payload)?,
            ACTOR,
            command_id,
            correlation_id,
            None::<String>,
            row.occurred_at.timestamp_micros(),
            meta.recorded_at.timestamp_micros(),
            &row.prev_hash[..],
            &row.hash[..],
        ])?;
    }
    Ok(())
}

async fn read_all(
    store: &Arc<dyn EventStore>,
    private: &Arc<dyn EventStore>,
    raw: &Raw,
    store_file: PathBuf,
    target: u64,
    page: usize,
    report: &mut Report,
) -> Result<()> {
    let existing = {
        let reader = raw.reader.clone();
        let file = store_file.clone();
        tokio::task::spawn_blocking(move || {
            let conn = lock(&reader);
            conn.execute("ATTACH DATABASE ?1 AS t", [file.to_string_lossy()])?;
            let n: i64 = conn.query_row("SELECT count(*) FROM t.events", [], |r| r.get(0))?;
            conn.execute_batch("DETACH DATABASE t")?;
            anyhow::Ok(n)
        })
        .await??
    };
    let missing = target.saturating_sub(u64::try_from(existing).unwrap_or(0));
    if missing > 0 {
        // As `trellis serve` writes it: each note encrypted with its rep's key.
        let filled = workload::fill(private.clone(), "fill sqlite", missing, 2, 2000, 250).await?;
        eprintln!(
            "filled {} events in {:.1} s ({:.0} events/s)",
            filled.events,
            filled.elapsed.as_secs_f64(),
            filled.rate()
        );
    }
    let start = Instant::now();
    let writer = raw.writer.clone();
    tokio::task::spawn_blocking(move || {
        let conn = lock(&writer);
        conn.execute("ATTACH DATABASE ?1 AS t", [store_file.to_string_lossy()])?;
        // The baseline's columns only: the store's table has more (the
        // seal, the traceparent) than a plain table of events.
        conn.execute_batch(&format!(
            "BEGIN; DELETE FROM main.events; \
             INSERT INTO main.events ({RAW_COLUMNS}) SELECT {RAW_COLUMNS} FROM t.events; COMMIT; \
             DETACH DATABASE t; PRAGMA wal_checkpoint(TRUNCATE);"
        ))?;
        anyhow::Ok(())
    })
    .await??;
    eprintln!(
        "copied the log to the baseline file in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    workload::read_all_scenario(
        report,
        "sqlite_read_all",
        page,
        || raw_read_all(raw, page),
        "SqliteStore, the notes read as stored (encrypted)",
        store.as_ref(),
    )
    .await?;
    let ahead = trellis_eventstore::ReadAhead::new(store.clone());
    workload::read_all_scenario(
        report,
        "sqlite_read_all_ahead",
        page,
        || raw_read_all(raw, page),
        "SqliteStore reading the next page ahead, the notes read as stored (encrypted)",
        &ahead,
    )
    .await?;
    workload::read_all_scenario(
        report,
        "sqlite_read_all_private",
        page,
        || raw_read_all(raw, page),
        "SqliteStore reading ahead, through the vault, every note decrypted",
        private.as_ref(),
    )
    .await
}

/// The baseline reader: an ordered scan by primary key, `page` rows per
/// query on the blocking pool, every column decoded.
async fn raw_read_all(raw: &Raw, page: usize) -> Result<Tally> {
    let start = Instant::now();
    let limit = i64::try_from(page)?;
    let mut after = 0i64;
    let mut events = 0u64;
    loop {
        let reader = raw.reader.clone();
        let batch = tokio::task::spawn_blocking(move || {
            let conn = lock(&reader);
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {RAW_COLUMNS} FROM events WHERE global_position > ?1 \
                 ORDER BY global_position LIMIT ?2"
            ))?;
            let mut rows = statement.query(params![after, limit])?;
            let mut batch = Vec::with_capacity(page);
            while let Some(row) = rows.next()? {
                batch.push(decode(row)?);
            }
            anyhow::Ok(batch)
        })
        .await??;
        let Some(last) = batch.last() else { break };
        after = last.global_position;
        events += batch.len() as u64;
        std::hint::black_box(&batch);
    }
    Ok(Tally {
        events,
        elapsed: start.elapsed(),
    })
}

fn decode(row: &rusqlite::Row<'_>) -> Result<RawEvent> {
    let uuid = |i: usize| -> Result<Uuid> { Ok(Uuid::parse_str(row.get_ref(i)?.as_str()?)?) };
    let time = |i: usize| -> Result<_> {
        DateTime::from_timestamp_micros(row.get(i)?).context("a timestamp out of range")
    };
    let causation_id = match row.get_ref(10)?.as_str_or_null()? {
        Some(text) => Some(Uuid::parse_str(text)?),
        None => None,
    };
    Ok(RawEvent {
        global_position: row.get(0)?,
        tx_id: None,
        event_id: uuid(1)?,
        stream_id: row.get(2)?,
        stream_version: row.get(3)?,
        event_type: row.get(4)?,
        schema_version: row.get(5)?,
        payload: serde_json::from_str(row.get_ref(6)?.as_str()?)?,
        actor: row.get(7)?,
        command_id: uuid(8)?,
        correlation_id: uuid(9)?,
        causation_id,
        occurred_at: time(11)?,
        recorded_at: time(12)?,
        prev_hash: workload::hash_from(row.get_ref(13)?.as_blob()?),
        hash: workload::hash_from(row.get_ref(14)?.as_blob()?),
    })
}
