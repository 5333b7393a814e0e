//! `as-of`: latency of a rep's state as of an instant
//! (`trellis_queries::asof::state_as_of`, what `GET /v1/reps/{id}/as-of`
//! runs), for a rep with `--events` events (default 10,000) of the replay
//! mix over two years, among 1000 other reps (PostgreSQL).
//!
//! Each query replays the rep's whole stream (pages of 2000) and the
//! standards up to a random instant, alternating business and recorded
//! time, and derives the profile, with the service's stream cache (the
//! first query reads and decodes the stream; later ones read only what was
//! appended since). Also reported: the same query with nothing cached
//! (`as_of_cold_p50`, every 10th round) and, as the baseline, reading the
//! same stream with `read_stream` and nothing else. 20 warm-up rounds, then
//! 300 timed ones; p50 and p99.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{Days, Utc};
use trellis_domain::RepId;
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{EventStore, StreamId};
use trellis_projections::growth::GrowthSettings;
use trellis_queries::asof::{TimeBasis, state_as_of};
use trellis_queries::streams::StreamCache;

use crate::baseline::BenchDatabase;
use crate::replay::{RepMix, catalogue, epoch};
use crate::workload::Report;

const QUERIES: usize = 300;
const WARM_UP: usize = 20;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn read_stream(store: &dyn EventStore, rep: RepId) -> Result<usize> {
    let stream = StreamId::new(rep.stream_id())?;
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = store.read_stream(&stream, after, 2000).await?;
        let Some(last) = page.last() else {
            return Ok(n);
        };
        after = last.stream_version;
        n += page.len();
    }
}

pub async fn run(db: &BenchDatabase, events: u64, report: &mut Report) -> Result<()> {
    let store = PostgresStore::connect(&PostgresConfig {
        url: db.conninfo(),
        pool_size: 16,
    })
    .await
    .context("failed to open the PostgreSQL event store")?;
    let store: Arc<dyn EventStore> = Arc::new(store);
    let teams = catalogue(&*store, 5).await?;
    for i in 0..1000 {
        let mut other = RepMix::new(teams[i % teams.len()], 20, 730);
        other.append_next(&*store, 20).await?;
    }
    let mut rep = RepMix::new(teams[0], events, 730);
    while !rep.done() {
        rep.append_next(&*store, 1000).await?;
    }
    let rep_id = rep.rep_id;
    println!("as-of: a rep with {events} events, among 1000 reps of 20");

    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut instant = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let day = epoch() + Days::new(seed % 760);
        day.and_hms_opt(12, 0, 0).expect("a time").and_utc()
    };
    let settings = GrowthSettings::default();
    let cache = StreamCache::default();
    let mut cold = Vec::with_capacity(QUERIES);
    let mut as_of = Vec::with_capacity(QUERIES);
    let mut raw = Vec::with_capacity(QUERIES);
    for i in 0..WARM_UP + QUERIES {
        let basis = if i % 2 == 0 {
            TimeBasis::Business
        } else {
            TimeBasis::Recorded
        };
        // Recorded times are all "now": pick instants that split them too.
        let at = match basis {
            TimeBasis::Business => instant(),
            TimeBasis::Recorded => Utc::now(),
        };
        let started = Instant::now();
        let outcome = state_as_of(&*store, &cache, rep_id, at, basis, settings)
            .await
            .map_err(|e| anyhow::anyhow!("the state-as-of query failed: {e}"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(outcome.current_team.is_some(), "the rep was not found");
        let started = Instant::now();
        if i % 10 == 0 {
            // Cold: nothing cached, the whole stream read and decoded.
            state_as_of(&*store, &StreamCache::new(0), rep_id, at, basis, settings)
                .await
                .map_err(|e| anyhow::anyhow!("the state-as-of query failed: {e}"))?;
            if i >= WARM_UP {
                cold.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let started = Instant::now();
        let n = read_stream(&*store, rep_id).await?;
        let raw_ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(n as u64 == events, "read {n} events, expected {events}");
        if i >= WARM_UP {
            as_of.push(ms);
            raw.push(raw_ms);
        }
    }
    as_of.sort_by(f64::total_cmp);
    raw.sort_by(f64::total_cmp);
    cold.sort_by(f64::total_cmp);
    let cold50 = percentile(&cold, 0.5);
    let (p50, p99) = (percentile(&as_of, 0.5), percentile(&as_of, 0.99));
    let (raw50, raw99) = (percentile(&raw, 0.5), percentile(&raw, 0.99));
    println!(
        "as_of            baseline  read_stream of {events} events: p50 {raw50:.2} ms, p99 {raw99:.2} ms"
    );
    println!(
        "as_of            trellis   state as of an instant:        p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    println!("as_of            trellis   the same, nothing cached:      p50 {cold50:.2} ms");
    report.latency("as_of_p50", p50);
    report.latency("as_of_p99", p99);
    report.latency("as_of_cold_p50", cold50);
    report.latency("read_stream_p50", raw50);
    Ok(())
}
