//! Where read models live: the same database as the log, one backend per
//! event store backend. Tables are documented in the crate's README.md.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use trellis_eventstore::Checkpoint;

use crate::Error;
use crate::projection::DocChange;

pub mod postgres;
pub mod sqlite;

/// Where a generation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being rebuilt; not served.
    Building,
    /// Served to queries and followed by the live runner.
    Active,
    /// Replaced by a newer generation; its documents are dropped.
    Retired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Building => "building",
            Status::Active => "active",
            Status::Retired => "retired",
        }
    }

    pub fn parse(text: &str) -> Result<Status, Error> {
        match text {
            "building" => Ok(Status::Building),
            "active" => Ok(Status::Active),
            "retired" => Ok(Status::Retired),
            other => Err(Error::Database(format!(
                "unknown projection status {other:?}"
            ))),
        }
    }
}

/// One generation of one projection's documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub model: String,
    pub generation: i32,
    pub fingerprint: String,
    pub status: Status,
    /// Where its documents stand in the log.
    pub checkpoint: Checkpoint,
    pub events_applied: u64,
}

/// One batch a projection commits: its documents, and where its checkpoint
/// moves (from `from` to `to`, `events` more applied), in the generation
/// `generation` of `model` while that generation has `status`.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub model: &'a str,
    pub generation: i32,
    pub status: Status,
    pub from: Checkpoint,
    pub to: Checkpoint,
    pub events: u64,
    pub changes: &'a [DocChange],
}

/// What a bulk write ([`ReadStore::write_bulk`]) is fed, from a queue that
/// several writers may share.
#[derive(Debug)]
pub enum Part {
    /// Documents to write.
    Docs(Vec<DocChange>),
    /// Every part is in: commit. One for each writer sharing the queue (a
    /// writer takes no part after its `Done`).
    Done,
}

/// The queue of [`Part`]s that one or more bulk writers take from: each part
/// goes to whichever writer asks first. A queue that closes before a
/// writer's [`Part::Done`] abandons that writer's work.
#[derive(Debug, Clone)]
pub struct Parts {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Part>>>,
}

impl Parts {
    /// A queue holding at most `capacity` parts, and its sending end.
    pub fn channel(capacity: usize) -> (mpsc::Sender<Part>, Parts) {
        let (send, receive) = mpsc::channel(capacity.max(1));
        let parts = Parts {
            queue: Arc::new(tokio::sync::Mutex::new(receive)),
        };
        (send, parts)
    }

    /// The next part; `None` once the queue is closed and empty.
    pub async fn next(&self) -> Option<Part> {
        self.queue.lock().await.recv().await
    }
}

/// A bulk write whose queue closed before its `Done`.
fn abandoned(model: &str, generation: i32) -> Error {
    Error::Database(format!(
        "the rebuild of {model} stopped before generation {generation} was written"
    ))
}

/// Held while a runner or a rebuild is the one active worker of a projection.
#[async_trait]
pub trait Lease: Send + Sync + fmt::Debug {
    /// Whether the lease still holds (on PostgreSQL: its connection is alive).
    async fn alive(&self) -> bool;

    /// Gives the lease up and returns once another worker can take it (on
    /// PostgreSQL, dropping the lease only closes its connection, and the
    /// server frees the lock a moment later).
    async fn release(self: Box<Self>) {}
}

/// Which documents a [`ReadStore::load`] answers: those after `after`
/// (a kind and key) in (kind, key) order, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocPage<'a> {
    pub after: Option<(&'a str, &'a str)>,
    pub limit: usize,
}

impl DocPage<'static> {
    /// Every document at once (for kinds few enough to list).
    pub const ALL: DocPage<'static> = DocPage {
        after: None,
        limit: usize::MAX,
    };
}

impl<'a> DocPage<'a> {
    /// What a backend reads for this page, one kind at a time: each kind
    /// still to come in order, with the key its documents come after
    /// (`""`: from its first). One kind per query keeps each a range of
    /// the primary key.
    pub fn kinds<'k>(&self, kinds: &[&'k str]) -> Vec<(&'k str, &'a str)> {
        let mut kinds = kinds.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
            .into_iter()
            .filter_map(|kind| match self.after {
                Some((after_kind, _)) if kind < after_kind => None,
                Some((after_kind, after_key)) if kind == after_kind => Some((kind, after_key)),
                _ => Some((kind, "")),
            })
            .collect()
    }
}

/// What a lease is for: following the log live, or rebuilding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeaseKind {
    Runner,
    Rebuild,
}

/// The read-model storage of one backend.
#[async_trait]
pub trait ReadStore: Send + Sync + fmt::Debug {
    /// Called once a batch that erased a person's personal data is
    /// committed: a backend that keeps overwritten bytes around (the
    /// embedded file's write-ahead log) gets rid of them.
    async fn after_erasure(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Tries to become the one active worker of `model` for `kind`.
    async fn try_lease(
        &self,
        model: &str,
        kind: LeaseKind,
    ) -> Result<Option<Box<dyn Lease>>, Error>;

    /// Every generation of every projection.
    async fn generations(&self) -> Result<Vec<Generation>, Error>;

    /// A new generation of `model`, numbered after the highest so far, at the log's start.
    async fn create_generation(
        &self,
        model: &str,
        fingerprint: &str,
        status: Status,
    ) -> Result<Generation, Error>;

    /// The documents of `kinds` in a generation, in (kind, key) order,
    /// within `page`: (kind, key, doc), each document as its JSON text.
    /// Text, not `serde_json::Value`: a parsed tree took several times the
    /// memory of the text. A restart restores a projection's whole state
    /// (every rep's facts) a page at a time, so that the text of all of it
    /// is never held at once.
    async fn load(
        &self,
        model: &str,
        generation: i32,
        kinds: &[&str],
        page: DocPage<'_>,
    ) -> Result<Vec<(String, String, String)>, Error>;

    /// Writes one batch atomically: the documents and the checkpoint move
    /// together, and only if the generation still has `status` and stands at
    /// `from` (otherwise nothing is written and the answer is `false`: someone
    /// else moved it, or it was replaced).
    async fn commit(&self, batch: Batch<'_>) -> Result<bool, Error>;

    /// Writes documents into a building generation that stands at `from`
    /// and holds none of their keys yet (a rebuild's), as fast as the
    /// backend can take them: every [`Part::Docs`] taken from `parts` until
    /// a [`Part::Done`]. Answers `false` (writing nothing more) when the
    /// generation is no longer building at `from`. The checkpoint stays
    /// where it is: the rebuild moves it with [`ReadStore::commit`] once
    /// every writer is done.
    ///
    /// Each part commits on its own, in a transaction that checks the
    /// generation: a transaction lasting the whole rebuild would hold back
    /// every reader of the log on PostgreSQL (ADR 1) and lock the log's
    /// appends out of the embedded file. What is written is never served,
    /// since the generation is building, and an abandoned generation is
    /// dropped ([`ReadStore::drop_generation`]). A queue that closes before
    /// the `Done` is an error; the part in progress is rolled back.
    async fn write_bulk(
        &self,
        model: &str,
        generation: i32,
        from: Checkpoint,
        parts: &Parts,
    ) -> Result<bool, Error>;

    /// Drops a generation that is still building (an abandoned rebuild's):
    /// its documents and its row. Leaves any other generation alone.
    async fn drop_generation(&self, model: &str, generation: i32) -> Result<(), Error>;

    /// Makes a building generation the active one (and the active one
    /// retired) in one transaction, if it still stands at `at`.
    async fn activate(&self, model: &str, generation: i32, at: Checkpoint) -> Result<bool, Error>;

    /// Drops the documents and rows of every generation of `model` other than the active one
    /// and `keep`.
    async fn drop_inactive(&self, model: &str, keep: Option<i32>) -> Result<(), Error>;

    /// Documents of the active generation: (key, doc) for the keys found,
    /// each document as its JSON text, which the reader decodes straight
    /// into its own type (no `serde_json::Value` between).
    async fn get(
        &self,
        model: &str,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, Error>;

    /// Every document of `model` in `generation`, whatever its kind or
    /// status: (kind, key, doc) with the doc as stored, ordered by kind and
    /// key (for comparing generations byte for byte).
    async fn dump(
        &self,
        model: &str,
        generation: i32,
    ) -> Result<Vec<(String, String, String)>, Error>;
}
