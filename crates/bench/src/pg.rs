//! The PostgreSQL measurements: `PostgresStore` against plain statements on
//! `bench_raw.events`, a trigger-less copy of `trellis.events`, in a database
//! of the bench's own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, Row};
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore, Xid8};
use trellis_eventstore::{EventStore, GroupCommit, GroupCommitConfig};

use crate::baseline::{BenchDatabase, raw_writer};
use crate::workload::{self, RawEvent, Report, Tally};
use crate::{Plan, ROUNDS};

/// Connections in the store's pool.
const POOL_SIZE: usize = 16;

/// Connections in the baseline's pool: one per writer of `append_64w`.
const RAW_POOL_SIZE: usize = 64;

/// The columns `PostgresStore::read_all` selects, in its order.
const READ_COLUMNS: &str = "global_position, tx_id, event_id, stream_id, stream_version, \
    event_type, schema_version, payload, actor, command_id, correlation_id, causation_id, \
    occurred_at, recorded_at, prev_hash, hash";

/// Runs the planned PostgreSQL measurements in `db`.
pub async fn run(db: &BenchDatabase, plan: &Plan, report: &mut Report) -> Result<()> {
    let store = PostgresStore::connect(&PostgresConfig {
        url: db.conninfo(),
        pool_size: POOL_SIZE,
    })
    .await
    .context("failed to open the PostgreSQL event store")?;
    let admin = db.connect().await?;
    admin
        .batch_execute(
            "CREATE SCHEMA bench_raw; \
             CREATE TABLE bench_raw.events (LIKE trellis.events INCLUDING ALL)",
        )
        .await
        .context("failed to create the baseline table")?;
    let pool = raw_pool(db)?;
    let pg_store = store.clone();
    let store: Arc<dyn EventStore> = Arc::new(store);
    if plan.append {
        append(db, (&pg_store, &store), &pool, plan.seconds, report).await?;
    }
    if plan.commands || plan.import {
        let latencies =
            crate::http::run(db, &pool, plan.seconds, plan.commands, plan.import, report).await?;
        for (name, ms) in latencies {
            report.latency(&name, ms);
        }
    }
    // After the HTTP measurements: read-all copies the log into the baseline
    // table with its positions, which fresh baseline inserts would collide with.
    if plan.read_all {
        let raw_store = PostgresStore::connect(&PostgresConfig {
            url: db.conninfo(),
            pool_size: POOL_SIZE,
        })
        .await
        .context("failed to open the private PostgreSQL event store")?;
        let private = workload::private(Arc::new(raw_store.clone()), Arc::new(raw_store));
        read_all(
            &store,
            &private,
            &pool,
            &admin,
            plan.events,
            plan.page,
            report,
        )
        .await?;
    }
    Ok(())
}

async fn append(
    db: &BenchDatabase,
    (pg_store, store): (&PostgresStore, &Arc<dyn EventStore>),
    pool: &Pool,
    seconds: Duration,
    report: &mut Report,
) -> Result<()> {
    let slice = seconds / ROUNDS as u32;
    // Each command committed alone, as before group commit: the line the
    // grouped ones below are an improvement on.
    let raw = |deadline, per_append| raw_writer(pool.clone(), deadline, per_append);
    workload::append_scenario(
        report,
        "append_8w_alone",
        (8, 1),
        slice,
        "raw single-row autocommit INSERT",
        raw,
        "PostgresStore::append, 1 event, Exact version, one commit per command",
        store,
    )
    .await?;
    // As `trellis serve` appends: through group commit.
    let group = Arc::new(GroupCommit::new(
        store.clone(),
        GroupCommitConfig::default(),
    ));
    let grouped: Arc<dyn EventStore> = group.clone();
    let store = &grouped;
    let mut seen = group.stats();
    for (name, writers, per_append, baseline_what) in [
        ("append_1w", 1, 1, "raw single-row autocommit INSERT"),
        ("append_8w", 8, 1, "raw single-row autocommit INSERT"),
        (
            "append_64w",
            64,
            1,
            "raw single-row autocommit INSERT, 64 connections",
        ),
    ] {
        let raw = |deadline, per_append| raw_writer(pool.clone(), deadline, per_append);
        workload::append_scenario(
            report,
            name,
            (writers, per_append),
            slice,
            baseline_what,
            raw,
            "PostgresStore through GroupCommit",
            store,
        )
        .await?;
        crate::sqlite::batches(name, &group, &mut seen);
    }
    // The same with every event sealed and the tree signed behind the
    // appends, as `trellis serve` runs: compare with the plain lines above.
    let key = workload::bench_key()?;
    let sealed: Arc<dyn EventStore> = Arc::new(
        PostgresStore::connect(&PostgresConfig {
            url: db.conninfo(),
            pool_size: POOL_SIZE,
        })
        .await
        .context("failed to open the sealed PostgreSQL event store")?
        .sealing_with(key.clone()),
    );
    let sealed: Arc<dyn EventStore> =
        Arc::new(GroupCommit::new(sealed, GroupCommitConfig::default()));
    let signer = workload::Signer::start(sealed.clone(), key).await?;
    for (name, writers) in [("append_1w_sealed", 1), ("append_8w_sealed", 8)] {
        let raw = |deadline, per_append| raw_writer(pool.clone(), deadline, per_append);
        workload::append_scenario(
            report,
            name,
            (writers, 1),
            slice,
            "raw single-row autocommit INSERT",
            raw,
            "PostgresStore sealing, through GroupCommit, tree signed every 1,000 events",
            &sealed,
        )
        .await?;
    }
    signer.stop().await;
    // Everything on, as `trellis serve` runs: sealed, signed, and each
    // event's note encrypted with its rep's key. Compare with `append_1w`
    // and `append_8w` (everything off).
    let raw_store = PostgresStore::connect(&PostgresConfig {
        url: db.conninfo(),
        pool_size: POOL_SIZE,
    })
    .await
    .context("failed to open the private PostgreSQL event store")?;
    let key = workload::bench_key()?;
    let sealed: Arc<dyn EventStore> = Arc::new(raw_store.clone().sealing_with(key.clone()));
    // As `trellis serve` composes them: the vault encrypts before a command
    // queues for its batch.
    let private = workload::private(
        Arc::new(GroupCommit::new(
            sealed.clone(),
            GroupCommitConfig::default(),
        )),
        Arc::new(raw_store),
    );
    // As serve's checkpoint worker: the tree reads the log as stored.
    let signer = workload::Signer::start(sealed.clone(), key.clone()).await?;
    for (name, writers) in [("append_1w_private", 1), ("append_8w_private", 8)] {
        let raw = |deadline, per_append| raw_writer(pool.clone(), deadline, per_append);
        workload::append_scenario(
            report,
            name,
            (writers, 1),
            slice,
            "raw single-row autocommit INSERT",
            raw,
            "PostgresStore sealing and encrypting personal data, through GroupCommit, tree signed",
            &private,
        )
        .await?;
    }
    signer.stop().await;
    // Everything on against everything off on one pool, the plain lines'
    // (see `on_off_scenario`).
    let sealed: Arc<dyn EventStore> = Arc::new(pg_store.clone().sealing_with(key.clone()));
    let private = workload::private(
        Arc::new(GroupCommit::new(
            sealed.clone(),
            GroupCommitConfig::default(),
        )),
        Arc::new(pg_store.clone()),
    );
    for (name, writers) in [("append_1w_on_off", 1), ("append_8w_on_off", 8)] {
        workload::on_off_scenario(
            report,
            name,
            writers,
            slice,
            ("PostgresStore through GroupCommit", store),
            (
                "PostgresStore sealing and encrypting, through GroupCommit, tree signed",
                &private,
            ),
            (&sealed, &key),
        )
        .await?;
    }
    // Last: the rows it adds would leave the lines after it measuring a
    // larger table than the plain lines they are compared with.
    let raw = |deadline, per_append| raw_writer(pool.clone(), deadline, per_append);
    workload::append_scenario(
        report,
        "batch_100",
        (1, 100),
        slice,
        "raw 100-row INSERT ... SELECT unnest",
        raw,
        "PostgresStore through GroupCommit",
        &grouped,
    )
    .await?;
    Ok(())
}

async fn read_all(
    store: &Arc<dyn EventStore>,
    private: &Arc<dyn EventStore>,
    pool: &Pool,
    admin: &Client,
    target: u64,
    page: usize,
    report: &mut Report,
) -> Result<()> {
    // Earlier measurements may have written to the log already; top it up.
    let existing: i64 = admin
        .query_one("SELECT count(*) FROM trellis.events", &[])
        .await?
        .get(0);
    let missing = target.saturating_sub(u64::try_from(existing).unwrap_or(0));
    if missing > 0 {
        // As `trellis serve` writes it: each note encrypted with its rep's key.
        let filled =
            workload::fill(private.clone(), "fill postgres", missing, 4, 5000, 250).await?;
        eprintln!(
            "filled {} events in {:.1} s ({:.0} events/s)",
            filled.events,
            filled.elapsed.as_secs_f64(),
            filled.rate()
        );
    }
    let start = Instant::now();
    admin
        .batch_execute(
            "TRUNCATE bench_raw.events; \
             INSERT INTO bench_raw.events OVERRIDING SYSTEM VALUE SELECT * FROM trellis.events",
        )
        .await
        .context("failed to copy the log into the baseline table")?;
    admin.batch_execute("VACUUM ANALYZE trellis.events").await?;
    admin
        .batch_execute("VACUUM ANALYZE bench_raw.events")
        .await?;
    eprintln!(
        "copied the log to bench_raw.events and vacuumed both in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    workload::read_all_scenario(
        report,
        "read_all",
        page,
        || raw_read_all(pool, page),
        "PostgresStore, the notes read as stored (encrypted)",
        store.as_ref(),
    )
    .await?;
    let ahead = trellis_eventstore::ReadAhead::new(store.clone());
    workload::read_all_scenario(
        report,
        "read_all_ahead",
        page,
        || raw_read_all(pool, page),
        "PostgresStore reading the next page ahead, the notes read as stored (encrypted)",
        &ahead,
    )
    .await?;
    workload::read_all_scenario(
        report,
        "read_all_private",
        page,
        || raw_read_all(pool, page),
        "PostgresStore reading ahead, through the vault, every note decrypted",
        private.as_ref(),
    )
    .await
}

/// The baseline reader: an ordered scan of `bench_raw.events` by primary
/// key, `page` rows per query, every column decoded.
pub(crate) async fn raw_read_all(pool: &Pool, page: usize) -> Result<Tally> {
    let start = Instant::now();
    let limit = i64::try_from(page)?;
    let mut after = 0i64;
    let mut events = 0u64;
    loop {
        let client = pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {READ_COLUMNS} FROM bench_raw.events WHERE global_position > $1 \
                 ORDER BY global_position LIMIT $2"
            ))
            .await?;
        let rows = client.query(&statement, &[&after, &limit]).await?;
        drop(client);
        let batch = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
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

fn decode(row: &Row) -> Result<RawEvent> {
    let schema_version: i32 = row.try_get(6)?;
    let prev_hash: &[u8] = row.try_get(14)?;
    let hash: &[u8] = row.try_get(15)?;
    Ok(RawEvent {
        global_position: row.try_get(0)?,
        tx_id: Some(row.try_get::<_, Xid8>(1)?.0),
        event_id: row.try_get(2)?,
        stream_id: row.try_get(3)?,
        stream_version: row.try_get(4)?,
        event_type: row.try_get(5)?,
        schema_version: i64::from(schema_version),
        payload: row.try_get(7)?,
        actor: row.try_get(8)?,
        command_id: row.try_get(9)?,
        correlation_id: row.try_get(10)?,
        causation_id: row.try_get(11)?,
        occurred_at: row.try_get(12)?,
        recorded_at: row.try_get(13)?,
        prev_hash: workload::hash_from(prev_hash),
        hash: workload::hash_from(hash),
    })
}

/// The baseline's pool: plain statements over the same transport as the
/// store's connections (see [`BenchDatabase`]).
pub(crate) fn raw_pool(db: &BenchDatabase) -> Result<Pool> {
    let manager = Manager::from_config(
        db.config.clone(),
        db.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(RAW_POOL_SIZE)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("failed to build the baseline pool")
}
