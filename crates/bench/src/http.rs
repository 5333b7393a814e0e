//! `commands` and `import`: the HTTP write path of `trellis serve`, measured
//! against raw INSERTs into the same server.
//!
//! The command service runs in this process on a loopback port, on the
//! PostgreSQL store in the bench's database. Clients speak plain HTTP/1.1
//! with keep-alive over their own connection (a minimal client, so the
//! measurement is the server's, not a client library's).
//!
//! - `http_1c`, `http_8c`: one and eight clients, each giving feedback to its
//!   own 50 reps in turn (one event per command: load the rep, check the
//!   competency, decide, append). Baseline: the raw single-row INSERT at 1 and
//!   8 writers (as `append_1w` / `append_8w`). Latency p50/p99 per request.
//! - `import`: one CSV of 50,000 measurement rows over 500 reps, posted to
//!   `/v1/measurements` (parsed, decided per row, appended in one transaction).
//!   Baseline: the same number of rows as raw 100-row INSERTs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use trellis_commands::{CommandState, CommandsConfig};
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{GroupCommit, GroupCommitConfig};
use trellis_http::auth::{Claims, Role, TokenKey};
use trellis_http::{HttpState, SystemClock};

use crate::baseline::BenchDatabase;
use crate::workload::{Report, Tally};

const REPS_PER_CLIENT: usize = 50;
const IMPORT_ROWS: usize = 50_000;
const IMPORT_REPS: usize = 500;

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Http {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Http {
    pub(crate) async fn connect(addr: std::net::SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            reader: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// Sends a request and returns the status and body.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        self.send_with(method, path, token, content_type, &[], body)
            .await
    }

    /// [`Http::send`] with more request headers.
    pub(crate) async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
             content-type: {content_type}\r\ncontent-length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok((status, body))
    }

    async fn post_json(
        &mut self,
        path: &str,
        token: &str,
        json: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let (status, body) = self
            .send(
                "POST",
                path,
                token,
                "application/json",
                &serde_json::to_vec(json)?,
            )
            .await?;
        if !(200..300).contains(&status) {
            bail!(
                "POST {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

fn token(key: &TokenKey, role: Role, sub: String, teams: Vec<uuid::Uuid>) -> String {
    key.mint(&Claims {
        sub,
        role,
        teams,
        grants: vec![],
        exp: Utc::now().timestamp() + 3600,
        iat: None,
    })
}

fn id(v: &serde_json::Value) -> Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("the response has no id")
}

/// Percentile of sorted durations, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs the HTTP measurements; returns `(name, milliseconds)` latency figures.
pub async fn run(
    db: &BenchDatabase,
    raw: &deadpool_postgres::Pool,
    seconds: Duration,
    commands: bool,
    import: bool,
    report: &mut Report,
) -> Result<Vec<(String, f64)>> {
    let store = PostgresStore::connect(&PostgresConfig {
        url: db.conninfo(),
        pool_size: 16,
    })
    .await
    .context("failed to open the PostgreSQL event store")?;
    // As `trellis serve` appends: through group commit.
    let service = CommandService::start(Arc::new(GroupCommit::new(
        Arc::new(store),
        GroupCommitConfig::default(),
    )))
    .await?;
    let addr = service.addr;
    let reps_needed = (8 * REPS_PER_CLIENT).max(IMPORT_REPS);
    let org = service.organisation(reps_needed).await?;
    let mut http = Http::connect(addr).await?;
    let (leader_token, competency, reps) = (org.leader_token, org.competency, org.reps);
    let mut latencies = Vec::new();
    let slice = seconds / 2;

    if commands {
        for (name, clients, baseline_what) in [
            (
                "http_1c",
                1usize,
                "raw single-row autocommit INSERT, 1 writer",
            ),
            (
                "http_8c",
                8usize,
                "raw single-row autocommit INSERT, 8 writers",
            ),
        ] {
            let mut base = Tally::default();
            let mut scen = Tally::default();
            let samples = Arc::new(Mutex::new(Vec::new()));
            for _ in 0..2 {
                base.add(
                    crate::workload::time_boxed(clients, slice, |deadline| {
                        crate::baseline::raw_writer(raw.clone(), deadline, 1)
                    })
                    .await?,
                );
                let start = Instant::now();
                let deadline = start + slice;
                let mut handles = Vec::new();
                for c in 0..clients {
                    let (reps, samples) = (reps.clone(), samples.clone());
                    let (token, competency) = (leader_token.clone(), competency.clone());
                    handles.push(tokio::spawn(async move {
                        let mut http = Http::connect(addr).await?;
                        let body = serde_json::to_vec(&serde_json::json!({
                            "competency_id": competency, "kind": "praise",
                            "note": "Great discovery questions on the Acme call: keep asking about impact.",
                            "given_on": "2026-02-10"}))?;
                        let mut mine = Vec::new();
                        let mut n = 0usize;
                        while Instant::now() < deadline {
                            let rep = &reps[c * REPS_PER_CLIENT + n % REPS_PER_CLIENT];
                            let path = format!("/v1/reps/{rep}/feedback");
                            let sent = Instant::now();
                            let (status, body_out) =
                                http.send("POST", &path, &token, "application/json", &body).await?;
                            mine.push(sent.elapsed());
                            if status != 201 {
                                bail!("feedback answered {status}: {}", String::from_utf8_lossy(&body_out));
                            }
                            n += 1;
                        }
                        samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.extend(mine);
                        anyhow::Ok(n as u64)
                    }));
                }
                let mut events = 0;
                for handle in handles {
                    events += handle.await??;
                }
                scen.add(Tally {
                    events,
                    elapsed: start.elapsed(),
                });
            }
            report.record(
                name,
                baseline_what,
                base,
                "POST /v1/reps/{rep}/feedback (HTTP)",
                scen,
            );
            let mut samples = samples
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .clone();
            samples.sort_unstable();
            let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
            println!(
                "{name:<16} latency   p50 {p50:.2} ms  p99 {p99:.2} ms over {} requests",
                samples.len()
            );
            if name == "http_8c" {
                latencies.push((format!("{name}_p50"), p50));
                latencies.push((format!("{name}_p99"), p99));
            }
        }
    }

    if import {
        let mut csv = String::with_capacity(IMPORT_ROWS * 64);
        csv.push_str("rep,metric,period,value\n");
        let weeks = IMPORT_ROWS / IMPORT_REPS;
        for r in 0..IMPORT_REPS {
            for w in 0..weeks {
                // 100 weeks from 2024-W02 on: all after the reps' start date.
                let (year, week) = (2024 + (w + 1) / 52, (w + 1) % 52 + 1);
                csv.push_str(&format!(
                    "{},calls_made,{year}-W{week:02},{}\n",
                    reps[r],
                    20 + (r + w) % 30
                ));
            }
        }
        let rows = IMPORT_ROWS as u64;
        let base = crate::workload::time_boxed(1, Duration::ZERO, |_| {
            let pool = raw.clone();
            async move {
                // Exactly IMPORT_ROWS rows as 100-row statements.
                let deadline = Instant::now() + Duration::from_secs(3600);
                let mut written = 0;
                while written < rows {
                    written +=
                        crate::baseline::raw_writer_once(pool.clone(), deadline, 100).await?;
                }
                anyhow::Ok(written)
            }
        })
        .await?;
        let started = Instant::now();
        let (status, body) = http
            .send(
                "POST",
                "/v1/measurements",
                &leader_token,
                "text/csv",
                csv.as_bytes(),
            )
            .await?;
        let elapsed = started.elapsed();
        if status != 200 {
            bail!(
                "the import answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        report.record(
            "import",
            "raw 100-row INSERTs of the same number of rows",
            base,
            "POST /v1/measurements, 50,000-row CSV, all or nothing",
            Tally {
                events: rows,
                elapsed,
            },
        );
    }
    Ok(latencies)
}

/// The command service of `trellis serve`, on a loopback port of this
/// process, over `store`; stopped when dropped.
pub(crate) struct CommandService {
    pub(crate) addr: std::net::SocketAddr,
    key: TokenKey,
    server: tokio::task::JoinHandle<()>,
}

/// A team, a competency and reps to write to, with a leader's token.
pub(crate) struct Organisation {
    pub(crate) leader_token: String,
    pub(crate) competency: String,
    pub(crate) reps: Arc<Vec<String>>,
}

impl CommandService {
    pub(crate) async fn start(store: Arc<dyn trellis_eventstore::EventStore>) -> Result<Self> {
        let key = TokenKey::new(vec![42u8; 32]).map_err(anyhow::Error::msg)?;
        let http =
            HttpState::new(store, key.clone(), Arc::new(SystemClock)).with_body_limit(64 << 20);
        let state = CommandState::new(
            http.clone(),
            CommandsConfig {
                max_import_rows: IMPORT_ROWS,
                ..CommandsConfig::default()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let router = trellis_http::app(http, [trellis_commands::api(state)]);
            let _ = axum::serve(listener, router).await;
        });
        Ok(CommandService { addr, key, server })
    }

    /// Creates a team, a competency and `reps` reps over HTTP.
    pub(crate) async fn organisation(&self, reps: usize) -> Result<Organisation> {
        let admin = token(&self.key, Role::Admin, "bench-admin".into(), vec![]);
        let mut http = Http::connect(self.addr).await?;
        let team = id(&http
            .post_json("/v1/teams", &admin, &serde_json::json!({"name": "Bench"}))
            .await?)?;
        let team_uuid: uuid::Uuid = team.parse()?;
        let competency = id(&http
            .post_json(
                "/v1/competencies",
                &admin,
                &serde_json::json!({"name": "Discovery", "description": "Finding the customer's real problem.",
                    "rubric": ["Asks none", "Asks some", "Asks good ones", "Uncovers impact", "Shapes the deal"]}),
            )
            .await?)?;
        // The import measures `calls_made` by week: a standard must.
        id(&http
            .post_json(
                "/v1/standards",
                &admin,
                &serde_json::json!({"name": "Weekly calls", "metric": "calls_made",
                    "kind": "quantity", "direction": "at_least", "unit": "calls",
                    "period": "week", "target": 50, "roles": ["SDR"],
                    "effective_from": "2024-01-01"}),
            )
            .await?)?;
        let leader = uuid::Uuid::now_v7();
        let leader_token = token(&self.key, Role::Leader, leader.to_string(), vec![team_uuid]);
        let mut ids = Vec::with_capacity(reps);
        for i in 0..reps {
            let rep = http
                .post_json(
                    "/v1/reps",
                    &admin,
                    &serde_json::json!({"name": format!("Rep {i}"), "role": "SDR",
                        "team_id": team, "start_date": "2024-01-01"}),
                )
                .await?;
            ids.push(id(&rep)?);
        }
        Ok(Organisation {
            leader_token,
            competency,
            reps: Arc::new(ids),
        })
    }
}

impl Drop for CommandService {
    fn drop(&mut self) {
        self.server.abort();
    }
}
