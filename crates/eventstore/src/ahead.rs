//! Read-ahead for whoever scans the log page by page.
//!
//! Rebuilding a projection, catching a subscriber up or relaying to
//! JetStream reads the log `max` events at a time, and between two pages
//! the reader works (decrypts, folds, publishes) while the database waits.
//! [`ReadAhead`] asks for the next page as soon as a full page is handed
//! out, so the reader's work and the database's overlap.
//!
//! A page read ahead is used only when it is full. Global order makes that
//! exact: once the next `max` events after a checkpoint are readable, no
//! event can later appear among them (ADR 1), so a full page read early is
//! the page a read now would return. A page that came back short (the end
//! of the log, as it stood) is dropped and read again, since events may
//! have been appended since; so is one that failed. A full page stays right
//! however long it waits; a page nobody asked for within [`ABANDONED`] is
//! dropped, so a reader that stopped does not keep one held.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::types::AppendRequest;
use crate::{
    AppendOutcome, Checkpoint, CommandMeta, Error, EventStore, ExpectedVersion, Hash, NewEvent,
    RecordedEvent, StreamId, StreamWrite, merkle, tree,
};

/// The most pages kept read ahead at once (one per concurrent reader); past
/// it the oldest is dropped.
const PAGES: usize = 8;

/// How long a page read ahead is kept for a reader that does not ask for
/// it (it stopped, or went elsewhere).
const ABANDONED: Duration = Duration::from_secs(30);

/// A store whose `read_all` and `read_all_json` read the next page ahead;
/// every other operation goes straight to the wrapped store. Cheap to
/// clone; needs a tokio runtime.
#[derive(Clone)]
pub struct ReadAhead {
    inner: Arc<dyn EventStore>,
    pages: Arc<Pages>,
}

#[derive(Default)]
struct Pages(Mutex<VecDeque<Ahead>>);

/// One page being read ahead: the events after `after`, at most `max`.
struct Ahead {
    after: Checkpoint,
    max: usize,
    started: Instant,
    page: Page,
}

enum Page {
    Parsed(JoinHandle<Result<Vec<RecordedEvent>, Error>>),
    Text(JoinHandle<Result<Vec<RecordedEvent<String>>, Error>>),
}

impl Page {
    fn abort(&self) {
        match self {
            Page::Parsed(handle) => handle.abort(),
            Page::Text(handle) => handle.abort(),
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let pages = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        for ahead in pages.drain(..) {
            ahead.page.abort();
        }
    }
}

type Read<P> = BoxFuture<'static, Result<Vec<RecordedEvent<P>>, Error>>;

/// The payload forms a page can be read in.
trait Payload: Sized + Send + 'static {
    fn page(handle: JoinHandle<Result<Vec<RecordedEvent<Self>>, Error>>) -> Page;
    fn handle(page: Page) -> Option<JoinHandle<Result<Vec<RecordedEvent<Self>>, Error>>>;
    /// Whether `page` is read in this form.
    fn is(page: &Page) -> bool;
    fn read(store: Arc<dyn EventStore>, after: Checkpoint, max: usize) -> Read<Self>;
}

impl Payload for serde_json::Value {
    fn page(handle: JoinHandle<Result<Vec<RecordedEvent<Self>>, Error>>) -> Page {
        Page::Parsed(handle)
    }

    fn handle(page: Page) -> Option<JoinHandle<Result<Vec<RecordedEvent<Self>>, Error>>> {
        match page {
            Page::Parsed(handle) => Some(handle),
            Page::Text(_) => None,
        }
    }

    fn is(page: &Page) -> bool {
        matches!(page, Page::Parsed(_))
    }

    fn read(store: Arc<dyn EventStore>, after: Checkpoint, max: usize) -> Read<Self> {
        Box::pin(async move { store.read_all(after, max).await })
    }
}

impl Payload for String {
    fn page(handle: JoinHandle<Result<Vec<RecordedEvent<Self>>, Error>>) -> Page {
        Page::Text(handle)
    }

    fn handle(page: Page) -> Option<JoinHandle<Result<Vec<RecordedEvent<Self>>, Error>>> {
        match page {
            Page::Text(handle) => Some(handle),
            Page::Parsed(_) => None,
        }
    }

    fn is(page: &Page) -> bool {
        matches!(page, Page::Text(_))
    }

    fn read(store: Arc<dyn EventStore>, after: Checkpoint, max: usize) -> Read<Self> {
        Box::pin(async move { store.read_all_json(after, max).await })
    }
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ReadAhead {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        ReadAhead {
            inner,
            pages: Arc::default(),
        }
    }

    /// The page after `after` of at most `max` events: the one read ahead
    /// when it came back full, else read now. A full page starts the read
    /// of the next one.
    async fn page<P: Payload>(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<P>>, Error> {
        let early = match self.take::<P>(after, max) {
            Some(handle) => match handle.await {
                Ok(Ok(events)) if events.len() == max => Some(events),
                _ => None,
            },
            None => None,
        };
        let events = match early {
            Some(events) => events,
            None => P::read(self.inner.clone(), after, max).await?,
        };
        if max > 0
            && events.len() == max
            && let Some(last) = events.last()
        {
            self.start::<P>(last.checkpoint, max);
        }
        Ok(events)
    }

    /// Takes the page read ahead for `(after, max)` in form `P`, if any.
    fn take<P: Payload>(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Option<JoinHandle<Result<Vec<RecordedEvent<P>>, Error>>> {
        let mut pages = self.pages.lock();
        let wanted = |a: &Ahead| a.after == after && a.max == max && P::is(&a.page);
        pages.retain(|a| {
            let kept = wanted(a) || a.started.elapsed() < ABANDONED;
            if !kept {
                a.page.abort();
            }
            kept
        });
        let i = pages.iter().position(wanted)?;
        pages.remove(i).and_then(|a| P::handle(a.page))
    }

    /// Starts reading the page after `after`.
    fn start<P: Payload>(&self, after: Checkpoint, max: usize) {
        let handle = tokio::spawn(P::read(self.inner.clone(), after, max));
        let mut pages = self.pages.lock();
        if pages.len() >= PAGES
            && let Some(oldest) = pages.pop_front()
        {
            oldest.page.abort();
        }
        pages.push_back(Ahead {
            after,
            max,
            started: Instant::now(),
            page: P::page(handle),
        });
    }
}

impl Pages {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Ahead>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl EventStore for ReadAhead {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error> {
        self.inner.append(stream, expected, meta, events).await
    }

    async fn append_owned(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        self.inner.append_owned(request).await
    }

    async fn read_all(&self, after: Checkpoint, max: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.page(after, max).await
    }

    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, Error> {
        self.page(after, max).await
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
