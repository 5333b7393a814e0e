//! The raw baseline every PostgreSQL scenario is compared with: a database
//! of the bench's own, and plain prepared INSERTs into `bench_raw.events`,
//! with no version check, no chain, no command record and no notify.

use std::time::Instant;

use anyhow::{Context, Result};
use deadpool_postgres::Pool;
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use trellis_eventstore::postgres::tls::{self, MakeRustls};
use uuid::Uuid;

use crate::workload::{self, ACTOR, EVENT_TYPE, RawMeta, Rng, SCHEMA_VERSION, STREAMS_PER_WRITER};

/// The columns of `bench_raw.events` an INSERT names, in its order.
pub const RAW_COLUMNS: &str = "event_id, stream_id, stream_version, event_type, schema_version, \
    payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
    prev_hash, hash";

/// A database of the bench's own, `trellis_bench_<uuid>`, on the given server.
///
/// Every connection to it, the store's and the baseline's, goes over the
/// same transport: TLS when the server offers it, as the store's default
/// `sslmode=prefer` asks, unless the URL says otherwise. A baseline over
/// plain TCP against a store over TLS would charge Trellis for encryption
/// the baseline does not pay.
#[derive(Debug)]
pub struct BenchDatabase {
    admin: tokio_postgres::Config,
    name: String,
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: MakeRustls,
}

impl BenchDatabase {
    pub async fn create(admin_url: &str) -> Result<Self> {
        let (admin, tls) = tls::connect_config(admin_url)
            .context("the database URL is not valid (expected postgres://user@host:port/db)")?;
        let name = format!("trellis_bench_{}", Uuid::now_v7().simple());
        connect_with(&admin, &tls)
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
            tls,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, best effort: a failure is reported, not returned.
    pub async fn drop_now(self) {
        let dropped = async {
            connect_with(&self.admin, &self.tls)
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
        // The store's connections negotiate TLS as the baseline's do. (A
        // verifying mode reads as `require` here: the same encryption.)
        parts.push(
            match self.config.get_ssl_mode() {
                SslMode::Disable => "sslmode=disable",
                SslMode::Require => "sslmode=require",
                _ => "sslmode=prefer",
            }
            .to_owned(),
        );
        parts.join(" ")
    }

    /// A connection for the bench's own untimed work (setup, copies).
    pub async fn connect(&self) -> Result<Client> {
        connect_with(&self.config, &self.tls).await
    }

    /// Whether the server agreed to TLS, for the report's header.
    pub async fn transport(&self) -> &'static str {
        let ssl = async {
            let ssl: bool = self
                .connect()
                .await?
                .query_one(
                    "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), \
                     false)",
                    &[],
                )
                .await?
                .get(0);
            anyhow::Ok(ssl)
        };
        match ssl.await {
            Ok(true) => "TLS",
            Ok(false) => "plain TCP",
            Err(_) => "an unknown transport",
        }
    }
}

async fn connect_with(config: &tokio_postgres::Config, tls: &MakeRustls) -> Result<Client> {
    let (client, connection) = config.connect(tls.clone()).await?;
    tokio::spawn(connection);
    Ok(client)
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
