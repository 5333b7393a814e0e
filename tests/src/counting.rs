//! [`CountingStore`]: a real store (PostgreSQL or embedded) that notes every
//! per-stream read, so a test can see whether a request read a stream, and
//! from which version; and the task each single append ran on, with a way
//! to make the next one never finish; and a way to hold checkpoint saves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::watch;
use trellis_eventstore::merkle::NodeId;
use trellis_eventstore::tree::{StoredCheckpoint, TreeExtension, TreeState};
use trellis_eventstore::{
    AppendOutcome, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Hash, NewEvent,
    RecordedEvent, StreamId, StreamWrite,
};

/// Delegates everything to the store it wraps; notes each `read_stream` as
/// (stream, the version it read after), and the task of each `append`.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn EventStore>,
    reads: Mutex<Vec<(String, u64)>>,
    append_tasks: Mutex<Vec<Option<tokio::task::Id>>>,
    stall_next_append: AtomicBool,
    hold_saves: AtomicBool,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn EventStore>) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            reads: Mutex::new(Vec::new()),
            append_tasks: Mutex::new(Vec::new()),
            stall_next_append: AtomicBool::new(false),
            hold_saves: AtomicBool::new(false),
        })
    }

    /// The task each `append` ran on, in order (the default `append_batch`,
    /// which this store keeps, appends one by one through it).
    pub fn append_tasks(&self) -> Vec<Option<tokio::task::Id>> {
        self.append_tasks.lock().expect("the tasks").clone()
    }

    /// The next `append` writes nothing and never finishes: its caller can
    /// only stop waiting.
    pub fn stall_next_append(&self) {
        self.stall_next_append.store(true, Ordering::SeqCst);
    }

    /// While held, a `save_checkpoint` writes nothing and never finishes,
    /// as if its process died first; a save begun while held stays so
    /// after [`Self::release_saves`].
    pub fn hold_saves(&self) {
        self.hold_saves.store(true, Ordering::SeqCst);
    }

    /// Saves begun from now on are written again.
    pub fn release_saves(&self) {
        self.hold_saves.store(false, Ordering::SeqCst);
    }

    /// The versions `stream` was read after since the last [`Self::clear`], in order.
    pub fn reads_of(&self, stream: &str) -> Vec<u64> {
        self.reads
            .lock()
            .expect("the reads")
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, after)| *after)
            .collect()
    }

    pub fn clear(&self) {
        self.reads.lock().expect("the reads").clear();
    }
}

#[async_trait]
impl EventStore for CountingStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error> {
        self.append_tasks
            .lock()
            .expect("the tasks")
            .push(tokio::task::try_id());
        if self.stall_next_append.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.append(stream, expected, meta, events).await
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
        if self.hold_saves.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
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
        self.reads
            .lock()
            .expect("the reads")
            .push((stream.to_string(), after_version));
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

    async fn tree_state(&self) -> Result<TreeState, Error> {
        self.inner.tree_state().await
    }

    async fn extend_tree(&self, extension: &TreeExtension) -> Result<(), Error> {
        self.inner.extend_tree(extension).await
    }

    async fn tree_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, Error> {
        self.inner.tree_nodes(ids).await
    }

    async fn tree_leaf_range(&self, from: u64, max: usize) -> Result<Vec<(u64, u64, Hash)>, Error> {
        self.inner.tree_leaf_range(from, max).await
    }

    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, Error> {
        self.inner.tree_leaf_indexes(positions).await
    }

    async fn record_tree_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), Error> {
        self.inner.record_tree_checkpoint(checkpoint).await
    }

    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<StoredCheckpoint>, Error> {
        self.inner.tree_checkpoints(after_size, max).await
    }

    async fn latest_tree_checkpoint(&self) -> Result<Option<StoredCheckpoint>, Error> {
        self.inner.latest_tree_checkpoint().await
    }

    async fn exclusive(&self, scope: &str) -> Result<trellis_eventstore::Exclusive, Error> {
        self.inner.exclusive(scope).await
    }
}
