//! `verify` (PostgreSQL): how long checking the log takes, against the raw
//! ordered scan of the same rows.
//!
//! The log is filled to `--events` events through a store that seals every
//! event (as `trellis serve` runs), the Merkle tree is integrated behind it
//! (timed: `tree_integrate`), and one checkpoint is signed. Then, each
//! against the raw scan of `bench_raw.events` (a copy of the log):
//! - `verify_chains`: `trellis_eventstore::verify`, every stream's chain;
//! - `verify_tree_seals`: `tree::verify_checkpoints`, the tree recomputed
//!   from the events against the checkpoint and every event's seal checked.
//!
//! A review packet's evidence (300 events of one stream) is gathered and
//! verified with no database; `latency_ms:` gives both times.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use trellis_eventstore::EventStore;
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::tree::{TreeBuilder, verify_checkpoints};

use crate::baseline::BenchDatabase;
use crate::workload::{self, Report, Tally};

pub async fn run(db: &BenchDatabase, events: u64, page: usize, report: &mut Report) -> Result<()> {
    let key = workload::bench_key()?;
    let store: Arc<dyn EventStore> = Arc::new(
        PostgresStore::connect(&PostgresConfig {
            url: db.conninfo(),
            pool_size: 16,
        })
        .await
        .context("failed to open the PostgreSQL event store")?
        .sealing_with(key.clone()),
    );
    let filled = workload::fill(
        store.clone(),
        "fill postgres (sealed)",
        events,
        4,
        5000,
        250,
    )
    .await?;
    eprintln!(
        "filled {} sealed events in {:.1} s ({:.0} events/s)",
        filled.events,
        filled.elapsed.as_secs_f64(),
        filled.rate()
    );

    let start = Instant::now();
    let mut builder = TreeBuilder::load(&*store).await?;
    while builder.catch_up(&*store).await? < events {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let integrated = Tally {
        events: builder.size(),
        elapsed: start.elapsed(),
    };
    println!(
        "tree_integrate   trellis  {:>9.0} events/s {:>9} events in {:>6.2} s  TreeBuilder::catch_up",
        integrated.rate(),
        integrated.events,
        integrated.elapsed.as_secs_f64()
    );
    let checkpoint = builder
        .sign(&*store, &key, "trellis.bench/log", chrono::Utc::now())
        .await?;

    let admin = db.connect().await?;
    admin
        .batch_execute(
            "CREATE SCHEMA bench_raw; \
             CREATE TABLE bench_raw.events (LIKE trellis.events INCLUDING ALL); \
             INSERT INTO bench_raw.events OVERRIDING SYSTEM VALUE SELECT * FROM trellis.events",
        )
        .await
        .context("failed to copy the log into the baseline table")?;
    // VACUUM cannot run in the implicit transaction of a multi-statement batch.
    admin.batch_execute("VACUUM ANALYZE trellis.events").await?;
    admin
        .batch_execute("VACUUM ANALYZE bench_raw.events")
        .await?;
    let pool = crate::pg::raw_pool(db)?;
    // Warm both, then time.
    crate::pg::raw_read_all(&pool, page).await?;
    let raw = crate::pg::raw_read_all(&pool, page).await?;

    let start = Instant::now();
    let chains = trellis_eventstore::verify(&*store, page).await?;
    anyhow::ensure!(
        chains.is_intact(),
        "the bench log does not verify: {chains:?}"
    );
    let chains_tally = Tally {
        events: chains.events,
        elapsed: start.elapsed(),
    };
    report.record(
        "verify_chains",
        "raw ordered scan of the same rows",
        raw,
        "trellis_eventstore::verify (every stream's chain)",
        chains_tally,
    );

    let raw = crate::pg::raw_read_all(&pool, page).await?;
    let start = Instant::now();
    let tree = verify_checkpoints(
        &*store,
        std::slice::from_ref(&checkpoint),
        &[key.verifier()],
        None,
        page,
    )
    .await?;
    anyhow::ensure!(
        tree.is_intact(),
        "the bench log does not extend its checkpoint"
    );
    anyhow::ensure!(tree.sealed == tree.log_size, "every bench event is sealed");
    let tree_tally = Tally {
        events: tree.log_size,
        elapsed: start.elapsed(),
    };
    report.record(
        "verify_tree_seals",
        "raw ordered scan of the same rows",
        raw,
        "tree::verify_checkpoints (tree, checkpoint and every seal)",
        tree_tally,
    );
    println!(
        "a full audit (`trellis audit verify --checkpoints … --public-key …`) of {} events: {:.1} s",
        tree.log_size,
        chains_tally.elapsed.as_secs_f64() + tree_tally.elapsed.as_secs_f64()
    );

    // A packet's evidence: 300 events of one stream.
    let stream = store
        .scan_streams(None, 1)
        .await?
        .pop()
        .context("the log is empty")?
        .stream_id;
    let events = store.read_stream(&stream, 0, 300).await?;
    let refs: Vec<_> = events.iter().collect();
    let start = Instant::now();
    let evidence = trellis_eventstore::evidence::gather(&*store, &refs)
        .await?
        .context("no checkpoint to gather evidence against")?;
    let gathered = start.elapsed();
    let start = Instant::now();
    trellis_eventstore::evidence::verify(&evidence, &[key.verifier()])
        .map_err(anyhow::Error::msg)?;
    let verified = start.elapsed();
    println!(
        "packet evidence: {} events, gathered in {:.1} ms, verified offline in {:.1} ms",
        evidence.events.len(),
        gathered.as_secs_f64() * 1e3,
        verified.as_secs_f64() * 1e3
    );
    report.latency("evidence_gather", gathered.as_secs_f64() * 1e3);
    report.latency("evidence_verify", verified.as_secs_f64() * 1e3);
    Ok(())
}
