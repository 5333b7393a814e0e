//! Running projections: following the log live, rebuilding into a new
//! generation, and reporting lag.
//!
//! - Each batch is applied to the in-memory state and written — documents and
//!   checkpoint — in one transaction that only succeeds if the generation
//!   still stands where this runner left it. Any failure throws the in-memory
//!   state away and reloads it from the database, so an event is never
//!   applied twice nor skipped.
//! - A runner holds a lease (a PostgreSQL advisory lock on a connection of its
//!   own; in-process for the embedded store) for as long as it runs; others
//!   wait and retry every [`EngineConfig::standby_retry`].
//! - A rebuild folds the whole log into a new generation while queries keep
//!   reading the active one, then switches in one transaction. The live
//!   runner notices on its next write and reloads from the new generation.
//!   A building generation is never served nor resumed, so a rebuild folds
//!   everything in memory and writes each document once, at the end, in
//!   parts ([`RebuildWrites`]) rather than after every batch.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_eventstore::{Checkpoint, EventStore, Follower, RecordedEvent};

use crate::Error;
use crate::projection::{Envelope, Projection};
use crate::store::{Batch, Generation, Lease, LeaseKind, ReadStore, Status};

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events per batch when following the log live.
    pub batch_size: usize,
    /// Events per batch when rebuilding.
    pub rebuild_batch_size: usize,
    /// How often a standby runner tries to take over.
    pub standby_retry: Duration,
    /// How often an active runner checks that it still holds its lease.
    pub lease_check: Duration,
    /// How often a caught-up runner looks at the log without a signal.
    pub poll: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: 500,
            rebuild_batch_size: 2_000,
            standby_retry: Duration::from_secs(1),
            lease_check: Duration::from_secs(2),
            poll: Follower::DEFAULT_POLL,
        }
    }
}

/// How a rebuild writes its documents (see [`Engine::rebuild`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildWrites {
    /// Write what was folded every this many events; `None` (the default):
    /// only once the whole log is folded. The fold's state is in memory
    /// either way; writing earlier only rewrites documents more often.
    pub flush_every: Option<u64>,
    /// Entities (e.g. reps) whose documents are derived and written per
    /// transaction.
    pub part: usize,
    /// Parts written at the same time (each on a connection of its own),
    /// while the next is derived.
    pub parallel: usize,
}

impl Default for RebuildWrites {
    fn default() -> Self {
        RebuildWrites {
            flush_every: None,
            part: 250,
            parallel: 2,
        }
    }
}

/// Progress of a rebuild, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events folded so far.
    pub events: u64,
    /// Where the rebuild stands, and the log's head (compare their
    /// `position`s for a progress bar).
    pub checkpoint: Checkpoint,
    pub head: Checkpoint,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildSummary {
    pub projection: String,
    /// The generation now active.
    pub generation: i32,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// How far a projection's generation is behind the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    pub projection: String,
    pub generation: i32,
    pub status: Status,
    pub checkpoint: Checkpoint,
    pub events_applied: u64,
    pub head: Checkpoint,
    /// Global positions between the checkpoint and the head: an upper bound
    /// on the events still to apply (positions can have gaps).
    pub behind: u64,
}

/// Runs projections over one log into one read store.
#[derive(Debug, Clone)]
pub struct Engine {
    log: Arc<dyn EventStore>,
    read: Arc<dyn ReadStore>,
    config: EngineConfig,
    rebuild_writes: RebuildWrites,
}

/// What happened to one batch.
enum Outcome {
    Committed(Checkpoint),
    /// The generation moved or was replaced under us: reload.
    Stale,
}

impl Engine {
    pub fn new(log: Arc<dyn EventStore>, read: Arc<dyn ReadStore>) -> Self {
        Engine {
            log,
            read,
            config: EngineConfig::default(),
            rebuild_writes: RebuildWrites::default(),
        }
    }

    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// How rebuilds write their documents.
    pub fn with_rebuild_writes(mut self, writes: RebuildWrites) -> Self {
        self.rebuild_writes = writes;
        self
    }

    pub fn read_store(&self) -> &Arc<dyn ReadStore> {
        &self.read
    }

    /// Runs `projection` live until `shutdown` completes: stands by until it
    /// holds the lease, then follows the log. Errors are logged and retried
    /// (after releasing the lease, so another process may take over).
    #[tracing::instrument(name = "projection.run", skip_all, fields(projection = template.name()))]
    pub async fn run(&self, template: Box<dyn Projection>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let lease = loop {
                match self
                    .read
                    .try_lease(template.name(), LeaseKind::Runner)
                    .await
                {
                    Ok(Some(lease)) => break lease,
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot take the projection lease"),
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(self.config.standby_retry) => {}
                }
            };
            tracing::info!("active");
            match self.run_active(&*template, &*lease, &mut shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "projection runner failed; reloading");
                    drop(lease);
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(self.config.standby_retry) => {}
                    }
                }
            }
        }
    }

    async fn run_active(
        &self,
        template: &dyn Projection,
        lease: &dyn Lease,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), Error> {
        'reload: loop {
            let (mut projection, generation) = self.open(template).await?;
            let mut checkpoint = generation.checkpoint;
            let mut follower = Follower::new(self.log.clone(), checkpoint, self.config.batch_size)
                .with_poll_interval(self.config.poll);
            let mut check = tokio::time::interval(self.config.lease_check);
            loop {
                tokio::select! {
                    () = shutdown.as_mut() => return Ok(()),
                    _ = check.tick() => {
                        if !lease.alive().await {
                            return Err(Error::Database("lost the projection lease".into()));
                        }
                    }
                    batch = follower.next_batch_json() => {
                        let batch = batch?;
                        match self
                            .apply_batch(&mut *projection, &generation, Status::Active, checkpoint, &batch)
                            .await?
                        {
                            Outcome::Committed(to) => checkpoint = to,
                            Outcome::Stale => {
                                tracing::info!("generation replaced or moved; reloading");
                                continue 'reload;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The active generation (created, or rebuilt when its fingerprint is
    /// not this code's) and the projection's state restored from it.
    async fn open(
        &self,
        template: &dyn Projection,
    ) -> Result<(Box<dyn Projection>, Generation), Error> {
        let name = template.name();
        let fingerprint = template.fingerprint();
        let generation = match self.active(name).await? {
            None => {
                self.read
                    .create_generation(name, &fingerprint, Status::Active)
                    .await?
            }
            Some(g) if g.fingerprint != fingerprint => {
                tracing::info!(old = %g.fingerprint, new = %fingerprint, "projection changed; rebuilding");
                self.rebuild(template, &mut |_| {}).await?;
                self.active(name).await?.ok_or_else(|| {
                    Error::Database(format!("no active generation of {name} after a rebuild"))
                })?
            }
            Some(g) => g,
        };
        let mut projection = template.fresh();
        for (kind, key, doc) in self
            .read
            .load(name, generation.generation, template.state_kinds())
            .await?
        {
            projection
                .restore(&kind, &key, doc)
                .map_err(|reason| Error::Malformed { kind, key, reason })?;
        }
        Ok((projection, generation))
    }

    async fn active(&self, name: &str) -> Result<Option<Generation>, Error> {
        Ok(self
            .read
            .generations()
            .await?
            .into_iter()
            .find(|g| g.model == name && g.status == Status::Active))
    }

    /// Folds one batch and writes it with its checkpoint in one transaction.
    #[tracing::instrument(name = "projection.apply", skip_all, fields(projection = projection.name(), events = batch.len()), err)]
    async fn apply_batch(
        &self,
        projection: &mut dyn Projection,
        generation: &Generation,
        status: Status,
        from: Checkpoint,
        batch: &[RecordedEvent<String>],
    ) -> Result<Outcome, Error> {
        let Some(last) = batch.last() else {
            return Ok(Outcome::Committed(from));
        };
        let envelopes = batch
            .iter()
            .map(Envelope::decode_json)
            .collect::<Result<Vec<_>, _>>()?;
        for envelope in &envelopes {
            projection.apply(envelope);
        }
        let changes = projection.take_changes();
        let committed = self
            .read
            .commit(Batch {
                model: projection.name(),
                generation: generation.generation,
                status,
                from,
                to: last.checkpoint,
                events: batch.len() as u64,
                changes: &changes,
            })
            .await?;
        Ok(if committed {
            Outcome::Committed(last.checkpoint)
        } else {
            Outcome::Stale
        })
    }

    /// Processes whatever the log holds right now, then returns the number of
    /// events applied. For tools and tests; takes the runner lease for the
    /// duration (fails with `Ok(None)` when another runner holds it).
    pub async fn catch_up(&self, template: &dyn Projection) -> Result<Option<u64>, Error> {
        let Some(_lease) = self
            .read
            .try_lease(template.name(), LeaseKind::Runner)
            .await?
        else {
            return Ok(None);
        };
        let (mut projection, generation) = self.open(template).await?;
        let mut checkpoint = generation.checkpoint;
        let mut events = 0u64;
        loop {
            let batch = self
                .log
                .read_all_json(checkpoint, self.config.batch_size)
                .await?;
            if batch.is_empty() {
                return Ok(Some(events));
            }
            match self
                .apply_batch(
                    &mut *projection,
                    &generation,
                    Status::Active,
                    checkpoint,
                    &batch,
                )
                .await?
            {
                Outcome::Committed(to) => {
                    checkpoint = to;
                    events += batch.len() as u64;
                }
                Outcome::Stale => {
                    return Err(Error::Database(
                        "the generation changed while catching up; try again".into(),
                    ));
                }
            }
        }
    }

    /// Rebuilds `template`'s read models from the log's start into a new
    /// generation at full speed, then makes it the active one. Queries keep
    /// reading the old generation until the switch. `progress` is called
    /// after every batch read.
    ///
    /// Unlike live following, a rebuild does not write after every batch: a
    /// building generation is never served nor resumed (an interrupted
    /// rebuild is dropped and started again), so the whole log is folded in
    /// memory and every document is derived and written once, at the end
    /// (or every [`RebuildWrites::flush_every`] events), in parts of
    /// [`RebuildWrites::part`] entities, one transaction each. Every part
    /// checks that the generation still stands where this rebuild left it,
    /// and the last one moves its checkpoint; the switch to active is one
    /// more transaction. The log is read ahead (and decoded) while the fold
    /// runs, and each part is written while the next is derived.
    #[tracing::instrument(name = "projection.rebuild", skip_all, fields(projection = template.name()), err)]
    pub async fn rebuild(
        &self,
        template: &dyn Projection,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RebuildSummary, Error> {
        let name = template.name();
        let Some(_lease) = self.read.try_lease(name, LeaseKind::Rebuild).await? else {
            return Err(Error::RebuildRunning(name.to_owned()));
        };
        // Generations left over by an interrupted rebuild.
        self.read.drop_inactive(name, None).await?;
        let generation = self
            .read
            .create_generation(name, &template.fingerprint(), Status::Building)
            .await?;
        let started = Instant::now();
        let mut projection = template.fresh();
        // Where the generation's documents stand, and where the fold stands.
        let mut written = Checkpoint::START;
        let mut checkpoint = Checkpoint::START;
        let mut unwritten = 0u64;
        let mut events = 0u64;
        let mut head = self.log.head().await?;
        let mut pages = ReadAhead::start(
            self.log.clone(),
            Checkpoint::START,
            self.config.rebuild_batch_size,
        );
        let mut fold_time = Duration::ZERO;
        let mut write_time = Duration::ZERO;
        while let Some(page) = pages.next().await? {
            let folding = Instant::now();
            for envelope in &page.envelopes {
                projection.apply(envelope);
            }
            fold_time += folding.elapsed();
            let n = page.envelopes.len() as u64;
            checkpoint = page.last;
            events += n;
            unwritten += n;
            if self
                .rebuild_writes
                .flush_every
                .is_some_and(|every| unwritten >= every)
            {
                let span = (written, checkpoint, unwritten);
                write_time += self.flush(&mut *projection, &generation, span).await?;
                written = checkpoint;
                unwritten = 0;
            }
            if checkpoint > head {
                head = self.log.head().await?;
            }
            progress(Progress {
                events,
                checkpoint,
                head: head.max(checkpoint),
            });
        }
        let span = (written, checkpoint, unwritten);
        write_time += self.flush(&mut *projection, &generation, span).await?;
        tracing::info!(
            events,
            fold_seconds = fold_time.as_secs_f64(),
            write_seconds = write_time.as_secs_f64(),
            "rebuild folded and written"
        );
        if !self
            .read
            .activate(name, generation.generation, checkpoint)
            .await?
        {
            return Err(Error::Database(format!(
                "generation {} of {name} could not be activated",
                generation.generation
            )));
        }
        self.read
            .drop_inactive(name, Some(generation.generation))
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(RebuildSummary {
            projection: name.to_owned(),
            generation: generation.generation,
            events,
            seconds,
            events_per_second: if seconds > 0.0 {
                events as f64 / seconds
            } else {
                0.0
            },
        })
    }

    /// Writes every document changed since the last flush of a building
    /// generation, in parts: each part in its own transaction that checks
    /// the generation still stands at `from`; the last part moves it to
    /// `to`, `events` more applied (the span `(from, to, events)`). Each part
    /// is written while the next one is derived. Returns how long it took.
    async fn flush(
        &self,
        projection: &mut dyn Projection,
        generation: &Generation,
        (from, to, events): (Checkpoint, Checkpoint, u64),
    ) -> Result<Duration, Error> {
        let started = Instant::now();
        let name = projection.name();
        let (mut derive_time, mut wait_time) = (Duration::ZERO, Duration::ZERO);
        let mut writing: VecDeque<tokio::task::JoinHandle<Result<bool, Error>>> = VecDeque::new();
        loop {
            let t = Instant::now();
            let (changes, more) = projection.take_changes_part(self.rebuild_writes.part.max(1));
            derive_time += t.elapsed();
            let t = Instant::now();
            // Parts before the last leave the checkpoint where it is (on
            // PostgreSQL they only share-lock the generation's row, so they
            // can run side by side); the last one moves it, once every
            // other part is in.
            let in_flight = if more {
                self.rebuild_writes.parallel.max(1) - 1
            } else {
                0
            };
            while writing.len() > in_flight {
                let part = writing.pop_front().expect("a part being written");
                Self::written(part, name, generation).await?;
            }
            wait_time += t.elapsed();
            let (moved_to, applied) = if more { (from, 0) } else { (to, events) };
            let read = self.read.clone();
            let number = generation.generation;
            writing.push_back(tokio::spawn(async move {
                read.commit(Batch {
                    model: name,
                    generation: number,
                    status: Status::Building,
                    from,
                    to: moved_to,
                    events: applied,
                    changes: &changes,
                })
                .await
            }));
            if !more {
                break;
            }
        }
        let t = Instant::now();
        while let Some(part) = writing.pop_front() {
            Self::written(part, name, generation).await?;
        }
        wait_time += t.elapsed();
        tracing::debug!(
            derive_seconds = derive_time.as_secs_f64(),
            wait_seconds = wait_time.as_secs_f64(),
            "rebuild flushed"
        );
        Ok(started.elapsed())
    }

    async fn written(
        part: tokio::task::JoinHandle<Result<bool, Error>>,
        name: &str,
        generation: &Generation,
    ) -> Result<(), Error> {
        let committed = part
            .await
            .map_err(|e| Error::Database(format!("writing a rebuild's documents failed: {e}")))??;
        if committed {
            Ok(())
        } else {
            Err(Error::Database(format!(
                "generation {} of {name} changed during its rebuild",
                generation.generation
            )))
        }
    }

    /// Every generation's checkpoint and how far it is behind the log's head.
    pub async fn lag(&self) -> Result<Vec<Lag>, Error> {
        let head = self.log.head().await?;
        Ok(self
            .read
            .generations()
            .await?
            .into_iter()
            .map(|g| Lag {
                behind: head.position.saturating_sub(g.checkpoint.position),
                projection: g.model,
                generation: g.generation,
                status: g.status,
                checkpoint: g.checkpoint,
                events_applied: g.events_applied,
                head,
            })
            .collect())
    }
}

/// One page of the log, decoded.
struct Page {
    envelopes: Vec<Envelope>,
    last: Checkpoint,
}

/// Reads (and decodes) the log's next pages on a task of its own while the
/// caller folds the current one. Stops when dropped.
struct ReadAhead {
    pages: tokio::sync::mpsc::Receiver<Result<Page, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadAhead {
    /// Pages read ahead of the fold.
    const DEPTH: usize = 2;

    fn start(log: Arc<dyn EventStore>, from: Checkpoint, page: usize) -> Self {
        let (send, pages) = tokio::sync::mpsc::channel(Self::DEPTH);
        let task = tokio::spawn(async move {
            let mut after = from;
            loop {
                let read = async {
                    let batch = log.read_all_json(after, page.max(1)).await?;
                    let Some(last) = batch.last().map(|e| e.checkpoint) else {
                        return Ok(None);
                    };
                    let envelopes = batch
                        .iter()
                        .map(Envelope::decode_json)
                        .collect::<Result<Vec<_>, Error>>()?;
                    Ok(Some(Page { envelopes, last }))
                };
                match read.await {
                    Ok(Some(page)) => {
                        after = page.last;
                        if send.send(Ok(page)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(error) => {
                        let _ = send.send(Err(error)).await;
                        return;
                    }
                }
            }
        });
        ReadAhead { pages, task }
    }

    /// The next page, `None` at the end of the log.
    async fn next(&mut self) -> Result<Option<Page>, Error> {
        self.pages.recv().await.transpose()
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
