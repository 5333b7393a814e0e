//! The PostgreSQL backend: production storage for the log.
//!
//! Every append is one round trip to the stored function
//! `trellis.append_events` (idempotency, version check, hash chain and insert
//! in one statement; the content digests are computed here in Rust). Readers
//! of the global log follow `(tx_id, global_position)` below the oldest running
//! transaction (see `docs/adr/0001-global-order.md`) and are woken by
//! `LISTEN trellis_events`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use tokio_postgres::{GenericClient, Row, Statement};
use uuid::Uuid;

use crate::note::SignerKey;
use crate::seal::{digest_of_new, seal_write};
use crate::types::AppendRequest;
use crate::types::{limit, to_i64, to_micros_precision};
use crate::{
    AppendOutcome, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Hash, Metadata,
    NewEvent, RecordedEvent, Seal, StreamId, StreamWrite, TraceParent, derived_command_id,
    validate_append, validate_many,
};

mod guards;
mod migrate;
pub mod tls;
mod tree;
mod xid8;

pub use crate::types::{Migrations, Outcome};
pub use migrate::{
    Grant, LOG_MIGRATIONS, RUNTIME_ROLE, migrate, pending, prepare, runtime_grants,
    unknown_components,
};
pub use xid8::Xid8;

/// The notification channel appends signal on.
pub const CHANNEL: &str = "trellis_events";

/// How to reach the database.
#[derive(Clone)]
pub struct PostgresConfig {
    /// A libpq-style URL or key/value string (`postgres://user@host:5432/db`).
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
}

impl std::fmt::Debug for PostgresConfig {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            pool_size: 16,
        }
    }
}

/// How many times one append is tried before a race is reported.
const MAX_ATTEMPTS: u32 = 50;

/// The columns [`row_to_event`] reads, with the payload selected as `$payload`.
macro_rules! columns {
    ($payload:literal) => {
        concat!(
            "global_position, tx_id, event_id, stream_id, stream_version, event_type, \
             schema_version, ",
            $payload,
            ", actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, \
             prev_hash, hash, seal, traceparent"
        )
    };
}

const COLUMNS: &str = columns!("payload");

/// The query of [`EventStore::read_all`] selecting `$payload` as the payload.
macro_rules! read_all_sql {
    ($payload:literal) => {
        concat!(
            "SELECT ",
            columns!($payload),
            " FROM trellis.events \
             WHERE (tx_id, global_position) > ($1, $2) \
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY tx_id, global_position LIMIT $3"
        )
    };
}

/// [`EventStore::read_all`]: payloads parsed.
const READ_ALL_SQL: &str = read_all_sql!("payload");

/// [`EventStore::read_all_json`]: payloads as their JSON text.
const READ_ALL_JSON_SQL: &str = read_all_sql!("payload::text");

/// [`EventStore::read_leaves`]: `read_all`'s rows and order, three columns.
const READ_LEAVES_SQL: &str = "SELECT tx_id, global_position, hash FROM trellis.events \
     WHERE (tx_id, global_position) > ($1, $2) \
       AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY tx_id, global_position LIMIT $3";

/// Runs `$body` (a block giving a `Result<_, Error>`) with `$client` bound
/// to a pooled connection, and again on another one when it failed as
/// unavailable because its connection died.
///
/// A connection can die while it sits in the pool (the server restarted or
/// failed over, an administrator or a proxy dropped it) before the pool
/// notices; without this, each such connection would cost one request a
/// 503. The pool discards a closed connection when it is given back, so at
/// most one attempt per pooled connection is spent this way. Running an
/// operation again is safe for every one of them: reads and the checkpoint
/// upsert have no other effect, and an append whose first try did commit is
/// recognised by its command id and answered as recorded.
macro_rules! with_client {
    ($store:expr, |$client:ident| $body:block) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            #[allow(unused_mut, reason = "appends open transactions on it")]
            let mut $client = $store.client().await?;
            let outcome: Result<_, Error> = async { $body }.await;
            match outcome {
                // Once per pooled connection, and one more (the pool's size
                // is read only on this path: it takes the pool's lock).
                Err(Error::Unavailable(reason))
                    if attempt <= $store.inner.pool.status().max_size
                        && !connection_alive(&$client).await =>
                {
                    tracing::debug!(%reason, "a pooled connection was closed; trying another");
                }
                outcome => break outcome,
            }
        }
    }};
}

/// Whether `client` can still be used, after an operation on it failed as
/// unavailable. A server that drops a connection in the middle of a query
/// answers it with a fatal error and only then closes the socket, so
/// `is_closed` alone can still say no; an empty query settles it (it is sent
/// only on this error path).
async fn connection_alive(client: &deadpool_postgres::Object) -> bool {
    !client.is_closed() && client.simple_query("").await.is_ok()
}

/// The PostgreSQL event store. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
    /// Seals every appended event, when given ([`PostgresStore::sealing_with`]).
    seal_key: Option<Arc<SignerKey>>,
}

struct Inner {
    pool: Pool,
    /// Bumped by this process's appends and by notifications of others'.
    appended: watch::Sender<u64>,
    /// Bumped by this process's appends only; drives the notifier.
    local_appends: watch::Sender<u64>,
    /// The tasks that LISTEN for others' appends and NOTIFY of this
    /// process's (none on a read replica, where neither can run).
    tasks: Vec<tokio::task::AbortHandle>,
    /// This process's writers waiting for a scope ([`EventStore::exclusive`]).
    exclusive: crate::exclusive::Queue,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Inner {
    fn signal_append(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        self.local_appends.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// The connection pool of `config`, connecting with `pg` over `tls`.
fn build_pool(
    config: &PostgresConfig,
    pg: &tokio_postgres::Config,
    tls: &tls::MakeRustls,
) -> Result<Pool, Error> {
    let manager = Manager::from_config(
        pg.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Internal(format!("failed to build the connection pool: {e}")))
}

impl PostgresStore {
    /// Connects, checks the log's migrations (applying pending ones when
    /// this role may, see [`prepare`]), and starts listening for appends.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, Error> {
        // `sslmode` and `sslrootcert` are read here (see `tls`).
        let (pg, tls) = tls::connect_config(&config.url)?;
        let pool = build_pool(config, &pg, &tls)?;
        {
            let mut client = pool.get().await?;
            prepare(&mut client, &LOG_MIGRATIONS).await?;
        }
        let (appended, _) = watch::channel(0u64);
        let (local_appends, _) = watch::channel(0u64);
        let listener = tokio::spawn(listen(pg, tls, appended.clone())).abort_handle();
        let notifier = tokio::spawn(notify(pool.clone(), local_appends.subscribe())).abort_handle();
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                appended,
                local_appends,
                tasks: vec![listener, notifier],
                exclusive: Default::default(),
            }),
            seal_key: None,
        })
    }

    /// Connects to a streaming replica (a hot standby) of the log's
    /// database, for reads only: nothing is migrated, no one LISTENs (a
    /// standby refuses it: [`EventStore::appended`] of this store never
    /// moves), and appending through it fails as the server refuses writes.
    /// A replica that has not yet replayed the log's migrations is refused.
    pub async fn connect_replica(config: &PostgresConfig) -> Result<Self, Error> {
        let (pg, tls) = tls::connect_config(&config.url)?;
        let pool = build_pool(config, &pg, &tls)?;
        {
            let client = pool.get().await?;
            let pending = pending(&client, &LOG_MIGRATIONS).await?;
            if !pending.is_empty() {
                // Most often a replica a moment behind a migration that just
                // ran on the primary: worth waiting for.
                return Err(Error::Unavailable(format!(
                    "the read replica lacks the log's migrations {} (it has not replayed them \
                     yet, or it replicates another database): run `trellis migrate` against \
                     the primary and let the replica catch up",
                    pending.join(", ")
                )));
            }
        }
        let (appended, _) = watch::channel(0u64);
        let (local_appends, _) = watch::channel(0u64);
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                appended,
                local_appends,
                tasks: Vec::new(),
                exclusive: Default::default(),
            }),
            seal_key: None,
        })
    }

    /// How far this server's write-ahead log reaches, in bytes from its
    /// start: on a primary what it has written, on a standby what it has
    /// replayed. A standby whose position reaches a primary's position read
    /// after a commit shows that commit.
    pub async fn wal_position(&self) -> Result<u64, Error> {
        with_client!(self, |client| {
            let row = client
                .query_one(
                    "SELECT (COALESCE(CASE WHEN pg_is_in_recovery() \
                                 THEN pg_last_wal_replay_lsn() \
                                 ELSE pg_current_wal_lsn() END, '0/0') \
                             - '0/0'::pg_lsn)::bigint",
                    &[],
                )
                .await?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    /// This store, sealing every event it appends with `key`.
    pub fn sealing_with(mut self, key: SignerKey) -> Self {
        self.seal_key = Some(Arc::new(key));
        self
    }

    /// Discards the stored Merkle tree, for a builder to make again from the
    /// log (the repair `trellis audit rebuild-tree` makes once `audit
    /// verify` found the stored tree altered and the log intact). Only the
    /// schema's owner may: the runtime role is refused, as invalid input.
    pub async fn discard_stored_tree(&self) -> Result<(), Error> {
        let mut client = self.client().await?;
        tree::discard(&mut client).await
    }

    /// The guards ([`crate::guards`]) that are missing, disabled or not as
    /// the migrations made them.
    pub async fn guard_findings(&self) -> Result<Vec<crate::guards::GuardFinding>, Error> {
        let client = self.client().await?;
        guards::findings(&**client).await
    }

    /// Makes again, in one transaction, every guard that is missing,
    /// disabled or not as the migrations made it (`trellis migrate`, as the
    /// schema's owner); the ones it made again.
    pub async fn restore_guards(
        client: &mut tokio_postgres::Client,
    ) -> Result<Vec<crate::guards::GuardFinding>, Error> {
        let tx = client.transaction().await?;
        let restored = guards::restore_in(&tx, None).await?;
        tx.commit().await?;
        Ok(restored)
    }

    /// The pool, for other components that keep their tables in the same database.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        Ok(self.inner.pool.get().await?)
    }

    /// Runs `calls` in one repeatable-read transaction, pipelined, and
    /// commits once. Each call's answer, or `None` where it must be appended
    /// again on its own (a replay, whose first outcome is looked up then, or
    /// an `Any` that lost a race). Any statement failing fails the whole
    /// batch, which then wrote nothing.
    ///
    /// The calls of one event each whose stream no earlier call of the
    /// batch has go first, together, in one `trellis.append_batch`
    /// statement ([`Together`]); the others follow one statement each, in
    /// the batch's order, so a stream's later commands see its earlier ones.
    ///
    /// Repeatable read keeps each stream's versions in global order: every
    /// head is read in the snapshot taken before the batch's first write,
    /// so it was committed before the batch got its transaction id; a head
    /// committed after that snapshot makes the insert fail with a
    /// serialization error rather than go under it (ADR 1).
    async fn commit_batch(
        &self,
        calls: &[(&CommandMeta, AppendCall<'_>)],
    ) -> Result<Vec<Option<Result<AppendOutcome, Error>>>, Error> {
        let client = self.client().await?;
        let one = client.prepare_cached(APPEND_ONE_SQL).await?;
        let many = client.prepare_cached(APPEND_SQL).await?;
        let hashes: Vec<Option<[u8; 32]>> = calls
            .iter()
            .map(|(m, _)| m.request_hash.map(|h| h.0))
            .collect();
        let together = Together::of(calls, &hashes);
        let batch = match &together {
            Some(_) => Some(client.prepare_cached(APPEND_BATCH_SQL).await?),
            None => None,
        };
        // BEGIN, the calls and COMMIT go out together: one round trip for
        // the batch. tokio-postgres sends a request when its future is first
        // polled, and the server runs them in that order, so each future is
        // polled once, in order, before any is awaited. A call that fails
        // aborts the transaction: the calls after it fail too and the COMMIT
        // becomes a rollback, so nothing of the batch is written.
        let client: &tokio_postgres::Client = &client;
        let mut begin = std::pin::pin!(client.batch_execute(BEGIN_BATCH_SQL));
        let begun = poll_once(begin.as_mut()).await;
        let together_params = together.as_ref().map(Together::params);
        let mut together_run =
            together_params
                .as_ref()
                .zip(batch.as_ref())
                .map(|(p, statement)| {
                    futures_util::future::maybe_done(Box::pin(client.query(statement, p)))
                });
        if let Some(run) = &mut together_run {
            let _ = poll_once(std::pin::Pin::new(run)).await;
        }
        let alone = |i: &usize| together.as_ref().is_none_or(|t| !t.has(*i));
        let mut runs: Vec<_> = calls
            .iter()
            .zip(&hashes)
            .enumerate()
            .filter(|(i, _)| alone(i))
            .map(|(_, ((meta, call), hash))| {
                let hash = hash.as_ref().map(|h| &h[..]);
                let (one, many) = (&one, &many);
                futures_util::future::maybe_done(Box::pin(async move {
                    if call.event_ids.len() == 1 {
                        call.run_one(client, one, meta, hash).await
                    } else {
                        call.run(client, many, meta, hash).await
                    }
                }))
            })
            .collect();
        for run in &mut runs {
            // A run done at once (an error) keeps its output for below.
            let _ = poll_once(std::pin::Pin::new(run)).await;
        }
        let mut commit = std::pin::pin!(client.batch_execute("COMMIT"));
        let committed = poll_once(commit.as_mut()).await;
        finish(begun, begin.as_mut()).await?;
        let no_answer = || Error::Internal("a group commit's call gave no answer".into());
        let together_rows = match together_run {
            Some(mut run) => {
                (&mut run).await;
                std::pin::Pin::new(&mut run)
                    .take_output()
                    .ok_or_else(no_answer)?
            }
            None => Ok(Vec::new()),
        };
        let mut rows = Vec::with_capacity(runs.len());
        for mut run in runs {
            (&mut run).await;
            rows.push(
                std::pin::Pin::new(&mut run)
                    .take_output()
                    .ok_or_else(no_answer)?,
            );
        }
        let mut rows = rows.into_iter();
        let committed = finish(committed, commit.as_mut()).await;
        // Like every call's error, the statement's is answered once the
        // COMMIT (then a rollback) has come back, so the connection returns
        // to the pool with nothing of this batch still to read.
        let mut together_rows = together_rows?.into_iter();
        let mut settled = Vec::with_capacity(calls.len());
        for (i, (meta, call)) in calls.iter().enumerate() {
            let row = if alone(&i) {
                rows.next().ok_or_else(no_answer)??
            } else {
                together_rows.next().ok_or_else(no_answer)?
            };
            let result = if call.event_ids.len() == 1 {
                read_one_result(&row, call.expected, meta)
            } else {
                Some(read_call_result(&row)?)
            };
            settled.push(match result {
                Some(CallResult::Done(outcome)) => Some(Ok(outcome)),
                Some(CallResult::Conflict { .. }) if call.expected == ExpectedVersion::Any => None,
                Some(CallResult::Conflict { current }) => Some(Err(Error::Conflict {
                    stream: call.stream.clone(),
                    expected: call.expected,
                    current,
                })),
                None => None,
            });
        }
        committed?;
        if settled
            .iter()
            .any(|s| matches!(s, Some(Ok(outcome)) if !outcome.replayed))
        {
            self.inner.signal_append();
        }
        Ok(settled)
    }

    /// [`EventStore::read_all`] by `sql` ([`READ_ALL_SQL`] or [`READ_ALL_JSON_SQL`]).
    async fn read_all_as<P>(
        &self,
        sql: &str,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<P>>, Error>
    where
        P: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        with_client!(self, |client| {
            let statement = client.prepare_cached(sql).await?;
            let position = to_i64(after.position, "position")?;
            let rows = client
                .query(&statement, &[&Xid8(after.tx), &position, &limit(max)])
                .await?;
            rows_to_events(&rows)
        })
    }
}

/// Holds one connection that LISTENs, and bumps `appended` on every
/// notification. Reconnects with backoff; bumps after reconnecting too, since
/// notifications may have been missed meanwhile.
async fn listen(
    config: tokio_postgres::Config,
    tls: tls::MakeRustls,
    appended: watch::Sender<u64>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                if tx.send(()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "event_store.listen connection failed");
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::warn!(error = %e, "event_store.listen failed to LISTEN");
                } else {
                    backoff = Duration::from_millis(100);
                    appended.send_modify(|n| *n = n.wrapping_add(1));
                    while rx.recv().await.is_some() {
                        appended.send_modify(|n| *n = n.wrapping_add(1));
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "event_store.listen cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The shortest time between two NOTIFYs of one process.
pub const NOTIFY_INTERVAL: Duration = Duration::from_millis(10);

/// Tells other processes that this one appended: at most one NOTIFY per
/// [`NOTIFY_INTERVAL`], however many appends. A NOTIFY is a transaction of its
/// own with a commit to flush; one per append would halve a lone writer's
/// rate. Readers in this process are woken directly, without waiting.
async fn notify(pool: Pool, mut appends: watch::Receiver<u64>) {
    while appends.changed().await.is_ok() {
        tokio::time::sleep(NOTIFY_INTERVAL).await;
        appends.borrow_and_update();
        match pool.get().await {
            Ok(client) => {
                if let Err(e) = client
                    .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
                    .await
                {
                    tracing::warn!(error = %e, "event_store.notify failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "event_store.notify cannot get a connection"),
        }
    }
}

fn row_to_event<P>(row: &Row) -> Result<RecordedEvent<P>, Error>
where
    P: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let bad = |what: &str| Error::Internal(format!("the log holds an invalid {what}"));
    let global_position: i64 = row.try_get(0).map_err(|_| bad("global position"))?;
    let tx: Xid8 = row.try_get(1).map_err(|_| bad("transaction id"))?;
    let stream_id: String = row.try_get(3).map_err(|_| bad("stream id"))?;
    let stream_version: i64 = row.try_get(4).map_err(|_| bad("stream version"))?;
    let schema_version: i32 = row.try_get(6).map_err(|_| bad("schema version"))?;
    let prev_hash: &[u8] = row.try_get(14).map_err(|_| bad("hash"))?;
    let hash: &[u8] = row.try_get(15).map_err(|_| bad("hash"))?;
    let global_position = u64::try_from(global_position).map_err(|_| bad("global position"))?;
    Ok(RecordedEvent {
        global_position,
        checkpoint: Checkpoint {
            tx: tx.0,
            position: global_position,
        },
        event_id: row.try_get(2).map_err(|_| bad("event id"))?,
        // Stored ids were validated on the way in; a damaged row still reads.
        stream_id: StreamId::new(stream_id)
            .unwrap_or_else(|_| StreamId::new("invalid").expect("a valid literal")),
        stream_version: u64::try_from(stream_version).map_err(|_| bad("stream version"))?,
        event_type: row.try_get(5).map_err(|_| bad("event type"))?,
        schema_version: u16::try_from(schema_version).map_err(|_| bad("schema version"))?,
        payload: row.try_get(7).map_err(|_| bad("payload"))?,
        metadata: Metadata {
            actor: row.try_get(8).map_err(|_| bad("actor"))?,
            command_id: row.try_get(9).map_err(|_| bad("command id"))?,
            correlation_id: row.try_get(10).map_err(|_| bad("correlation id"))?,
            causation_id: row.try_get(11).map_err(|_| bad("causation id"))?,
            occurred_at: row.try_get(12).map_err(|_| bad("occurred_at"))?,
            recorded_at: row.try_get(13).map_err(|_| bad("recorded_at"))?,
            // Checked on the way in; a damaged one is dropped, not an error:
            // it is telemetry, nothing depends on it.
            traceparent: row
                .try_get::<_, Option<String>>(17)
                .map_err(|_| bad("traceparent"))?
                .and_then(|t| TraceParent::new(t).ok()),
        },
        prev_hash: Hash::from_slice(prev_hash).ok_or_else(|| bad("hash"))?,
        hash: Hash::from_slice(hash).ok_or_else(|| bad("hash"))?,
        seal: match row
            .try_get::<_, Option<&[u8]>>(16)
            .map_err(|_| bad("seal"))?
        {
            Some(bytes) => Some(Seal::from_slice(bytes).ok_or_else(|| bad("seal"))?),
            None => None,
        },
        content_digest: Default::default(),
    })
}

fn rows_to_events<P>(rows: &[Row]) -> Result<Vec<RecordedEvent<P>>, Error>
where
    P: for<'a> tokio_postgres::types::FromSql<'a>,
{
    rows.iter().map(row_to_event).collect()
}

/// Seals every event of `calls`, in order, with one signature (`seal.rs`):
/// a write of many commands or many events pays for one.
fn seal_calls<'c, 'a: 'c>(
    key: Option<&SignerKey>,
    calls: impl IntoIterator<Item = &'c mut AppendCall<'a>>,
) {
    let slots = calls.into_iter().flat_map(|call| {
        let digests = call
            .digests
            .iter()
            .map(|d| <&[u8; 32]>::try_from(d.as_slice()).expect("a content digest is 32 bytes"));
        digests.zip(call.seals.iter_mut())
    });
    seal_write(key, slots);
}

/// The arguments of one `trellis.append_events` call, borrowed from the caller's events.
struct AppendCall<'a> {
    stream: &'a StreamId,
    expected: ExpectedVersion,
    expected_param: i64,
    command_id: Uuid,
    event_ids: Vec<Uuid>,
    types: Vec<&'a str>,
    versions: Vec<i32>,
    payloads: Vec<&'a serde_json::Value>,
    occurred: Vec<DateTime<Utc>>,
    digests: Vec<Vec<u8>>,
    seals: Vec<Option<Vec<u8>>>,
}

impl<'a> AppendCall<'a> {
    fn new(
        stream: &'a StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        command_id: Uuid,
        events: &'a [NewEvent],
        scratch: &mut Vec<u8>,
    ) -> Result<Self, Error> {
        let expected_param = match expected {
            ExpectedVersion::Any => -1,
            ExpectedVersion::Exact(v) => to_i64(v, "expected version")?,
        };
        let mut call = AppendCall {
            stream,
            expected,
            expected_param,
            command_id,
            event_ids: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            versions: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            occurred: Vec::with_capacity(events.len()),
            digests: Vec::with_capacity(events.len()),
            seals: Vec::with_capacity(events.len()),
        };
        for event in events {
            let occurred_at = to_micros_precision(event.occurred_at);
            let digest = digest_of_new(stream, meta, command_id, event, scratch);
            call.seals.push(None);
            call.digests.push(digest.to_vec());
            call.event_ids.push(event.event_id);
            call.types.push(&event.event_type);
            call.versions.push(i32::from(event.schema_version));
            call.payloads.push(&event.payload);
            call.occurred.push(occurred_at);
        }
        Ok(call)
    }

    async fn run(
        &self,
        client: &impl GenericClient,
        statement: &Statement,
        meta: &CommandMeta,
        request_hash: Option<&[u8]>,
    ) -> Result<Row, tokio_postgres::Error> {
        client
            .query_one(
                statement,
                &[
                    &self.stream.as_str(),
                    &self.expected_param,
                    &self.command_id,
                    &meta.actor,
                    &meta.correlation_id,
                    &meta.causation_id,
                    &meta.recorded_at,
                    &self.event_ids,
                    &self.types,
                    &self.versions,
                    &self.payloads,
                    &self.occurred,
                    &self.digests,
                    &request_hash,
                    &self.seals,
                    &meta.traceparent.as_ref().map(TraceParent::as_str),
                ],
            )
            .await
    }
}

impl AppendCall<'_> {
    /// [`APPEND_ONE_SQL`] for a call of one event.
    async fn run_one(
        &self,
        client: &impl GenericClient,
        statement: &Statement,
        meta: &CommandMeta,
        request_hash: Option<&[u8]>,
    ) -> Result<Row, tokio_postgres::Error> {
        client
            .query_one(
                statement,
                &[
                    &self.stream.as_str(),
                    &self.expected_param,
                    &self.command_id,
                    &meta.actor,
                    &meta.correlation_id,
                    &meta.causation_id,
                    &meta.recorded_at,
                    &self.event_ids[0],
                    &self.types[0],
                    &self.versions[0],
                    &self.payloads[0],
                    &self.occurred[0],
                    &self.digests[0],
                    &request_hash,
                    &self.seals[0],
                    &meta.traceparent.as_ref().map(TraceParent::as_str),
                ],
            )
            .await
    }
}

/// The calls of a group commit that go in its one `trellis.append_batch`
/// statement (migration 0007): those of one event whose stream and command
/// id no earlier call of the batch has. A stream's later calls then see its
/// earlier ones' writes, and a command id sent twice cannot fail the
/// statement. Their arguments as arrays, the i-th element of each for the
/// i-th of them.
struct Together<'a> {
    member: Vec<bool>,
    streams: Vec<&'a str>,
    expected: Vec<i64>,
    command_ids: Vec<Uuid>,
    actors: Vec<&'a str>,
    correlation_ids: Vec<Uuid>,
    causation_ids: Vec<Option<Uuid>>,
    recorded_at: Vec<DateTime<Utc>>,
    event_ids: Vec<Uuid>,
    types: Vec<&'a str>,
    versions: Vec<i32>,
    payloads: Vec<&'a serde_json::Value>,
    occurred: Vec<DateTime<Utc>>,
    digests: Vec<&'a [u8]>,
    request_hashes: Vec<Option<&'a [u8]>>,
    seals: Vec<Option<&'a [u8]>>,
    traceparents: Vec<Option<&'a str>>,
}

impl<'a> Together<'a> {
    /// `None` when fewer than two calls qualify: one goes as fast alone.
    fn of(
        calls: &'a [(&CommandMeta, AppendCall<'_>)],
        hashes: &'a [Option<[u8; 32]>],
    ) -> Option<Self> {
        let mut streams = std::collections::HashSet::with_capacity(calls.len());
        let mut commands = std::collections::HashSet::with_capacity(calls.len());
        let member: Vec<bool> = calls
            .iter()
            .map(|(_, call)| {
                let first_of_stream = streams.insert(call.stream.as_str());
                let first_of_command = commands.insert(call.command_id);
                first_of_stream && first_of_command && call.event_ids.len() == 1
            })
            .collect();
        let n = member.iter().filter(|m| **m).count();
        if n < 2 {
            return None;
        }
        let mut t = Together {
            member,
            streams: Vec::with_capacity(n),
            expected: Vec::with_capacity(n),
            command_ids: Vec::with_capacity(n),
            actors: Vec::with_capacity(n),
            correlation_ids: Vec::with_capacity(n),
            causation_ids: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            event_ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            occurred: Vec::with_capacity(n),
            digests: Vec::with_capacity(n),
            request_hashes: Vec::with_capacity(n),
            seals: Vec::with_capacity(n),
            traceparents: Vec::with_capacity(n),
        };
        for (((meta, call), hash), _) in calls
            .iter()
            .zip(hashes)
            .zip(&t.member)
            .filter(|(_, member)| **member)
        {
            t.streams.push(call.stream.as_str());
            t.expected.push(call.expected_param);
            t.command_ids.push(call.command_id);
            t.actors.push(&meta.actor);
            t.correlation_ids.push(meta.correlation_id);
            t.causation_ids.push(meta.causation_id);
            t.recorded_at.push(meta.recorded_at);
            t.event_ids.push(call.event_ids[0]);
            t.types.push(call.types[0]);
            t.versions.push(call.versions[0]);
            t.payloads.push(call.payloads[0]);
            t.occurred.push(call.occurred[0]);
            t.digests.push(&call.digests[0]);
            t.request_hashes.push(hash.as_ref().map(|h| &h[..]));
            t.seals.push(call.seals[0].as_deref());
            t.traceparents
                .push(meta.traceparent.as_ref().map(TraceParent::as_str));
        }
        Some(t)
    }

    /// Whether the batch's `i`-th call is one of these.
    fn has(&self, i: usize) -> bool {
        self.member[i]
    }

    /// [`APPEND_BATCH_SQL`]'s parameters.
    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 16] {
        [
            &self.streams,
            &self.expected,
            &self.command_ids,
            &self.actors,
            &self.correlation_ids,
            &self.causation_ids,
            &self.recorded_at,
            &self.event_ids,
            &self.types,
            &self.versions,
            &self.payloads,
            &self.occurred,
            &self.digests,
            &self.request_hashes,
            &self.seals,
            &self.traceparents,
        ]
    }
}

/// What one `append_one` row says; `None` when the command was recorded
/// before (its outcome is then looked up).
fn read_one_result(row: &Row, expected: ExpectedVersion, meta: &CommandMeta) -> Option<CallResult> {
    let replayed: bool = row.get(0);
    let head: i64 = row.get(1);
    let head = u64::try_from(head).unwrap_or_default();
    let position: Option<i64> = row.get(2);
    match (replayed, position) {
        (true, _) => None,
        (false, Some(position)) => {
            let position = u64::try_from(position).unwrap_or_default();
            Some(CallResult::Done(AppendOutcome {
                stream_version: head + 1,
                first_position: position,
                last_position: position,
                replayed: false,
                request_hash: meta.request_hash,
            }))
        }
        (false, None) => Some(match expected {
            ExpectedVersion::Exact(v) if v != head => CallResult::Conflict { current: head },
            // Lost the race for version head + 1 to another writer.
            _ => CallResult::Conflict { current: head + 1 },
        }),
    }
}

const APPEND_SQL: &str = "SELECT outcome, stream_version, first_position, last_position, request_hash \
    FROM trellis.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// Polls `future` once (which sends its request) and says what it gave.
async fn poll_once<F: std::future::Future + ?Sized>(
    mut future: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx))).await
}

/// The output of `future`, which [`poll_once`] polled with `polled` as
/// its outcome: that outcome when it was ready (the future is not polled
/// again), else what the future comes to.
async fn finish<F: std::future::Future + ?Sized>(
    polled: std::task::Poll<F::Output>,
    future: std::pin::Pin<&mut F>,
) -> F::Output {
    match polled {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => future.await,
    }
}

/// Opens a group commit's transaction ([`PostgresStore::commit_batch`]).
const BEGIN_BATCH_SQL: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ";

/// One event, one statement: the hot path of every command. The same rules
/// as `trellis.append_events` (command id recorded once, expected version,
/// hash chain) without PL/pgSQL or arrays, in the SQL function
/// `trellis.append_one` (migration 0003), which runs with its owner's
/// rights: the runtime role may not INSERT into the log itself. The event
/// insert is the statement's only write, made after the head was read, so
/// the transaction gets its id after the head it extends was committed
/// (ADR 1).
const APPEND_ONE_SQL: &str = "SELECT replayed, head, inserted FROM trellis.append_one(\
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// A group commit's calls of one event each, in one statement
/// (`trellis.append_batch`, migration 0007): one row per call, in order,
/// as [`APPEND_ONE_SQL`] gives for one.
const APPEND_BATCH_SQL: &str = "SELECT replayed, head, inserted FROM trellis.append_batch(\
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// What one `append_events` row says.
enum CallResult {
    Done(AppendOutcome),
    Conflict { current: u64 },
}

fn read_call_result(row: &Row) -> Result<CallResult, Error> {
    let outcome: &str = row.get(0);
    let version: i64 = row.get(1);
    let version = u64::try_from(version).unwrap_or_default();
    match outcome {
        "conflict" => Ok(CallResult::Conflict { current: version }),
        "appended" | "replayed" => {
            let first: i64 = row.get(2);
            let last: i64 = row.get(3);
            let request_hash: Option<&[u8]> = row.get(4);
            Ok(CallResult::Done(AppendOutcome {
                stream_version: version,
                first_position: u64::try_from(first).unwrap_or_default(),
                last_position: u64::try_from(last).unwrap_or_default(),
                replayed: outcome == "replayed",
                request_hash: request_hash.and_then(Hash::from_slice),
            }))
        }
        other => Err(Error::Internal(format!("append_events answered {other:?}"))),
    }
}

/// An interleaved append (40001), or a concurrent append of the same
/// command id (23505 on `events_command`): calling again settles it.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::T_R_SERIALIZATION_FAILURE => true,
        Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => {
            db.constraint() == Some("events_command")
        }
        _ => false,
    }
}

#[async_trait]
impl EventStore for PostgresStore {
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
        let meta = CommandMeta {
            recorded_at: to_micros_precision(meta.recorded_at),
            ..meta.clone()
        };
        let mut scratch = Vec::with_capacity(512);
        let mut call = AppendCall::new(
            stream,
            expected,
            &meta,
            meta.command_id,
            events,
            &mut scratch,
        )?;
        seal_calls(self.seal_key.as_deref(), [&mut call]);
        let request_hash = meta.request_hash.map(|h| h.0);
        let request_hash = request_hash.as_ref().map(|h| &h[..]);
        with_client!(self, |client| {
            let single = events.len() == 1;
            let statement = client
                .prepare_cached(if single { APPEND_ONE_SQL } else { APPEND_SQL })
                .await?;
            // Retried inside: a concurrent append of the same command, or an
            // interleaved write; and, for `Any`, losing the race for the next
            // version to another writer, since the caller did not care which
            // version it gets.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let result = if single {
                    call.run_one(&**client, &statement, &meta, request_hash)
                        .await
                } else {
                    call.run(&**client, &statement, &meta, request_hash).await
                };
                let row = match result {
                    Ok(row) => row,
                    Err(e) if is_retryable(&e) && attempts < MAX_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                };
                let result = if single {
                    match read_one_result(&row, expected, &meta) {
                        Some(result) => result,
                        None => match recorded_command_on(&client, meta.command_id).await? {
                            Some(outcome) => CallResult::Done(outcome),
                            None => continue,
                        },
                    }
                } else {
                    read_call_result(&row)?
                };
                match result {
                    CallResult::Conflict { .. }
                        if expected == ExpectedVersion::Any && attempts < MAX_ATTEMPTS =>
                    {
                        continue;
                    }
                    CallResult::Conflict { current } => {
                        return Err(Error::Conflict {
                            stream: stream.clone(),
                            expected,
                            current,
                        });
                    }
                    CallResult::Done(outcome) => {
                        if !outcome.replayed {
                            self.inner.signal_append();
                        }
                        return Ok(outcome);
                    }
                }
            }
        })
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
        let meta = CommandMeta {
            recorded_at: to_micros_precision(meta.recorded_at),
            ..meta.clone()
        };
        let mut scratch = Vec::with_capacity(512);
        let mut calls = writes
            .iter()
            .map(|w| {
                let command_id = derived_command_id(meta.command_id, &w.stream);
                AppendCall::new(
                    &w.stream,
                    w.expected,
                    &meta,
                    command_id,
                    &w.events,
                    &mut scratch,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        seal_calls(self.seal_key.as_deref(), calls.iter_mut());
        let request_hash = meta.request_hash.map(|h| h.0);
        let request_hash = request_hash.as_ref().map(|h| &h[..]);
        with_client!(self, |client| {
            let statement = client.prepare_cached(APPEND_SQL).await?;
            let mut attempts = 0;
            'attempt: loop {
                attempts += 1;
                // Repeatable read: every stream head is read in the snapshot taken
                // before this transaction writes (and so before it has a
                // transaction id), which keeps each stream's versions in global
                // order (docs/adr/0001-global-order.md).
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .start()
                    .await?;
                let rows = futures_util::future::join_all(
                    calls
                        .iter()
                        .map(|c| c.run(&*tx, &statement, &meta, request_hash)),
                )
                .await;
                let mut outcomes = Vec::with_capacity(calls.len());
                for (call, row) in calls.iter().zip(rows) {
                    let row = match row {
                        Ok(row) => row,
                        Err(e) if is_retryable(&e) && attempts < MAX_ATTEMPTS => {
                            drop(tx);
                            continue 'attempt;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    match read_call_result(&row)? {
                        CallResult::Conflict { .. }
                            if call.expected == ExpectedVersion::Any && attempts < MAX_ATTEMPTS =>
                        {
                            drop(tx);
                            continue 'attempt;
                        }
                        CallResult::Conflict { current } => {
                            return Err(Error::Conflict {
                                stream: call.stream.clone(),
                                expected: call.expected,
                                current,
                            });
                        }
                        CallResult::Done(outcome) => outcomes.push(outcome),
                    }
                }
                match tx.commit().await {
                    Ok(()) => {}
                    Err(e) if is_retryable(&e) && attempts < MAX_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
                if outcomes.iter().any(|o| !o.replayed) {
                    self.inner.signal_append();
                }
                return Ok(outcomes);
            }
        })
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
        let metas: Vec<CommandMeta> = requests
            .iter()
            .map(|r| CommandMeta {
                recorded_at: to_micros_precision(r.meta.recorded_at),
                ..r.meta.clone()
            })
            .collect();
        let mut outcomes: Vec<Option<Result<AppendOutcome, Error>>> =
            requests.iter().map(|_| None).collect();
        let mut scratch = Vec::with_capacity(512);
        let mut calls = Vec::with_capacity(requests.len());
        for (i, (r, meta)) in requests.iter().zip(&metas).enumerate() {
            let call = validate_append(&r.events, meta).and_then(|()| {
                AppendCall::new(
                    &r.stream,
                    r.expected,
                    meta,
                    meta.command_id,
                    &r.events,
                    &mut scratch,
                )
            });
            match call {
                Ok(call) => calls.push((meta, call)),
                Err(e) => outcomes[i] = Some(Err(e)),
            }
        }
        // One signature for the whole batch.
        seal_calls(
            self.seal_key.as_deref(),
            calls.iter_mut().map(|(_, call)| call),
        );
        match self.commit_batch(&calls).await {
            Ok(settled) => {
                let mut settled = settled.into_iter();
                for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
                    *outcome = settled.next().flatten();
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "a group commit failed; appending its commands one by one");
            }
        }
        // What the batch left open (it failed as a whole, a command was a
        // replay, or an `Any` lost a race): one by one, in order, so
        // commands to one stream still apply in the order given.
        let mut answers = Vec::with_capacity(requests.len());
        for (r, outcome) in requests.iter().zip(outcomes) {
            answers.push(match outcome {
                Some(outcome) => outcome,
                None => self.append(&r.stream, r.expected, &r.meta, &r.events).await,
            });
        }
        answers
    }

    #[tracing::instrument(name = "event_store.recorded_command", skip_all, err)]
    async fn recorded_command(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, Error> {
        with_client!(self, |client| {
            recorded_command_on(&client, command_id).await
        })
    }

    #[tracing::instrument(name = "event_store.load_checkpoint", skip_all, fields(name), err)]
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached(
                    "SELECT tx, position FROM trellis.subscriber_checkpoints WHERE name = $1",
                )
                .await?;
            Ok(client.query_opt(&statement, &[&name]).await?.map(|row| {
                let tx: i64 = row.get(0);
                let position: i64 = row.get(1);
                Checkpoint {
                    tx: u64::try_from(tx).unwrap_or_default(),
                    position: u64::try_from(position).unwrap_or_default(),
                }
            }))
        })
    }

    #[tracing::instrument(name = "event_store.save_checkpoint", skip_all, fields(name), err)]
    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached(
                    "INSERT INTO trellis.subscriber_checkpoints (name, tx, position) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET tx = excluded.tx, position = excluded.position, \
                     updated_at = now()",
                )
                .await?;
            let tx = to_i64(checkpoint.tx, "checkpoint")?;
            let position = to_i64(checkpoint.position, "checkpoint")?;
            client.execute(&statement, &[&name, &tx, &position]).await?;
            Ok(())
        })
    }

    #[tracing::instrument(name = "event_store.stream_version", skip_all, fields(stream = %stream), err)]
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached(
                    "SELECT coalesce(max(stream_version), 0) FROM trellis.events WHERE stream_id = $1",
                )
                .await?;
            let row = client.query_one(&statement, &[&stream.as_str()]).await?;
            let version: i64 = row.get(0);
            Ok(u64::try_from(version).unwrap_or_default())
        })
    }

    #[tracing::instrument(name = "event_store.read_stream", skip_all, fields(stream = %stream), err)]
    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM trellis.events \
                     WHERE stream_id = $1 AND stream_version > $2 \
                     ORDER BY stream_version LIMIT $3"
                ))
                .await?;
            let after = to_i64(after_version, "version")?;
            let rows = client
                .query(&statement, &[&stream.as_str(), &after, &limit(max)])
                .await?;
            rows_to_events(&rows)
        })
    }

    #[tracing::instrument(name = "event_store.read_all", skip_all, fields(after = %after), err)]
    async fn read_all(&self, after: Checkpoint, max: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.read_all_as(READ_ALL_SQL, after, max).await
    }

    #[tracing::instrument(name = "event_store.read_all_json", skip_all, fields(after = %after), err)]
    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, Error> {
        self.read_all_as(READ_ALL_JSON_SQL, after, max).await
    }

    #[tracing::instrument(name = "event_store.head", skip_all, err)]
    async fn head(&self) -> Result<Checkpoint, Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached(
                    "SELECT tx_id, global_position FROM trellis.events \
                     WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY tx_id DESC, global_position DESC LIMIT 1",
                )
                .await?;
            Ok(match client.query_opt(&statement, &[]).await? {
                Some(row) => {
                    let tx: Xid8 = row.get(0);
                    let position: i64 = row.get(1);
                    Checkpoint {
                        tx: tx.0,
                        position: u64::try_from(position).unwrap_or_default(),
                    }
                }
                None => Checkpoint::START,
            })
        })
    }

    #[tracing::instrument(name = "event_store.settled_head", skip_all, err)]
    async fn settled_head(&self) -> Result<Checkpoint, Error> {
        with_client!(self, |client| {
            // Every transaction running now has an id below the snapshot's
            // xmax; once the oldest still running is at or past it, all of
            // them have ended, and every write that returned before is
            // under the readers' horizon.
            let statement = client
                .prepare_cached(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot()),                             pg_snapshot_xmax(pg_current_snapshot())",
                )
                .await?;
            let row = client.query_one(&statement, &[]).await?;
            let barrier: Xid8 = row.get(1);
            let mut oldest: Xid8 = row.get(0);
            let mut pause = crate::exclusive::Pause::up_to(std::time::Duration::from_millis(20));
            while oldest.0 < barrier.0 {
                pause.wait().await;
                oldest = client.query_one(&statement, &[]).await?.get(0);
            }
            Ok(())
        })?;
        self.head().await
    }

    #[tracing::instrument(name = "event_store.scan_streams", skip_all, err)]
    async fn scan_streams(
        &self,
        after: Option<(StreamId, u64)>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM trellis.events \
                     WHERE (stream_id, stream_version) > ($1, $2) \
                     ORDER BY stream_id, stream_version LIMIT $3"
                ))
                .await?;
            let (stream, version) = match &after {
                Some((stream, version)) => (stream.as_str(), to_i64(*version, "version")?),
                None => ("", 0),
            };
            let rows = client
                .query(&statement, &[&stream, &version, &limit(max)])
                .await?;
            rows_to_events(&rows)
        })
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }

    async fn ping(&self) -> Result<(), Error> {
        with_client!(self, |client| {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }

    async fn tree_state(&self) -> Result<crate::tree::TreeState, Error> {
        with_client!(self, |client| { tree::state(&**client).await })
    }

    async fn read_leaves(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<crate::tree::Leaf>, Error> {
        with_client!(self, |client| {
            let statement = client.prepare_cached(READ_LEAVES_SQL).await?;
            let position = to_i64(after.position, "position")?;
            let rows = client
                .query(&statement, &[&Xid8(after.tx), &position, &limit(max)])
                .await?;
            rows.iter()
                .map(|row| {
                    let tx: Xid8 = row.get(0);
                    let position = u64::try_from(row.get::<_, i64>(1)).unwrap_or_default();
                    let hash: &[u8] = row.get(2);
                    Ok(crate::tree::Leaf {
                        checkpoint: Checkpoint { tx: tx.0, position },
                        global_position: position,
                        hash: Hash::from_slice(hash).ok_or_else(|| {
                            Error::Internal("a stored event hash is not 32 bytes".into())
                        })?,
                    })
                })
                .collect()
        })
    }

    #[tracing::instrument(name = "event_store.extend_tree", skip_all, fields(leaves = extension.leaves.len()), err)]
    async fn extend_tree(&self, extension: &crate::tree::TreeExtension) -> Result<(), Error> {
        with_client!(self, |client| {
            tree::extend(&mut client, extension).await
        })
    }

    async fn tree_nodes(&self, ids: &[crate::merkle::NodeId]) -> Result<Vec<Option<Hash>>, Error> {
        with_client!(self, |client| { tree::nodes(&**client, ids).await })
    }

    async fn tree_leaf_range(&self, from: u64, max: usize) -> Result<Vec<(u64, u64, Hash)>, Error> {
        with_client!(self, |client| {
            tree::leaf_range(&**client, from, max).await
        })
    }

    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, Error> {
        with_client!(self, |client| {
            tree::leaf_indexes(&**client, positions).await
        })
    }

    async fn record_tree_checkpoint(
        &self,
        checkpoint: &crate::tree::StoredCheckpoint,
    ) -> Result<(), Error> {
        with_client!(self, |client| { tree::record(&**client, checkpoint).await })
    }

    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<crate::tree::StoredCheckpoint>, Error> {
        with_client!(self, |client| {
            tree::checkpoints(&**client, after_size, max).await
        })
    }

    async fn latest_tree_checkpoint(&self) -> Result<Option<crate::tree::StoredCheckpoint>, Error> {
        with_client!(self, |client| { tree::latest(&**client).await })
    }

    #[tracing::instrument(name = "event_store.exclusive", skip(self), err)]
    async fn exclusive(&self, scope: &str) -> Result<crate::Exclusive, Error> {
        // This process's turn first, then the database's: a session lock on
        // a connection taken out of the pool until the guard lets go
        // ([`AdvisoryLock`]); a try that does not take it gives its
        // connection back at once.
        let turn = self.inner.exclusive.enter(scope).await?;
        let lock = crate::exclusive::take(scope, || async {
            let session = Session(Some(self.client().await?));
            let client = session.client()?;
            let tried = async {
                let statement = client.prepare_cached(TRY_LOCK_SQL).await?;
                Ok::<bool, Error>(client.query_one(&statement, &[&scope]).await?.get(0))
            }
            .await;
            match tried {
                Ok(true) => Ok(Some(AdvisoryLock {
                    session: Some(session),
                    scope: scope.to_owned(),
                })),
                Ok(false) => {
                    session.give_back();
                    Ok(None)
                }
                // A connection the server closed (a restart, a failover):
                // the session is closed with it; try on another.
                Err(Error::Unavailable(reason)) if !connection_alive(client).await => {
                    tracing::debug!(%reason, "a pooled connection was closed; trying another");
                    Ok(None)
                }
                // Whether a failed try took the lock is unknown: the
                // session is closed, which lets go of whatever it holds.
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(crate::Exclusive::new((lock, turn)))
    }
}

/// [`EventStore::exclusive`]'s lock: an advisory lock in a key space of its
/// own (the first key), so no scope's hash meets the migrations' or the
/// tree's single-key locks.
const TRY_LOCK_SQL: &str = "SELECT pg_try_advisory_lock(1414679635, hashtext($1))";
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock(1414679635, hashtext($1))";

/// A pooled connection that may hold an advisory lock: dropped, it is
/// closed, never given back to the pool, so no lock outlives what held it
/// on a connection someone else then draws (a try or an unlock cancelled
/// midway, a runtime shutting down). [`Session::give_back`] returns it to
/// the pool once it is known to hold nothing.
struct Session(Option<deadpool_postgres::Object>);

impl Session {
    fn client(&self) -> Result<&deadpool_postgres::Object, Error> {
        self.0
            .as_ref()
            .ok_or_else(|| Error::Internal("a session used after it was given back".into()))
    }

    fn give_back(mut self) {
        // Dropped here, the pool takes it back.
        drop(self.0.take());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// A held advisory lock and the session that holds it. Dropped, it unlocks
/// on a task of its own and gives the connection back to the pool; a
/// session that could not unlock (an error, the task dropped, no runtime)
/// is closed, which lets go too.
struct AdvisoryLock {
    session: Option<Session>,
    scope: String,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let scope = std::mem::take(&mut self.scope);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let unlocked = async {
                let client = session.client()?;
                let statement = client.prepare_cached(UNLOCK_SQL).await?;
                client.query_one(&statement, &[&scope]).await?;
                Ok::<(), Error>(())
            }
            .await;
            match unlocked {
                Ok(()) => session.give_back(),
                Err(e) => {
                    tracing::warn!(error = %e, %scope, "could not unlock a scope; closing its connection");
                }
            }
        });
    }
}

/// The outcome of a recorded command, read on a connection the caller holds
/// (an append that finds its command already recorded asks on its own
/// connection: taking a second one from the pool could wait forever when
/// every connection is held by such an append).
async fn recorded_command_on(
    client: &deadpool_postgres::Object,
    command_id: Uuid,
) -> Result<Option<AppendOutcome>, Error> {
    let statement = client
        .prepare_cached(
            "WITH first AS ( \
                 SELECT stream_id, request_hash FROM trellis.events \
                 WHERE command_id = $1 AND command_first) \
             SELECT max(e.stream_version), min(e.global_position), max(e.global_position), \
                    (SELECT request_hash FROM first) \
             FROM trellis.events e JOIN first f ON e.stream_id = f.stream_id \
             WHERE e.command_id = $1",
        )
        .await?;
    let row = client.query_one(&statement, &[&command_id]).await?;
    let version: Option<i64> = row.get(0);
    let first: Option<i64> = row.get(1);
    let last: Option<i64> = row.get(2);
    let request_hash: Option<&[u8]> = row.get(3);
    Ok(match (version, first, last) {
        (Some(version), Some(first), Some(last)) => Some(AppendOutcome {
            stream_version: u64::try_from(version).unwrap_or_default(),
            first_position: u64::try_from(first).unwrap_or_default(),
            last_position: u64::try_from(last).unwrap_or_default(),
            replayed: true,
            request_hash: request_hash.and_then(Hash::from_slice),
        }),
        _ => None,
    })
}

/// The keys of `persons` after adding `fresh` as the keys of those who
/// have none: the rows of `select` read right after the insert, which
/// hold the keys it added, the ones that were there, and the ones another
/// writer added meanwhile (the insert waited for those and left them be).
///
/// The transaction commits without waiting for its flush
/// (`synchronous_commit = off`): a new key need only be durable once a
/// write that depends on it is. The vault makes it just before it
/// encrypts a command with it, and that command's commit, which waits for
/// its flush, flushes the WAL up to itself, the key's earlier commit
/// included; after a crash before it, the key is lost but so is every use
/// of it. Waiting for a flush of its own for each new person held up
/// every command about one, and at eight writers the batch gathering for
/// it (`trellis-bench append`, the private lines, which make keys for each
/// round's new reps). The embedded file does the same (`unflushed` in
/// `sqlite.rs`). BEGIN, the insert, the read and COMMIT go out together:
/// one round trip.
async fn make_keys(
    client: &deadpool_postgres::Object,
    select: &tokio_postgres::Statement,
    persons: &[Uuid],
    fresh: &[crate::vault::DataKey],
) -> Result<Vec<Row>, Error> {
    let insert = client
        .prepare_cached(
            "INSERT INTO trellis.personal_data_keys (person, data_key, created_at) \
             SELECT u.person, u.data_key, now() \
             FROM unnest($1::uuid[], $2::bytea[]) AS u(person, data_key) \
             ON CONFLICT (person) DO NOTHING",
        )
        .await?;
    let keys: Vec<&[u8]> = fresh.iter().map(|k| &k.0[..]).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&persons, &keys];
    let client: &tokio_postgres::Client = client;
    let mut begin =
        std::pin::pin!(client.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"));
    let begun = poll_once(begin.as_mut()).await;
    let mut add = std::pin::pin!(client.execute(&insert, &params));
    let added = poll_once(add.as_mut()).await;
    let wanted: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&persons];
    let mut read = std::pin::pin!(client.query(select, &wanted));
    let rows = poll_once(read.as_mut()).await;
    // Sent whatever comes of the others: after an error it ends the
    // transaction as a rollback, so the connection goes back to the pool
    // outside any transaction. The answers are awaited in the order they
    // come.
    let mut commit = std::pin::pin!(client.batch_execute("COMMIT"));
    let committed = poll_once(commit.as_mut()).await;
    let begun = finish(begun, begin.as_mut()).await;
    let added = finish(added, add.as_mut()).await;
    let rows = finish(rows, read.as_mut()).await;
    let committed = finish(committed, commit.as_mut()).await;
    begun?;
    added?;
    let rows = rows?;
    committed?;
    Ok(rows)
}

#[async_trait]
impl crate::vault::KeyStore for PostgresStore {
    async fn data_keys(
        &self,
        persons: &[Uuid],
        make_missing: bool,
    ) -> Result<std::collections::HashMap<Uuid, crate::vault::KeyState>, Error> {
        use crate::vault::{DataKey, KeyState};
        with_client!(self, |client| {
            let select = client
                .prepare_cached(
                    "SELECT person, data_key, erased_at FROM trellis.personal_data_keys \
                     WHERE person = ANY($1)",
                )
                .await?;
            let read =
                |rows: Vec<Row>| -> Result<std::collections::HashMap<Uuid, KeyState>, Error> {
                    rows.iter()
                        .map(|row| {
                            let person: Uuid = row.get(0);
                            let key: Option<Vec<u8>> = row.get(1);
                            let erased_at: Option<DateTime<Utc>> = row.get(2);
                            let state = match (key, erased_at) {
                                (_, Some(at)) => KeyState::Erased(at),
                                (Some(key), None) => {
                                    KeyState::Live(DataKey(key.try_into().map_err(|_| {
                                        Error::Internal(format!(
                                            "the data key of {person} is not 32 bytes"
                                        ))
                                    })?))
                                }
                                (None, None) => {
                                    return Err(Error::Internal(format!(
                                        "the data key of {person} is missing but not erased"
                                    )));
                                }
                            };
                            Ok((person, state))
                        })
                        .collect()
                };
            let rows = if make_missing {
                let fresh = persons
                    .iter()
                    .map(|_| DataKey::generate())
                    .collect::<Result<Vec<_>, _>>()?;
                make_keys(&client, &select, persons, &fresh).await?
            } else {
                client.query(&select, &[&persons]).await?
            };
            let keys = read(rows)?;
            Ok(keys)
        })
    }

    async fn erase_data_key(
        &self,
        person: Uuid,
        at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Error> {
        with_client!(self, |client| {
            let statement = client
                .prepare_cached("SELECT trellis.erase_data_key($1, $2)")
                .await?;
            Ok(client.query_one(&statement, &[&person, &at]).await?.get(0))
        })
    }
}
