//! The PostgreSQL measurements: `PostgresStore` against plain statements on
//! `bench_raw.events`, a trigger-less copy of `trellis.events`, in a database
//! of the bench's own.

use std::error::Error as StdError;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, Row};
use trellis_eventstore::EventStore;
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use uuid::Uuid;

use crate::workload::{
    self, ACTOR, EVENT_TYPE, RawEvent, RawMeta, Report, Rng, SCHEMA_VERSION, STREAMS_PER_WRITER,
    Tally,
};
use crate::{Plan, ROUNDS};

/// Connections in both pools (the store's and the baseline's).
const POOL_SIZE: usize = 16;

const RAW_COLUMNS: &str = "event_id, stream_id, stream_version, event_type, schema_version, \
    payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
    prev_hash, hash";

/// The columns `PostgresStore::read_all` selects, in its order.
const READ_COLUMNS: &str = "global_position, tx_id, event_id, stream_id, stream_version, \
    event_type, schema_version, payload, actor, command_id, correlation_id, causation_id, \
    occurred_at, recorded_at, prev_hash, hash";

/// A database of the bench's own, `trellis_bench_<uuid>`, on the given server.
#[derive(Debug)]
pub struct BenchDatabase {
    admin: tokio_postgres::Config,
    name: String,
    config: tokio_postgres::Config,
}

impl BenchDatabase {
    pub async fn create(admin_url: &str) -> Result<Self> {
        let admin = tokio_postgres::Config::from_str(admin_url)
            .context("the database URL is not valid (expected postgres://user@host:port/db)")?;
        let name = format!("trellis_bench_{}", Uuid::now_v7().simple());
        connect(&admin)
            .await
            .context("failed to reach the PostgreSQL server")?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("failed to create database {name}"))?;
        let mut config = admin.clone();
        config.dbname(&name);
        Ok(BenchDatabase {
            admin,
            name,
            config,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, best effort: a failure is reported, not returned.
    pub async fn drop_now(self) {
        let dropped = async {
            connect(&self.admin)
                .await?
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("warning: failed to drop database {}: {e:#}", self.name);
        }
    }

    /// A key/value connection string for `PostgresConfig` (which takes text).
    pub fn conninfo(&self) -> String {
        use tokio_postgres::config::Host;
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut parts = Vec::new();
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            parts.push(format!("host={}", quote(&hosts.join(","))));
        }
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            parts.push(format!("port={}", ports.join(",")));
        }
        if let Some(user) = self.config.get_user() {
            parts.push(format!("user={}", quote(user)));
        }
        if let Some(password) = self.config.get_password() {
            parts.push(format!(
                "password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
        parts.push(format!("dbname={}", quote(&self.name)));
        parts.join(" ")
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs the planned PostgreSQL measurements in `db`.
pub async fn run(db: &BenchDatabase, plan: &Plan, report: &mut Report) -> Result<()> {
    let store = PostgresStore::connect(&PostgresConfig {
        url: db.conninfo(),
        pool_size: POOL_SIZE,
    })
    .await
    .context("failed to open the PostgreSQL event store")?;
    let admin = connect(&db.config).await?;
    admin
        .batch_execute(
            "CREATE SCHEMA bench_raw; \
             CREATE TABLE bench_raw.events (LIKE trellis.events INCLUDING ALL)",
        )
        .await
        .context("failed to create the baseline table")?;
    let manager = Manager::from_config(
        db.config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("failed to build the baseline pool")?;
    let store: Arc<dyn EventStore> = Arc::new(store);
    if plan.append {
        append(&store, &pool, plan.seconds, report).await?;
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
        read_all(&store, &pool, &admin, plan.events, plan.page, report).await?;
    }
    Ok(())
}

async fn append(
    store: &Arc<dyn EventStore>,
    pool: &Pool,
    seconds: Duration,
    report: &mut Report,
) -> Result<()> {
    let slice = seconds / ROUNDS as u32;
    for (name, writers, per_append, baseline_what) in [
        ("append_1w", 1, 1, "raw single-row autocommit INSERT"),
        ("append_8w", 8, 1, "raw single-row autocommit INSERT"),
        ("batch_100", 1, 100, "raw 100-row INSERT ... SELECT unnest"),
    ] {
        let (base, scen) = workload::alternate(
            ROUNDS,
            || {
                workload::time_boxed(writers, slice, |deadline| {
                    raw_writer(pool.clone(), deadline, per_append)
                })
            },
            || {
                workload::time_boxed(writers, slice, |deadline| {
                    workload::trellis_writer(store.clone(), deadline, per_append)
                })
            },
        )
        .await
        .with_context(|| format!("{name} failed"))?;
        let scenario_what = if per_append == 1 {
            "PostgresStore::append, 1 event, Exact version"
        } else {
            "PostgresStore::append, 100 events, Exact version"
        };
        report.record(name, baseline_what, base, scenario_what, scen);
    }
    Ok(())
}

/// The baseline writer: the same rows, inserted with a prepared statement and
/// nothing else: no version check, no chain, no command record, no notify.
pub async fn raw_writer(pool: Pool, deadline: Instant, per_append: usize) -> Result<u64> {
    raw_writer_upto(pool, deadline, per_append, u64::MAX).await
}

/// One baseline append of `per_append` rows (for fixed-size comparisons).
pub async fn raw_writer_once(pool: Pool, deadline: Instant, per_append: usize) -> Result<u64> {
    raw_writer_upto(pool, deadline, per_append, 1).await
}

async fn raw_writer_upto(
    pool: Pool,
    deadline: Instant,
    per_append: usize,
    max_appends: u64,
) -> Result<u64> {
    let mut appends = 0u64;
    let streams: Vec<String> = workload::streams(STREAMS_PER_WRITER)?
        .into_iter()
        .map(String::from)
        .collect();
    let mut versions = vec![0i64; streams.len()];
    let mut rng = Rng::new();
    let schema_version = i32::from(SCHEMA_VERSION);
    let causation_id: Option<Uuid> = None;
    let mut written = 0u64;
    let mut next = 0;
    while Instant::now() < deadline && appends < max_appends {
        appends += 1;
        let i = next % streams.len();
        next += 1;
        let rows = workload::raw_rows(per_append, &mut versions[i], &mut rng);
        let meta = RawMeta::new();
        let client = pool.get().await?;
        if per_append == 1 {
            let statement = client
                .prepare_cached(&format!(
                    "INSERT INTO bench_raw.events ({RAW_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .await?;
            let row = &rows[0];
            client
                .execute(
                    &statement,
                    &[
                        &row.event_id,
                        &streams[i],
                        &row.stream_version,
                        &EVENT_TYPE,
                        &schema_version,
                        &row.payload,
                        &ACTOR,
                        &meta.command_id,
                        &meta.correlation_id,
                        &causation_id,
                        &row.occurred_at,
                        &meta.recorded_at,
                        &&row.prev_hash[..],
                        &&row.hash[..],
                    ],
                )
                .await?;
        } else {
            let statement = client
                .prepare_cached(&format!(
                    "INSERT INTO bench_raw.events ({RAW_COLUMNS}) \
                     SELECT u.event_id, $2::text, u.stream_version, u.event_type, \
                            u.schema_version, u.payload, $7::text, $8::uuid, $9::uuid, \
                            $10::uuid, u.occurred_at, $12::timestamptz, u.prev_hash, u.hash \
                       FROM unnest($1::uuid[], $3::bigint[], $4::text[], $5::integer[], \
                                   $6::jsonb[], $11::timestamptz[], $13::bytea[], $14::bytea[]) \
                            AS u(event_id, stream_version, event_type, schema_version, \
                                 payload, occurred_at, prev_hash, hash)"
                ))
                .await?;
            let ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
            let stream_versions: Vec<i64> = rows.iter().map(|r| r.stream_version).collect();
            let types: Vec<&str> = rows.iter().map(|_| EVENT_TYPE).collect();
            let schemas: Vec<i32> = rows.iter().map(|_| schema_version).collect();
            let payloads: Vec<&serde_json::Value> = rows.iter().map(|r| &r.payload).collect();
            let occurred: Vec<_> = rows.iter().map(|r| r.occurred_at).collect();
            let prevs: Vec<&[u8]> = rows.iter().map(|r| &r.prev_hash[..]).collect();
            let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.hash[..]).collect();
            // One statement in autocommit: one transaction, one round trip,
            // like the append it is compared with.
            client
                .execute(
                    &statement,
                    &[
                        &ids,
                        &streams[i],
                        &stream_versions,
                        &types,
                        &schemas,
                        &payloads,
                        &ACTOR,
                        &meta.command_id,
                        &meta.correlation_id,
                        &causation_id,
                        &occurred,
                        &meta.recorded_at,
                        &prevs,
                        &hashes,
                    ],
                )
                .await?;
        }
        written += per_append as u64;
    }
    Ok(written)
}

async fn read_all(
    store: &Arc<dyn EventStore>,
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
        let filled = workload::fill(store.clone(), "fill postgres", missing, 4, 5000, 250).await?;
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
    // One untimed pass of each side first, so neither is measured cold.
    raw_read_all(pool, page).await?;
    workload::trellis_read_all(store.as_ref(), page).await?;
    let (base, scen) = workload::alternate(
        ROUNDS,
        || raw_read_all(pool, page),
        || workload::trellis_read_all(store.as_ref(), page),
    )
    .await
    .context("read_all failed")?;
    if base.events != scen.events {
        anyhow::bail!(
            "the baseline read {} events but read_all read {}",
            base.events,
            scen.events
        );
    }
    report.record(
        "read_all",
        &format!("raw paged scan by global_position, {page} per page"),
        base,
        &format!("PostgresStore::read_all, {page} per page"),
        scen,
    );
    Ok(())
}

/// `xid8`, which tokio-postgres does not know: eight big-endian bytes.
struct Xid8(u64);

impl<'a> FromSql<'a> for Xid8 {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let bytes: [u8; 8] = raw.try_into().map_err(|_| "xid8 must be 8 bytes")?;
        Ok(Xid8(u64::from_be_bytes(bytes)))
    }

    fn accepts(ty: &Type) -> bool {
        ty.name() == "xid8"
    }
}

/// The baseline reader: an ordered scan of `bench_raw.events` by primary
/// key, `page` rows per query, every column decoded.
async fn raw_read_all(pool: &Pool, page: usize) -> Result<Tally> {
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
