//! The append-only, hash-chained event log of Trellis.
//!
//! This crate owns the log: how events are appended (atomically per stream,
//! with an expected version, idempotently per command id), how they are read
//! back (per stream, or the whole log in global order from a checkpoint), how
//! readers wake up when something new is written, and how the log proves it was
//! not tampered with (a hash chain per stream, checked by [`verify`]).
//!
//! It knows nothing of the domain: payloads are JSON with a type name and a
//! schema version. Turning them into domain events (and upcasting old
//! versions) is the caller's business. It must not grow HTTP, broker or
//! projection concerns.
//!
//! # Layout
//! - [`EventStore`]: the one trait every backend implements.
//! - [`postgres::PostgresStore`]: production backend (schema `trellis`,
//!   appends through one stored function, readers woken by LISTEN/NOTIFY).
//! - [`sqlite::SqliteStore`]: the embedded single-file backend used when no
//!   database URL is configured.
//! - [`chain`]: canonical encoding, hashing and the [`chain::Verifier`].
//! - [`Follower`]: tails the log from a checkpoint, waking on appends.
//!
//! Both backends pass the same conformance suite (`tests/src/eventstore.rs`).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

mod ahead;
pub mod chain;
mod cores;
/// The database drivers, for [`from_database_errors!`].
#[doc(hidden)]
pub mod drivers {
    pub use deadpool_postgres;
    pub use rusqlite;
    pub use tokio_postgres;
}
mod error;
pub mod evidence;
pub mod exclusive;
mod group;
pub mod guards;
pub mod merkle;
pub mod note;
pub mod postgres;
mod seal;
mod segment;
pub mod sqlite;
pub mod tree;
mod types;
pub mod vault;

pub use ahead::ReadAhead;
pub use chain::{Finding, Problem, VerifyReport};
pub use error::postgres_error_text;
pub use exclusive::Exclusive;
pub use group::{GroupCommit, GroupCommitConfig, GroupCommitStats};
pub use types::{
    AppendOutcome, AppendRequest, Checkpoint, CommandMeta, ContentDigest, Error, ExpectedVersion,
    Hash, MAX_STREAM_ID_LEN, Metadata, NewEvent, RecordedEvent, Seal, StreamId, StreamWrite,
    TraceParent, entity_uuid,
};

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;

/// The log. Both backends behave identically; the conformance suite holds them to it.
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    /// Appends `events` to `stream` atomically, after checking `expected`.
    ///
    /// - A stale `expected` is [`Error::Conflict`] carrying the current
    ///   version; nothing is written.
    /// - A `meta.command_id` that was appended before records nothing and
    ///   returns the first append's outcome with `replayed: true`.
    /// - `events` must not be empty.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error>;

    /// [`EventStore::append`] of a command its caller hands over, so that a
    /// store that keeps it — to encrypt it in place (the vault) or to write
    /// it on another task (group commit) — takes it rather than a copy of
    /// its payloads. The answer is exactly `append`'s; the default appends
    /// it by reference.
    async fn append_owned(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        self.append(
            &request.stream,
            request.expected,
            &request.meta,
            &request.events,
        )
        .await
    }

    /// Appends to several streams atomically: every write or none.
    ///
    /// Each stream's part is recorded under its own command id,
    /// [`derived_command_id`]`(meta.command_id, stream)`, so the same call
    /// retried records once and returns the first outcomes (`replayed`).
    /// A stale expected version anywhere is a conflict and writes nothing;
    /// `Any` parts are retried as in [`EventStore::append`]. Outcomes are in
    /// the order of `writes`. A stream may appear only once.
    async fn append_many(
        &self,
        meta: &CommandMeta,
        writes: &[StreamWrite],
    ) -> Result<Vec<AppendOutcome>, Error>;

    /// Appends several independent commands, each with its own stream,
    /// expected version and command id, and answers each on its own, in
    /// order, exactly as [`EventStore::append`] would have: a stale version
    /// or a replayed command id affects only that command, never its
    /// neighbours, and each command is all or nothing. Where the backend
    /// can, the whole batch shares one transaction and one commit (group
    /// commit, see [`GroupCommit`]). Commands for the same stream apply in
    /// the order given.
    ///
    /// The requests are the batch's own (a backend that writes on another
    /// thread moves them there, not a copy). The default runs them one
    /// after the other.
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, Error>> {
        let mut outcomes = Vec::with_capacity(requests.len());
        for r in &requests {
            outcomes.push(self.append(&r.stream, r.expected, &r.meta, &r.events).await);
        }
        outcomes
    }

    /// The outcome of the command with this id, if it was recorded (as the
    /// replay of an append under the same id would return it).
    async fn recorded_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<AppendOutcome>, Error>;

    /// Where the subscriber `name` stands, if it saved a checkpoint.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, Error>;

    /// Saves where the subscriber `name` stands (overwriting the previous one).
    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), Error>;

    /// The stream's current version (0 when it has no events).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, Error>;

    /// Up to `max` events of `stream` with a version greater than `after_version`, in version order.
    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error>;

    /// Up to `max` events after `after` in global order.
    ///
    /// A reader that passes back the checkpoint of the last event it got
    /// never skips an event and never sees one twice, even when concurrent
    /// appends commit out of order: an event only becomes readable once no
    /// earlier-ordered event can still appear.
    async fn read_all(&self, after: Checkpoint, max: usize) -> Result<Vec<RecordedEvent>, Error>;

    /// [`EventStore::read_all`] with each payload as the JSON text the log
    /// holds, not parsed: for a reader that decodes payloads into types of
    /// its own (the relay) and would only throw the parsed form away.
    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, Error> {
        let events = self.read_all(after, max).await?;
        Ok(events
            .into_iter()
            .map(|event| event.map_payload(|payload| payload.to_string()))
            .collect())
    }

    /// The checkpoint of the last readable event ([`Checkpoint::START`] for an empty log)
    /// and the highest global position written.
    async fn head(&self) -> Result<Checkpoint, Error>;

    /// [`EventStore::head`] once every write that had returned when it was
    /// called is readable: on PostgreSQL, where [`EventStore::head`] stops
    /// short of transactions still running (ADR 1), it first waits for
    /// every transaction running at the call to end. For a caller that must
    /// see the log with its own write in it (a form waiting for the read
    /// models to show what it recorded); bound it with a timeout.
    async fn settled_head(&self) -> Result<Checkpoint, Error>;

    /// Up to `max` events ordered by stream id, then version, starting after
    /// `after` (a stream id and version). Used by audits, which check one
    /// stream's chain at a time.
    async fn scan_streams(
        &self,
        after: Option<(StreamId, u64)>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error>;

    /// A signal that changes whenever something may have been appended
    /// (by this process or, where the backend can tell, another). Readers
    /// use it to wake promptly instead of polling.
    fn appended(&self) -> watch::Receiver<u64>;

    /// Whether the store answers right now.
    async fn ping(&self) -> Result<(), Error>;

    /// Where the log's stored Merkle tree stands ([`tree`]).
    async fn tree_state(&self) -> Result<tree::TreeState, Error>;

    /// What the tree takes of the events after `after` (at most `max`, in
    /// [`EventStore::read_all`]'s order): each one's checkpoint, position
    /// and hash. The stores read only those columns, not the payloads and
    /// metadata the tree never looks at; a store that wraps another hands
    /// the call on.
    async fn read_leaves(&self, after: Checkpoint, max: usize) -> Result<Vec<tree::Leaf>, Error> {
        let events = self.read_all_json(after, max).await?;
        Ok(events.iter().map(tree::Leaf::of).collect())
    }

    /// Adds leaves to the stored tree, all or nothing. Refused (as
    /// unavailable, nothing written) when the tree is no longer
    /// `extension.from_size` leaves: another process built it meanwhile.
    async fn extend_tree(&self, extension: &tree::TreeExtension) -> Result<(), Error>;

    /// The tree's nodes `ids`, in order, as the store keeps them or hashes
    /// them from the leaves it keeps (`None` for a node it cannot give).
    async fn tree_nodes(&self, ids: &[merkle::NodeId]) -> Result<Vec<Option<Hash>>, Error>;

    /// Up to `max` stored leaves from leaf `from` on: `(leaf index, global
    /// position, leaf hash)`.
    async fn tree_leaf_range(&self, from: u64, max: usize) -> Result<Vec<(u64, u64, Hash)>, Error>;

    /// The leaf index of the event at each global position (`None` for an
    /// event not integrated yet).
    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, Error>;

    /// Keeps a signed checkpoint with the log (a second one for the same size
    /// and key is ignored).
    async fn record_tree_checkpoint(
        &self,
        checkpoint: &tree::StoredCheckpoint,
    ) -> Result<(), Error>;

    /// Up to `max` recorded checkpoints of a size above `after_size`, by size.
    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<tree::StoredCheckpoint>, Error>;

    /// The newest recorded checkpoint, if any.
    async fn latest_tree_checkpoint(&self) -> Result<Option<tree::StoredCheckpoint>, Error>;

    /// Holds `scope` (a category: `"team"`, `"standard"`) against every
    /// other writer of this log asking for it, in this process or another,
    /// until the guard is dropped; waits while another holds it, at most
    /// [`exclusive::MAX_WAIT`]. For a command that checks its entity
    /// against the others of its kind and then appends ([`exclusive`]).
    /// A store that wraps another hands the call on.
    async fn exclusive(&self, scope: &str) -> Result<Exclusive, Error>;
}

/// Checks every stream's hash chain in the store. Reads the whole log once.
#[tracing::instrument(name = "event_store.verify", skip_all, err)]
pub async fn verify(store: &dyn EventStore, page: usize) -> Result<VerifyReport, Error> {
    let mut verifier = chain::Verifier::new();
    scan_streams_after(store, None, page, |event| {
        verifier.check(&event);
        Ok::<_, Error>(ControlFlow::Continue(()))
    })
    .await?;
    Ok(verifier.finish())
}

/// Events per read of a stream, unless the caller picks another size.
pub const STREAM_PAGE: usize = 1_000;

/// Reads one stream from a version on, page by page: the one loop every
/// reader of a single stream uses (the write path folding an aggregate, the
/// read side replaying a rep), so where a read starts, when it stops and how
/// a failure surfaces are decided in one place.
///
/// Calls `each` with every event of `stream` whose version is greater than
/// `after`, in version order, reading `page` events at a time. Returns the
/// last version read (`after` when there was nothing new). Stops at the
/// first error, from the store or from `each`.
pub async fn read_stream_after<E>(
    store: &dyn EventStore,
    stream: &StreamId,
    after: u64,
    page: usize,
    mut each: impl FnMut(RecordedEvent) -> Result<(), E>,
) -> Result<u64, E>
where
    E: From<Error>,
{
    let page = page.max(1);
    let mut after = after;
    loop {
        let batch = store.read_stream(stream, after, page).await?;
        let Some(last) = batch.last() else {
            return Ok(after);
        };
        after = last.stream_version;
        let full = batch.len() == page;
        for event in batch {
            each(event)?;
        }
        if !full {
            return Ok(after);
        }
    }
}

/// Reads the log stream by stream ([`EventStore::scan_streams`]' order: by
/// stream, then version) from after `after` (`None`: from the start), page
/// by page: the one loop every scan of the whole log uses (verify, the
/// catalogue, a person's export, the tests' and benchmarks' counts).
///
/// Calls `each` with every event until it answers [`ControlFlow::Break`],
/// the log ends, or the first error, from the store or from `each`.
pub async fn scan_streams_after<E>(
    store: &dyn EventStore,
    after: Option<(StreamId, u64)>,
    page: usize,
    mut each: impl FnMut(RecordedEvent) -> Result<ControlFlow<()>, E>,
) -> Result<(), E>
where
    E: From<Error>,
{
    let page = page.max(1);
    let mut after = after;
    loop {
        let batch = store.scan_streams(after.take(), page).await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = Some((last.stream_id.clone(), last.stream_version));
        let full = batch.len() == page;
        for event in batch {
            if each(event)?.is_break() {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Tails the global log from a checkpoint: returns the next batch as soon as
/// there is one, waiting for an append signal (or, as a safety net, a poll
/// interval) when caught up.
#[derive(Debug)]
pub struct Follower {
    store: Arc<dyn EventStore>,
    checkpoint: Checkpoint,
    batch: usize,
    appended: watch::Receiver<u64>,
    poll: Duration,
}

impl Follower {
    /// How often a caught-up follower looks again without a signal. Signals
    /// can be missed (another process writing to the embedded file, a
    /// reconnecting listener, a horizon held back by an unrelated transaction).
    pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

    pub fn new(store: Arc<dyn EventStore>, from: Checkpoint, batch: usize) -> Self {
        let appended = store.appended();
        Follower {
            store,
            checkpoint: from,
            batch: batch.max(1),
            appended,
            poll: Self::DEFAULT_POLL,
        }
    }

    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Where the follower stands: the checkpoint of the last event it returned.
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint
    }

    /// The next non-empty batch, in global order, waiting as long as it takes.
    ///
    /// After an append signal, an empty read is retried after 5 ms, doubling
    /// up to the poll interval: on PostgreSQL a committed event only becomes
    /// readable once every older transaction of the cluster has ended, which
    /// sends no signal of its own.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, Error> {
        self.next_with(|store, after, max| store.read_all(after, max))
            .await
    }

    /// [`Follower::next_batch`] with payloads as JSON text
    /// ([`EventStore::read_all_json`]).
    pub async fn next_batch_json(&mut self) -> Result<Vec<RecordedEvent<String>>, Error> {
        self.next_with(|store, after, max| store.read_all_json(after, max))
            .await
    }

    async fn next_with<P>(
        &mut self,
        read: impl for<'a> Fn(&'a dyn EventStore, Checkpoint, usize) -> ReadFuture<'a, P>,
    ) -> Result<Vec<RecordedEvent<P>>, Error> {
        const FIRST_RETRY: Duration = Duration::from_millis(5);
        let mut retry: Option<Duration> = None;
        loop {
            // Mark the signal seen before reading, so an append that lands
            // after the read wakes the wait below.
            self.appended.borrow_and_update();
            let batch = read(&*self.store, self.checkpoint, self.batch).await?;
            if let Some(last) = batch.last() {
                self.checkpoint = last.checkpoint;
                return Ok(batch);
            }
            let wait = retry.unwrap_or(self.poll);
            tokio::select! {
                changed = self.appended.changed() => {
                    if changed.is_err() {
                        // The store went away; fall back to polling.
                        tokio::time::sleep(self.poll).await;
                    } else {
                        retry = Some(FIRST_RETRY);
                    }
                }
                () = tokio::time::sleep(wait) => {
                    retry = retry.map(|r| r * 2).filter(|r| *r < self.poll);
                }
            }
        }
    }
}

/// What [`EventStore`]'s reads return (the trait's methods are boxed futures).
type ReadFuture<'a, P> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<RecordedEvent<P>>, Error>> + Send + 'a>,
>;

/// The command id under which one stream's part of a multi-stream append is
/// recorded: a name-based UUID of the command id and the stream.
pub fn derived_command_id(command_id: uuid::Uuid, stream: &StreamId) -> uuid::Uuid {
    uuid::Uuid::new_v5(&command_id, stream.as_str().as_bytes())
}

/// The most streams one multi-stream append may touch.
pub const MAX_STREAMS_PER_APPEND: usize = 10_000;

pub(crate) fn validate_many(meta: &CommandMeta, writes: &[StreamWrite]) -> Result<(), Error> {
    if writes.is_empty() {
        return Err(Error::InvalidInput(
            "a multi-stream append needs at least one stream; nothing was written".into(),
        ));
    }
    if writes.len() > MAX_STREAMS_PER_APPEND {
        return Err(Error::InvalidInput(format!(
            "a multi-stream append may touch at most {MAX_STREAMS_PER_APPEND} streams, this one \
             touches {}: split it",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    let mut total = 0usize;
    for write in writes {
        if !seen.insert(&write.stream) {
            return Err(Error::InvalidInput(format!(
                "stream {} appears twice in one multi-stream append; merge its events",
                write.stream
            )));
        }
        validate_append(&write.events, meta)?;
        total += write.events.len();
    }
    if total > 100 * MAX_EVENTS_PER_APPEND {
        return Err(Error::InvalidInput(format!(
            "a multi-stream append may carry at most {} events, this one has {total}: split it",
            100 * MAX_EVENTS_PER_APPEND
        )));
    }
    Ok(())
}

/// Checks what every backend checks before writing: a sensible batch.
pub(crate) fn validate_append(events: &[NewEvent], meta: &CommandMeta) -> Result<(), Error> {
    if events.is_empty() {
        return Err(Error::InvalidInput(
            "an append needs at least one event; nothing was written".into(),
        ));
    }
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(Error::InvalidInput(format!(
            "an append may carry at most {MAX_EVENTS_PER_APPEND} events, this one has {}: \
             split it into several commands",
            events.len()
        )));
    }
    if meta.actor.trim().is_empty() {
        return Err(Error::InvalidInput(
            "every append needs an actor; it was empty".into(),
        ));
    }
    for event in events {
        if event.event_type.is_empty() || event.event_type.len() > 100 {
            return Err(Error::InvalidInput(format!(
                "event type {:?} must be 1 to 100 characters",
                event.event_type
            )));
        }
        if contains_nul(&event.payload) {
            return Err(Error::InvalidInput(format!(
                "the payload of {} contains a NUL character (\\u0000), which the log cannot store; \
                 remove it",
                event.event_type
            )));
        }
    }
    Ok(())
}

fn contains_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}
