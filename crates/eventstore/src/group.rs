//! Group commit: appends that arrive together in one process share one
//! transaction and one commit.
//!
//! Every command paying for its own commit is what limits a busy log: the
//! disk flush, not the insert, is the cost. [`GroupCommit`] wraps a store
//! and queues each [`EventStore::append`]; a batch takes whatever has queued
//! and hands it to the store's [`EventStore::append_batch`], which answers
//! each command on its own (a stale version or a replayed command id affects
//! only that command).
//!
//! No command waits on a timer when it could go. A command arriving when a
//! batch slot is free and nothing is queued goes at once, alone, by the
//! store's single-append path on its caller's task; one arriving while
//! `max_in_flight` batches are committing waits for the first of them to
//! finish, and goes with everything that queued meanwhile. A batch that
//! finishes while every slot is busy keeps its slot for at most
//! [`COMPANY_WAIT`] for the callers it just answered to come back
//! ([`GroupCommit::gather`]): they were answered together and come back
//! together, and go together. So a command waits at most for the batches
//! ahead of it and that short gathering, and the busier the log, the larger
//! the batches.
//!
//! Two batches in flight never share a stream: a command whose stream is in
//! a running batch waits for the next one, so commands to one stream apply
//! in the order they arrived and concurrent batches do not collide.

use std::collections::{HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use tokio::sync::{Notify, oneshot, watch};

use crate::types::AppendRequest;
use crate::{
    AppendOutcome, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Hash, NewEvent,
    RecordedEvent, StreamId, StreamWrite, merkle, tree, validate_append,
};

/// The metric of how many commands each batch carried.
const BATCH_COMMANDS: &str = "trellis_group_commit_commands";

/// The longest a finished batch waits for the callers it just answered to
/// come back before it takes the next one (see [`GroupCommit::gather`]).
/// A command never waits longer than this for company: it waits only
/// while a gathering batch is about to take it.
pub const COMPANY_WAIT: Duration = Duration::from_millis(1);

/// How [`GroupCommit`] forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// The most commands one batch carries.
    pub max_batch: usize,
    /// How many batches may be committing at once (each on its own
    /// connection). One by default: PostgreSQL writes a batch's one-event
    /// commands in one statement, so one large batch at a time, which
    /// everything that queued while the last one committed joins, costs
    /// the server less than several smaller ones (ADR 9).
    pub max_in_flight: usize,
}

impl GroupCommitConfig {
    /// For a store with one writer (the embedded file): one batch at a
    /// time, so everything that queues while it writes goes in the next.
    pub fn single_writer() -> Self {
        GroupCommitConfig {
            max_in_flight: 1,
            ..GroupCommitConfig::default()
        }
    }
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_batch: 256,
            max_in_flight: 1,
        }
    }
}

/// What a [`GroupCommit`] has done since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Appends answered.
    pub commands: u64,
    /// Batches run (a command alone counts as a batch of one).
    pub batches: u64,
    /// The most commands one batch carried.
    pub largest_batch: u64,
}

/// A store whose appends are grouped into shared transactions; every other
/// operation goes straight to the wrapped store. Cheap to clone. Needs a
/// tokio runtime: each batch runs as a task of its own, so a caller that
/// gives up waiting does not stop its neighbours' commit.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<dyn EventStore>,
    shared: Arc<Shared>,
}

struct Shared {
    config: GroupCommitConfig,
    state: Mutex<State>,
    /// Signalled when a command queues while a batch gathers.
    arrived: Notify,
    commands: AtomicU64,
    batches: AtomicU64,
    largest_batch: AtomicU64,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Waiting>,
    /// Streams in a running batch.
    busy: HashSet<StreamId>,
    running: usize,
    /// A batch slot is held, waiting for company: what queues goes with it.
    gathering: bool,
}

struct Waiting {
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendOutcome, Error>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Groups the appends made through the returned store. A `max_batch` or
    /// `max_in_flight` of 0 counts as 1.
    pub fn new(inner: Arc<dyn EventStore>, config: GroupCommitConfig) -> Self {
        let config = GroupCommitConfig {
            max_batch: config.max_batch.max(1),
            max_in_flight: config.max_in_flight.max(1),
        };
        GroupCommit {
            inner,
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
                arrived: Notify::new(),
                commands: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                largest_batch: AtomicU64::new(0),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }

    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            commands: self.shared.commands.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
            largest_batch: self.shared.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Starts a batch if a slot is free and something can go.
    fn dispatch(&self) {
        let batch = {
            let mut state = self.shared.lock();
            if state.gathering {
                // It goes with the batch that is waiting for company.
                self.shared.arrived.notify_one();
                return;
            }
            if state.running >= self.shared.config.max_in_flight {
                return;
            }
            let batch = state.take_batch(self.shared.config.max_batch);
            if batch.is_empty() {
                return;
            }
            state.running += 1;
            batch
        };
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { this.run(batch).await });
            }
            // Only when a command alone is dropped outside any runtime: the
            // batch's callers hear that it stopped.
            Err(_) => this
                .shared
                .lock()
                .free(batch.iter().map(|w| &w.request.stream)),
        }
    }

    /// Runs `batch`, then whatever queued meanwhile, until nothing can go.
    async fn run(self, mut batch: Vec<Waiting>) {
        loop {
            let streams: Vec<StreamId> = batch.iter().map(|w| w.request.stream.clone()).collect();
            let (requests, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.request, w.reply)).unzip();
            let outcomes = AssertUnwindSafe(self.inner.append_batch(requests))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| vec![]);
            self.count(streams.len());
            let mut outcomes = outcomes.into_iter();
            for reply in replies {
                let outcome = outcomes.next().unwrap_or_else(|| {
                    Err(Error::Internal(
                        "a group commit ended without answering this append; it may or may not \
                         have been recorded: retry it with the same command id"
                            .into(),
                    ))
                });
                // A caller that stopped waiting no longer needs its answer.
                let _ = reply.send(outcome);
            }
            {
                let mut state = self.shared.lock();
                for stream in &streams {
                    state.busy.remove(stream);
                }
            }
            self.gather(streams.len()).await;
            let mut state = self.shared.lock();
            batch = state.take_batch(self.shared.config.max_batch);
            if batch.is_empty() {
                state.running -= 1;
                drop(state);
                // Streams this batch held may be what another slot waited for.
                self.dispatch();
                return;
            }
            drop(state);
            // What queued while it gathered and does not fit in this batch
            // (past `max_batch`, or on a stream another batch holds) may go
            // in a free slot.
            self.dispatch();
        }
    }

    /// Keeps this batch's slot for at most [`COMPANY_WAIT`], until as many
    /// commands queue as it just answered. Callers that were answered
    /// together come back together; without this, the first of them to
    /// come back would go alone and the rest wait a whole commit for the
    /// next batch, so eight writers would share a commit four at a time,
    /// not eight. One writer waits for nobody: it is the one expected.
    /// Only the last free slot gathers, one batch at a time: while another
    /// slot is free, a command that comes back goes at once anyway.
    async fn gather(&self, expected: usize) {
        {
            let mut state = self.shared.lock();
            // With a slot free, whoever comes back goes at once anyway.
            if state.gathering
                || state.running < self.shared.config.max_in_flight
                || state.waiting.len() >= expected
            {
                return;
            }
            state.gathering = true;
        }
        // Cleared however this ends (the task could be aborted mid-wait, as
        // at a runtime's shutdown): left set, it would hold every command
        // back for a batch that is gone.
        let _gathering = Gathering(&self.shared);
        let deadline = tokio::time::Instant::now() + COMPANY_WAIT;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking, so an arrival in between is seen.
            arrived.as_mut().enable();
            if self.shared.lock().waiting.len() >= expected {
                break;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                break;
            }
        }
    }

    /// A command with nothing to share a commit with: the store's own
    /// append, on its caller's task, with no batch task to wake and no
    /// reply to hand over.
    async fn alone(
        &self,
        alone: Alone<'_>,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error> {
        let outcome = self
            .inner
            .append(alone.stream, expected, meta, events)
            .await;
        self.count(1);
        drop(alone);
        outcome
    }

    /// Queues `request` for the next batch and waits for its answer.
    async fn queue(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .lock()
            .waiting
            .push_back(Waiting { request, reply });
        self.dispatch();
        answer.await.unwrap_or_else(|_| {
            Err(Error::Internal(
                "a group commit stopped before answering this append; it may or may not have \
                 been recorded: retry it with the same command id"
                    .into(),
            ))
        })
    }

    fn count(&self, commands: usize) {
        static DESCRIBED: std::sync::Once = std::sync::Once::new();
        DESCRIBED.call_once(|| {
            metrics::describe_histogram!(
                BATCH_COMMANDS,
                "Commands per group commit: 1 is a command committed alone; larger when \
                 appends arrive together."
            );
        });
        metrics::histogram!(BATCH_COMMANDS).record(commands as f64);
        let commands = commands as u64;
        self.shared.commands.fetch_add(commands, Ordering::Relaxed);
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        self.shared
            .largest_batch
            .fetch_max(commands, Ordering::Relaxed);
    }
}

/// The batch slot and the stream of a command that goes alone, on its
/// caller's task: taken only when nothing is queued, no batch gathers and a
/// slot is free, so it overtakes nobody. Given back when dropped, also when
/// the caller stops waiting midway; whatever queued meanwhile then goes as
/// a batch.
struct Alone<'a> {
    group: &'a GroupCommit,
    stream: &'a StreamId,
}

impl<'a> Alone<'a> {
    fn take(group: &'a GroupCommit, stream: &'a StreamId) -> Option<Self> {
        let mut state = group.shared.lock();
        if state.gathering
            || state.running >= group.shared.config.max_in_flight
            || !state.waiting.is_empty()
            || state.busy.contains(stream)
        {
            return None;
        }
        state.running += 1;
        state.busy.insert(stream.clone());
        Some(Alone { group, stream })
    }
}

impl Drop for Alone<'_> {
    fn drop(&mut self) {
        self.group.shared.lock().free([self.stream]);
        self.group.dispatch();
    }
}

/// Ends a batch's gathering when dropped.
struct Gathering<'a>(&'a Shared);

impl Drop for Gathering<'_> {
    fn drop(&mut self) {
        self.0.lock().gathering = false;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements: a panic elsewhere
        // cannot leave it half changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Gives back a slot and the streams it held.
    fn free<'a>(&mut self, streams: impl IntoIterator<Item = &'a StreamId>) {
        self.running -= 1;
        for stream in streams {
            self.busy.remove(stream);
        }
    }

    /// Up to `max` waiting commands whose streams are not in a running
    /// batch, oldest first; marks their streams busy.
    fn take_batch(&mut self, max: usize) -> Vec<Waiting> {
        let mut batch = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() && batch.len() < max {
            if self.busy.contains(&self.waiting[i].request.stream) {
                i += 1;
            } else if let Some(w) = self.waiting.remove(i) {
                batch.push(w);
            }
        }
        for w in &batch {
            self.busy.insert(w.request.stream.clone());
        }
        batch
    }
}

#[async_trait]
impl EventStore for GroupCommit {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error> {
        validate_append(events, meta)?;
        if let Some(alone) = Alone::take(self, stream) {
            return self.alone(alone, expected, meta, events).await;
        }
        self.queue(AppendRequest {
            stream: stream.clone(),
            expected,
            meta: meta.clone(),
            events: events.to_vec(),
        })
        .await
    }

    async fn append_owned(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        validate_append(&request.events, &request.meta)?;
        if let Some(alone) = Alone::take(self, &request.stream) {
            return self
                .alone(alone, request.expected, &request.meta, &request.events)
                .await;
        }
        self.queue(request).await
    }

    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, Error>> {
        self.inner.append_batch(requests).await
    }

    async fn append_many(
        &self,
        meta: &CommandMeta,
        writes: &[StreamWrite],
    ) -> Result<Vec<AppendOutcome>, Error> {
        self.inner.append_many(meta, writes).await
    }

    async fn recorded_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<AppendOutcome>, Error> {
        self.inner.recorded_command(command_id).await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, Error> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), Error> {
        self.inner.save_checkpoint(name, checkpoint).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, Error> {
        self.inner.stream_version(stream).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.inner.read_stream(stream, after_version, max).await
    }

    async fn read_all(&self, after: Checkpoint, max: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.inner.read_all(after, max).await
    }

    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, Error> {
        self.inner.read_all_json(after, max).await
    }

    async fn head(&self) -> Result<Checkpoint, Error> {
        self.inner.head().await
    }

    async fn settled_head(&self) -> Result<Checkpoint, Error> {
        self.inner.settled_head().await
    }

    async fn scan_streams(
        &self,
        after: Option<(StreamId, u64)>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.inner.scan_streams(after, max).await
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.inner.appended()
    }

    async fn ping(&self) -> Result<(), Error> {
        self.inner.ping().await
    }

    async fn read_leaves(&self, after: Checkpoint, max: usize) -> Result<Vec<tree::Leaf>, Error> {
        self.inner.read_leaves(after, max).await
    }

    async fn tree_state(&self) -> Result<tree::TreeState, Error> {
        self.inner.tree_state().await
    }

    async fn extend_tree(&self, extension: &tree::TreeExtension) -> Result<(), Error> {
        self.inner.extend_tree(extension).await
    }

    async fn tree_nodes(&self, ids: &[merkle::NodeId]) -> Result<Vec<Option<Hash>>, Error> {
        self.inner.tree_nodes(ids).await
    }

    async fn tree_leaf_range(&self, from: u64, max: usize) -> Result<Vec<(u64, u64, Hash)>, Error> {
        self.inner.tree_leaf_range(from, max).await
    }

    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, Error> {
        self.inner.tree_leaf_indexes(positions).await
    }

    async fn record_tree_checkpoint(
        &self,
        checkpoint: &tree::StoredCheckpoint,
    ) -> Result<(), Error> {
        self.inner.record_tree_checkpoint(checkpoint).await
    }

    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<tree::StoredCheckpoint>, Error> {
        self.inner.tree_checkpoints(after_size, max).await
    }

    async fn latest_tree_checkpoint(&self) -> Result<Option<tree::StoredCheckpoint>, Error> {
        self.inner.latest_tree_checkpoint().await
    }

    async fn exclusive(&self, scope: &str) -> Result<crate::Exclusive, Error> {
        self.inner.exclusive(scope).await
    }
}

#[cfg(test)]
mod tests {
    use crate::group::{State, Waiting};
    use crate::types::AppendRequest;
    use crate::{CommandMeta, ExpectedVersion, NewEvent, StreamId};
    use chrono::Utc;
    use tokio::sync::oneshot;

    fn waiting(stream: &str) -> Waiting {
        let (reply, _) = oneshot::channel();
        Waiting {
            request: AppendRequest {
                stream: StreamId::new(stream).unwrap(),
                expected: ExpectedVersion::Any,
                meta: CommandMeta::new("test", Utc::now()),
                events: vec![NewEvent::new("Noted", 1, serde_json::json!({}), Utc::now())],
            },
            reply,
        }
    }

    fn streams(batch: &[Waiting]) -> Vec<&str> {
        batch.iter().map(|w| w.request.stream.as_str()).collect()
    }

    #[test]
    fn a_batch_skips_streams_in_a_running_batch_and_keeps_each_streams_order() {
        let mut state = State::default();
        for s in ["a-1", "b-1", "a-1", "c-1", "b-1"] {
            state.waiting.push_back(waiting(s));
        }
        let first = state.take_batch(2);
        assert_eq!(streams(&first), ["a-1", "b-1"]);
        // a-1 and b-1 are running: only c-1 may go beside them.
        let second = state.take_batch(10);
        assert_eq!(streams(&second), ["c-1"]);
        assert!(state.take_batch(10).is_empty());
        for w in &first {
            state.busy.remove(&w.request.stream);
        }
        // The same stream twice in one batch is fine: it sees its own writes.
        let third = state.take_batch(10);
        assert_eq!(streams(&third), ["a-1", "b-1"]);
        assert!(state.waiting.is_empty());
    }
}
