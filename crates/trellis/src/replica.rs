//! `serve --read-database-url`: the API's reads on a PostgreSQL streaming
//! replica, while every write, every worker and sign-in stay on the primary.
//!
//! One switch decides where a request reads: [`layer`] runs each request
//! with a [`Target`] in a task-local, and the routed stores ([`RoutedLog`],
//! [`RoutedReads`]) send each read to the store it names. Outside a request
//! (the workers) and inside a write request, everything reads the primary.
//!
//! **Reading one's own writes.** After a write request, the primary's
//! write-ahead log position is remembered for the client that sent it (by
//! its credentials) and handed back in the `Trellis-Read-After` header (and,
//! for the pages, a short-lived cookie), so a client that talks to another
//! API process can send it along. A read that must see such a position
//! waits, at most `--read-replica-max-wait-ms`, for the replica to replay
//! past it; otherwise it reads from the primary. A replica that fails a read
//! (the read is then made on the primary), cannot be reached, or lags past
//! the wait sits out for a few seconds: every read goes to the primary.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::watch;
use trellis_dashboard::SESSION_COOKIE;
use trellis_eventstore::postgres::{PostgresConfig, PostgresStore};
use trellis_eventstore::{
    AppendOutcome, AppendRequest, Checkpoint, CommandMeta, EventStore, ExpectedVersion, Hash,
    NewEvent, RecordedEvent, StreamId, StreamWrite, merkle, tree,
};
use trellis_http::extract::cookie;
use trellis_projections::store::postgres::PostgresReadStore;
use trellis_projections::store::{
    Batch, DocPage, Generation, Lease, LeaseKind, Parts, ReadStore, Status,
};

use crate::store::{Backend, Stores};

/// The header that carries the log position a client must read past.
pub const READ_AFTER: HeaderName = HeaderName::from_static("trellis-read-after");
/// The pages' cookie carrying the same.
const READ_AFTER_COOKIE: &str = "trellis_read_after";
/// How long a client's last write is remembered (and its cookie lives).
const REMEMBERED: Duration = Duration::from_secs(60);
/// How long reads that must see a write skip a replica that lagged or failed.
const BENCHED: Duration = Duration::from_secs(5);
/// How often a waiting read asks the replica how far it has replayed.
const POLL: Duration = Duration::from_millis(5);

/// The read replica's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicaArgs {
    /// A PostgreSQL streaming replica (hot standby) of --database-url: the
    /// API's reads and pages are served from it. Writes, workers and
    /// sign-in stay on the primary. --database-ca-file applies to it too.
    #[arg(
        long,
        env = "TRELLIS_READ_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub read_database_url: Option<String>,
    /// How long a read that must see the client's own write waits for the
    /// replica to replay it before reading from the primary instead.
    #[arg(
        long,
        env = "TRELLIS_READ_REPLICA_MAX_WAIT_MS",
        value_name = "MS",
        default_value_t = 500
    )]
    pub read_replica_max_wait_ms: u64,
}

/// Where a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Primary,
    Replica,
}

tokio::task_local! {
    static READ_FROM: Target;
}

/// Where the current task reads: the primary outside a routed request.
fn target() -> Target {
    READ_FROM.try_with(|t| *t).unwrap_or(Target::Primary)
}

/// Until when the replica sits out: every read goes to the primary.
#[derive(Debug, Default)]
pub struct Bench {
    until: Mutex<Option<Instant>>,
}

impl Bench {
    /// Whether the replica sits out now.
    fn holds(&self) -> bool {
        let until = *self.until.lock().expect("replica bench");
        until.is_some_and(|until| Instant::now() < until)
    }

    fn put(&self, why: &str) {
        tracing::warn!(
            reason = why,
            seconds = BENCHED.as_secs(),
            "the read replica sits out: reads go to the primary for a while"
        );
        *self.until.lock().expect("replica bench") = Some(Instant::now() + BENCHED);
    }
}

/// The replica, the positions clients must read past, and how far the
/// replica is known to have replayed.
#[derive(Debug)]
pub struct Replica {
    primary: PostgresStore,
    replica: PostgresStore,
    max_wait: Duration,
    /// How far the replica has replayed, as last asked.
    replayed: AtomicU64,
    /// How far the primary had written, as last asked.
    written: AtomicU64,
    bench: Arc<Bench>,
    /// Each client's last write: its primary position and when.
    writes: Mutex<HashMap<u64, (u64, Instant)>>,
    hasher: std::hash::RandomState,
}

impl Replica {
    /// Where a read that must see position `required` goes: the replica
    /// once it has replayed that far (waiting at most the configured
    /// time), else the primary.
    async fn target_for(&self, required: u64) -> Target {
        if self.bench.holds() {
            return Target::Primary;
        }
        if required == 0 || self.replayed.load(Ordering::Relaxed) >= required {
            return Target::Replica;
        }
        let deadline = Instant::now() + self.max_wait;
        loop {
            match self.replica.wal_position().await {
                Ok(position) => {
                    self.replayed.fetch_max(position, Ordering::Relaxed);
                    if position >= required {
                        return Target::Replica;
                    }
                }
                Err(e) => {
                    self.bench.put(&format!("the replica did not answer: {e}"));
                    return Target::Primary;
                }
            }
            if Instant::now() >= deadline {
                self.bench
                    .put("the replica did not replay a client's write within the wait");
                return Target::Primary;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A position a client asked to read past, no further than the
    /// primary has written: a made-up one must not hold reads up (or send
    /// them all to the primary).
    async fn within_the_log(&self, asked: u64) -> u64 {
        if asked <= self.written.load(Ordering::Relaxed) {
            return asked;
        }
        match self.primary.wal_position().await {
            Ok(position) => {
                self.written.fetch_max(position, Ordering::Relaxed);
                asked.min(position)
            }
            Err(_) => 0,
        }
    }

    /// A key for the client that sent `headers`: its bearer token or its
    /// session cookie, hashed (never kept as such).
    fn client(&self, headers: &HeaderMap) -> Option<u64> {
        let credential = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec())
            .or_else(|| cookie(headers, SESSION_COOKIE).map(String::into_bytes))?;
        Some(self.hasher.hash_one(credential))
    }

    fn remember(&self, client: u64, position: u64) {
        let now = Instant::now();
        let mut writes = self.writes.lock().expect("replica writes");
        if writes.len() >= 100_000 {
            writes.retain(|_, (_, at)| now.duration_since(*at) < REMEMBERED);
        }
        let entry = writes.entry(client).or_insert((0, now));
        *entry = (entry.0.max(position), now);
    }

    fn last_write(&self, client: u64) -> u64 {
        let writes = self.writes.lock().expect("replica writes");
        writes
            .get(&client)
            .filter(|(_, at)| at.elapsed() < REMEMBERED)
            .map_or(0, |(position, _)| *position)
    }
}

/// The position a read request asks to read past, by header or cookie.
fn asked(headers: &HeaderMap) -> u64 {
    let header = headers
        .get(&READ_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let cookie = cookie(headers, READ_AFTER_COOKIE).and_then(|v| v.parse().ok());
    header.unwrap_or(0).max(cookie.unwrap_or(0))
}

/// Routes each request's reads: a write request reads and writes the
/// primary, then says (header and cookie) what position its client must
/// read past; a read request goes to the replica once it has replayed
/// what its client must see.
pub async fn layer(State(replica): State<Arc<Replica>>, request: Request, next: Next) -> Response {
    // Probes and scrapes read nothing routed, and are not counted.
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let client = replica.client(request.headers());
    if !safe {
        let mut response = READ_FROM.scope(Target::Primary, next.run(request)).await;
        match replica.primary.wal_position().await {
            Ok(position) => {
                replica.written.fetch_max(position, Ordering::Relaxed);
                if let Some(client) = client {
                    replica.remember(client, position);
                }
                let headers = response.headers_mut();
                headers.insert(READ_AFTER, HeaderValue::from(position));
                let cookie = format!(
                    "{READ_AFTER_COOKIE}={position}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
                    REMEMBERED.as_secs()
                );
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    headers.append(header::SET_COOKIE, value);
                }
            }
            Err(e) => tracing::debug!(error = %e, "no primary position after a write"),
        }
        return response;
    }
    let required = replica
        .within_the_log(asked(request.headers()))
        .await
        .max(client.map_or(0, |c| replica.last_write(c)));
    let target = replica.target_for(required).await;
    metrics::counter!(
        "trellis_read_replica_requests_total",
        "served_by" => match target {
            Target::Replica => "replica",
            Target::Primary => "primary",
        }
    )
    .increment(1);
    READ_FROM.scope(target, next.run(request)).await
}

/// Connects to the replica named by `args`, if any, and routes `stores`'
/// reads through it: the stores to use and the replica for [`layer`].
pub async fn route(
    stores: Stores,
    args: &ReplicaArgs,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<(Stores, Option<Arc<Replica>>)> {
    let Some(url) = &args.read_database_url else {
        return Ok((stores, None));
    };
    let Backend::Postgres { store: primary, .. } = &stores.backend else {
        anyhow::bail!(
            "--read-database-url needs the log on PostgreSQL (--database-url): the embedded \
             store has no replicas"
        );
    };
    let url = match ca_file {
        Some(path) => trellis_eventstore::postgres::tls::with_root_cert(url, path),
        None => url.clone(),
    };
    // A replica a moment behind the primary's migrations (as when `serve`
    // migrated a new database itself just now) catches up within seconds:
    // wait for it, saying so, rather than refuse to start.
    let deadline = std::time::Instant::now() + REPLICA_START_PATIENCE;
    let (replica, replica_reads) = loop {
        let opened = async {
            let replica = PostgresStore::connect_replica(&PostgresConfig::new(&url))
                .await
                .context("failed to open the read replica (--read-database-url)")?;
            let reads = PostgresReadStore::new(replica.pool().clone())
                .await
                .context("failed to open the read models on the read replica")?;
            anyhow::Ok((replica, reads))
        }
        .await;
        match opened {
            Ok(opened) => break opened,
            Err(e) if std::time::Instant::now() < deadline && lags_behind(&e) => {
                tracing::warn!(error = %format!("{e:#}"), "the read replica has not replayed the primary's migrations yet; waiting");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let bench = Arc::new(Bench::default());
    let routed = Arc::new(Replica {
        primary: primary.clone(),
        replica: replica.clone(),
        max_wait: Duration::from_millis(args.read_replica_max_wait_ms),
        replayed: AtomicU64::new(0),
        written: AtomicU64::new(0),
        bench: bench.clone(),
        writes: Mutex::new(HashMap::new()),
        hasher: std::hash::RandomState::new(),
    });
    let stores = Stores {
        log: Arc::new(RoutedLog {
            primary: stores.log.clone(),
            replica: crate::store::vault(Arc::new(replica.clone()), Arc::new(replica)),
            bench: bench.clone(),
        }),
        read: Arc::new(RoutedReads {
            primary: stores.read.clone(),
            replica: Arc::new(replica_reads),
            bench,
        }),
        backend: stores.backend,
        keys: stores.keys,
    };
    Ok((stores, Some(routed)))
}

/// How long `serve` waits at start for a replica to replay the primary's
/// migrations.
const REPLICA_START_PATIENCE: Duration = Duration::from_secs(30);

/// Whether opening the replica failed because it has not replayed the
/// primary's migrations yet (worth waiting for), not for good.
fn lags_behind(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("has not replayed them") || text.contains("pending") || text.contains("read-only")
}

/// Runs a read on the store the current request reads from; a replica that
/// cannot be reached just now gives way to the primary.
macro_rules! read {
    ($self:ident, $error:path, |$store:ident| $call:expr) => {{
        match target() {
            Target::Primary => {
                let $store = &$self.primary;
                $call.await
            }
            Target::Replica => {
                let outcome = {
                    let $store = &$self.replica;
                    $call.await
                };
                match outcome {
                    Err($error(why)) => {
                        $self.bench.put(&format!("the read replica failed: {why}"));
                        let $store = &$self.primary;
                        $call.await
                    }
                    outcome => outcome,
                }
            }
        }
    }};
}

/// The log: appends and every other write on the primary, reads where the
/// request reads ([`target`]).
#[derive(Debug)]
pub struct RoutedLog {
    primary: Arc<dyn EventStore>,
    replica: Arc<dyn EventStore>,
    bench: Arc<Bench>,
}

type LogError = trellis_eventstore::Error;

#[async_trait]
impl EventStore for RoutedLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, LogError> {
        self.primary.append(stream, expected, meta, events).await
    }

    async fn append_owned(&self, request: AppendRequest) -> Result<AppendOutcome, LogError> {
        self.primary.append_owned(request).await
    }

    async fn append_many(
        &self,
        meta: &CommandMeta,
        writes: &[StreamWrite],
    ) -> Result<Vec<AppendOutcome>, LogError> {
        self.primary.append_many(meta, writes).await
    }

    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, LogError>> {
        self.primary.append_batch(requests).await
    }

    async fn recorded_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<AppendOutcome>, LogError> {
        // Asked while writing: the primary knows.
        self.primary.recorded_command(command_id).await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, LogError> {
        self.primary.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), LogError> {
        self.primary.save_checkpoint(name, checkpoint).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, LogError> {
        read!(self, LogError::Unavailable, |s| s.stream_version(stream))
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        read!(self, LogError::Unavailable, |s| s.read_stream(
            stream,
            after_version,
            max
        ))
    }

    async fn read_all(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        read!(self, LogError::Unavailable, |s| s.read_all(after, max))
    }

    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, LogError> {
        read!(self, LogError::Unavailable, |s| s.read_all_json(after, max))
    }

    async fn head(&self) -> Result<Checkpoint, LogError> {
        read!(self, LogError::Unavailable, |s| s.head())
    }

    async fn settled_head(&self) -> Result<Checkpoint, LogError> {
        // Asked after a write: the primary has it.
        self.primary.settled_head().await
    }

    async fn scan_streams(
        &self,
        after: Option<(StreamId, u64)>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        read!(self, LogError::Unavailable, |s| s
            .scan_streams(after.clone(), max))
    }

    fn appended(&self) -> watch::Receiver<u64> {
        // A standby cannot LISTEN: the primary's notifications wake readers.
        self.primary.appended()
    }

    async fn ping(&self) -> Result<(), LogError> {
        self.primary.ping().await
    }

    async fn read_leaves(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<tree::Leaf>, LogError> {
        read!(self, LogError::Unavailable, |s| s.read_leaves(after, max))
    }

    async fn tree_state(&self) -> Result<tree::TreeState, LogError> {
        read!(self, LogError::Unavailable, |s| s.tree_state())
    }

    async fn extend_tree(&self, extension: &tree::TreeExtension) -> Result<(), LogError> {
        self.primary.extend_tree(extension).await
    }

    async fn tree_nodes(&self, ids: &[merkle::NodeId]) -> Result<Vec<Option<Hash>>, LogError> {
        read!(self, LogError::Unavailable, |s| s.tree_nodes(ids))
    }

    async fn tree_leaf_range(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64, Hash)>, LogError> {
        read!(self, LogError::Unavailable, |s| s
            .tree_leaf_range(from, max))
    }

    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, LogError> {
        read!(self, LogError::Unavailable, |s| s
            .tree_leaf_indexes(positions))
    }

    async fn record_tree_checkpoint(
        &self,
        checkpoint: &tree::StoredCheckpoint,
    ) -> Result<(), LogError> {
        self.primary.record_tree_checkpoint(checkpoint).await
    }

    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<tree::StoredCheckpoint>, LogError> {
        read!(self, LogError::Unavailable, |s| s
            .tree_checkpoints(after_size, max))
    }

    async fn latest_tree_checkpoint(&self) -> Result<Option<tree::StoredCheckpoint>, LogError> {
        read!(self, LogError::Unavailable, |s| s.latest_tree_checkpoint())
    }

    async fn exclusive(&self, scope: &str) -> Result<trellis_eventstore::Exclusive, LogError> {
        // Held where the writes go.
        self.primary.exclusive(scope).await
    }
}

/// The read models: the projector's writes and leases on the primary, the
/// API's reads where the request reads ([`target`]).
#[derive(Debug)]
pub struct RoutedReads {
    primary: Arc<dyn ReadStore>,
    replica: Arc<dyn ReadStore>,
    bench: Arc<Bench>,
}

type ReadError = trellis_projections::Error;

#[async_trait]
impl ReadStore for RoutedReads {
    async fn try_lease(
        &self,
        model: &str,
        kind: LeaseKind,
    ) -> Result<Option<Box<dyn Lease>>, ReadError> {
        self.primary.try_lease(model, kind).await
    }

    async fn generations(&self) -> Result<Vec<Generation>, ReadError> {
        read!(self, ReadError::Unavailable, |s| s.generations())
    }

    async fn create_generation(
        &self,
        model: &str,
        fingerprint: &str,
        status: Status,
    ) -> Result<Generation, ReadError> {
        self.primary
            .create_generation(model, fingerprint, status)
            .await
    }

    async fn load(
        &self,
        model: &str,
        generation: i32,
        kinds: &[&str],
        page: DocPage<'_>,
    ) -> Result<Vec<(String, String, String)>, ReadError> {
        read!(self, ReadError::Unavailable, |s| s
            .load(model, generation, kinds, page))
    }

    async fn commit(&self, batch: Batch<'_>) -> Result<bool, ReadError> {
        self.primary.commit(batch).await
    }

    async fn write_bulk(
        &self,
        model: &str,
        generation: i32,
        from: Checkpoint,
        parts: &Parts,
    ) -> Result<bool, ReadError> {
        self.primary
            .write_bulk(model, generation, from, parts)
            .await
    }

    async fn drop_generation(&self, model: &str, generation: i32) -> Result<(), ReadError> {
        self.primary.drop_generation(model, generation).await
    }

    async fn activate(
        &self,
        model: &str,
        generation: i32,
        at: Checkpoint,
    ) -> Result<bool, ReadError> {
        self.primary.activate(model, generation, at).await
    }

    async fn drop_inactive(&self, model: &str, keep: Option<i32>) -> Result<(), ReadError> {
        self.primary.drop_inactive(model, keep).await
    }

    async fn get(
        &self,
        model: &str,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, ReadError> {
        read!(self, ReadError::Unavailable, |s| s.get(model, kind, keys))
    }

    async fn dump(
        &self,
        model: &str,
        generation: i32,
    ) -> Result<Vec<(String, String, String)>, ReadError> {
        read!(self, ReadError::Unavailable, |s| s.dump(model, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::asked;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn the_position_to_read_past_comes_from_the_header_or_the_cookie_whichever_is_further() {
        let mut headers = HeaderMap::new();
        assert_eq!(asked(&headers), 0);
        headers.insert("trellis-read-after", HeaderValue::from_static("120"));
        assert_eq!(asked(&headers), 120);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("trellis_session=abc; trellis_read_after=300"),
        );
        assert_eq!(asked(&headers), 300);
        headers.insert(
            "trellis-read-after",
            HeaderValue::from_static("not a number"),
        );
        assert_eq!(asked(&headers), 300, "a malformed header is ignored");
    }
}
