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
//!   everything in memory — in shards on threads of their own when the
//!   projection allows it — and writes each document once, at the end, in
//!   bulk ([`RebuildConfig`], [`ReadStore::write_bulk`]) rather than after
//!   every batch. A rebuild that fails or is dropped drops its generation.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use trellis_eventstore::{Checkpoint, EventStore, Follower, RecordedEvent};

use crate::Error;
use crate::projection::{DocChange, Envelope, Projection, Route};
use crate::store::{Batch, DocPage, Generation, Lease, LeaseKind, Part, Parts, ReadStore, Status};

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
    /// State documents read per query when a runner restores its
    /// projection: a page at a time, since the text of a whole
    /// organisation's state is several times the memory of the state
    /// restored from it, and what it took stayed the process's once freed.
    pub restore_page: usize,
    /// The most entities (reps) whose documents one commit of the live
    /// runner derives and writes: a batch touching more is written in
    /// parts. At two years of history a rep's documents are 250–370 KB, so
    /// a batch of 500 pieces of feedback for 500 reps held some 180 MB of
    /// text at once, and what it took stayed the process's.
    pub max_pending: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: 500,
            rebuild_batch_size: 2_000,
            standby_retry: Duration::from_secs(1),
            lease_check: Duration::from_secs(2),
            poll: Follower::DEFAULT_POLL,
            // A few dozen MB of text at two years of a rep's facts each.
            restore_page: 256,
            max_pending: 64,
        }
    }
}

impl EngineConfig {
    /// For read models that share one writer with the log (the embedded
    /// file): each live commit writes the documents of at most 8 reps, so an
    /// append waits behind a few MB of documents, not behind the 64 reps' 20
    /// MB of a busy batch.
    pub fn beside_the_log_s_writer() -> Self {
        EngineConfig {
            max_pending: 8,
            ..EngineConfig::default()
        }
    }
}

/// How a rebuild folds and writes (see [`Engine::rebuild`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildConfig {
    /// Shards the fold is split into, each folding on a thread of its own
    /// and then deriving its documents (a projection that is not
    /// [`Projection::shardable`] folds in one).
    pub shards: usize,
    /// Entities (e.g. reps) whose documents are derived at a time and handed
    /// to the writers as one part, committed in one transaction: what bounds
    /// the documents held in memory (about `part × 2 × (shards + writers)`
    /// entities' worth) and how long a writer's transaction lasts.
    pub part: usize,
    /// Bulk writers at once, each on a connection of its own.
    pub writers: usize,
}

impl Default for RebuildConfig {
    /// A shard per core (at most 8), two writers, parts of 64 entities.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        RebuildConfig {
            shards: cores.clamp(1, 8),
            part: 64,
            writers: 2,
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
    rebuild: RebuildConfig,
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
            rebuild: RebuildConfig::default(),
        }
    }

    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// How rebuilds fold and write.
    pub fn with_rebuild_config(mut self, rebuild: RebuildConfig) -> Self {
        self.rebuild = rebuild;
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
        let limit = self.config.restore_page.max(1);
        let mut last: Option<(String, String)> = None;
        loop {
            let page = DocPage {
                after: last
                    .as_ref()
                    .map(|(kind, key)| (kind.as_str(), key.as_str())),
                limit,
            };
            let docs = self
                .read
                .load(name, generation.generation, template.state_kinds(), page)
                .await?;
            let full = docs.len() >= limit;
            for (kind, key, doc) in docs {
                projection
                    .restore(&kind, &key, &doc)
                    .map_err(|reason| Error::Malformed {
                        kind: kind.clone(),
                        key: key.clone(),
                        reason,
                    })?;
                last = Some((kind, key));
            }
            if !full {
                break;
            }
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

    /// Folds one batch and writes it with its checkpoint: in one
    /// transaction, or in several when the batch touches more than
    /// [`EngineConfig::max_pending`] entities, each part's documents with
    /// the checkpoint of its last event.
    #[tracing::instrument(name = "projection.apply", skip_all, fields(projection = projection.name(), events = batch.len()), err)]
    async fn apply_batch(
        &self,
        projection: &mut dyn Projection,
        generation: &Generation,
        status: Status,
        from: Checkpoint,
        batch: &[RecordedEvent<String>],
    ) -> Result<Outcome, Error> {
        let max_pending = self.config.max_pending.max(1);
        // Every event decodes before any is applied.
        let envelopes = off_the_runtime(|| {
            batch
                .iter()
                .map(Envelope::decode_json)
                .collect::<Result<Vec<_>, _>>()
        })?;
        let mut from = from;
        let mut rest = batch;
        let mut unapplied = &envelopes[..];
        while !rest.is_empty() {
            let (changes, applied) = off_the_runtime(|| {
                let mut applied = 0;
                for envelope in unapplied {
                    projection.apply(envelope);
                    applied += 1;
                    if projection.pending() >= max_pending {
                        break;
                    }
                }
                (projection.take_changes(), applied)
            });
            unapplied = &unapplied[applied..];
            let (part, tail) = rest.split_at(applied);
            let to = part.last().expect("at least one event applied").checkpoint;
            let committed = self
                .read
                .commit(Batch {
                    model: projection.name(),
                    generation: generation.generation,
                    status,
                    from,
                    to,
                    events: part.len() as u64,
                    changes: &changes,
                })
                .await?;
            if !committed {
                return Ok(Outcome::Stale);
            }
            // An erasure: the fold scrubbed the person's facts, and the
            // store now drops what it kept of the old bytes.
            if part.iter().any(|e| {
                trellis_domain::event::erased_person(e.stream_id.as_str(), &e.event_type).is_some()
            }) {
                self.read.after_erasure().await?;
            }
            from = to;
            rest = tail;
        }
        Ok(Outcome::Committed(from))
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
    /// building generation is never served nor resumed, so the whole log is
    /// folded in memory and every document is derived and written once, at
    /// the end:
    ///
    /// - The log is read ahead (and decoded) on a task of its own. A
    ///   [`Projection::shardable`] projection is folded in
    ///   [`RebuildConfig::shards`] shards, each on a thread of the blocking
    ///   pool: an event goes to the shard that owns its entity, or to every
    ///   shard when every entity depends on it ([`Projection::route`]), so
    ///   each shard sees its events in log order.
    /// - Once the log is folded, each shard derives its documents in parts
    ///   of [`RebuildConfig::part`] entities into a bounded queue that
    ///   [`RebuildConfig::writers`] bulk writers ([`ReadStore::write_bulk`])
    ///   drain, each on a connection of its own (on PostgreSQL, a `COPY`
    ///   per part), then the shards are merged and the documents they share
    ///   are written last.
    /// - Every part commits on its own, in a transaction that checks the
    ///   generation is still building where this rebuild left it: a
    ///   transaction as long as the rebuild would hold back every reader of
    ///   the log (ADR 1). Once every writer is done, one more transaction
    ///   moves the generation's checkpoint to where the fold stopped, and
    ///   another makes the generation the active one.
    ///
    /// A rebuild that fails, or whose future is dropped, drops its
    /// generation ([`ReadStore::drop_generation`]; a dropped one on a task
    /// of its own, still holding the rebuild's lease), so what was written is
    /// never served and never stays behind; the active generation serves on.
    #[tracing::instrument(name = "projection.rebuild", skip_all, fields(projection = template.name()), err)]
    pub async fn rebuild(
        &self,
        template: &dyn Projection,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RebuildSummary, Error> {
        let name = template.name();
        let Some(lease) = self.read.try_lease(name, LeaseKind::Rebuild).await? else {
            return Err(Error::RebuildRunning(name.to_owned()));
        };
        // Generations left over by a rebuild that could not drop its own.
        self.read.drop_inactive(name, None).await?;
        let generation = self
            .read
            .create_generation(name, &template.fingerprint(), Status::Building)
            .await?;
        let abandon = Abandon {
            read: self.read.clone(),
            model: name,
            generation: generation.generation,
            lease: Some(lease),
        };
        match self.rebuild_into(template, &generation, progress).await {
            Ok(summary) => {
                abandon.keep().await;
                Ok(summary)
            }
            Err(error) => {
                abandon.drop_now().await;
                Err(error)
            }
        }
    }

    async fn rebuild_into(
        &self,
        template: &dyn Projection,
        generation: &Generation,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<RebuildSummary, Error> {
        let started = Instant::now();
        let name = template.name();
        let config = self.rebuild;
        let failed = Arc::new(AtomicBool::new(false));
        let writers = self.start_writers(name, generation.generation, &failed);
        let fed = self
            .fold_and_derive(template, writers.feed, &failed, progress)
            .await;
        if fed.is_err() {
            // Shards still deriving stop at their next part.
            failed.store(true, Ordering::Relaxed);
        }
        // Every writer has had its `Done` (or its queue closed): wait for
        // them all, the first to fail first.
        let mut written = Ok(());
        let mut tasks = writers.tasks;
        while let Some(outcome) = tasks.join_next().await {
            let outcome = match outcome {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err(changed(name, generation)),
                Ok(Err(error)) => Err(error),
                Err(e) => Err(Error::Database(format!(
                    "writing the documents of {name} failed: {e}"
                ))),
            };
            if written.is_ok() {
                written = outcome;
            }
        }
        let (checkpoint, events, folded) = match (fed, written) {
            (Ok(fed), Ok(())) => fed,
            (Err(Stop::Failed(error)), _) | (_, Err(error)) => return Err(error),
            (Err(Stop::Stopped), Ok(())) => {
                return Err(Error::Database(format!(
                    "the rebuild of {name} stopped without saying why"
                )));
            }
        };
        let wrote = started.elapsed() - folded;
        // The documents are in: the checkpoint moves, then the switch.
        let moved = self
            .read
            .commit(Batch {
                model: name,
                generation: generation.generation,
                status: Status::Building,
                from: Checkpoint::START,
                to: checkpoint,
                events,
                changes: &[],
            })
            .await?;
        if !moved {
            return Err(changed(name, generation));
        }
        tracing::info!(
            events,
            shards = config.shards,
            writers = config.writers,
            fold_seconds = folded.as_secs_f64(),
            write_seconds = wrote.as_secs_f64(),
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

    /// The bulk writers of a rebuild, on tasks of their own (aborted when
    /// dropped), and the queue that feeds them. A writer that fails raises
    /// `failed`, so the rest of the rebuild stops early.
    fn start_writers(
        &self,
        name: &'static str,
        generation: i32,
        failed: &Arc<AtomicBool>,
    ) -> Writers {
        let count = self.rebuild.writers.max(1);
        let (feed, parts) = Parts::channel(count);
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let (read, parts, failed) = (self.read.clone(), parts.clone(), failed.clone());
            tasks.spawn(async move {
                let outcome = read
                    .write_bulk(name, generation, Checkpoint::START, &parts)
                    .await;
                if !matches!(outcome, Ok(true)) {
                    failed.store(true, Ordering::Relaxed);
                }
                outcome
            });
        }
        Writers {
            feed: Feed {
                parts: feed,
                writers: count,
            },
            tasks,
        }
    }

    /// Reads the log, folds it in shards, has them derive their documents
    /// into the writers' queue, merges them and queues what they share, then
    /// a `Done` per writer. Answers where the fold stopped, how many events
    /// it folded and how long the fold took.
    async fn fold_and_derive(
        &self,
        template: &dyn Projection,
        feed: Feed,
        failed: &Arc<AtomicBool>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(Checkpoint, u64, Duration), Stop> {
        let started = Instant::now();
        let config = self.rebuild;
        let count = if template.shardable() {
            config.shards.max(1)
        } else {
            1
        };
        let sharded = count > 1;
        let mut shards: Vec<Shard> = (0..count)
            .map(|_| {
                Shard::start(
                    template.fresh(),
                    feed.parts.clone(),
                    config.part.max(1),
                    sharded,
                    failed.clone(),
                )
            })
            .collect();
        let mut checkpoint = Checkpoint::START;
        let mut events = 0u64;
        let mut head = self.log.head().await.map_err(failure)?;
        let mut pages = ReadAhead::start(
            self.log.clone(),
            Checkpoint::START,
            self.config.rebuild_batch_size,
        );
        while let Some(page) = pages.next().await.map_err(Stop::Failed)? {
            if failed.load(Ordering::Relaxed) {
                return Err(Stop::Stopped);
            }
            checkpoint = page.last;
            events += page.envelopes.len() as u64;
            if sharded {
                let mut routed: Vec<Vec<Envelope>> = shards.iter().map(|_| Vec::new()).collect();
                for envelope in page.envelopes {
                    match template.route(&envelope) {
                        Route::Shard(hash) => {
                            let shard = usize::try_from(hash % count as u64).unwrap_or(0);
                            routed[shard].push(envelope);
                        }
                        Route::Every => {
                            for other in &mut routed[1..] {
                                other.push(envelope.clone());
                            }
                            routed[0].push(envelope);
                        }
                        Route::Skip => {}
                    }
                }
                for (shard, batch) in shards.iter_mut().zip(routed) {
                    shard.fold(batch).await?;
                }
            } else {
                shards[0].fold(page.envelopes).await?;
            }
            if checkpoint > head {
                head = self.log.head().await.map_err(failure)?;
            }
            progress(Progress {
                events,
                checkpoint,
                head: head.max(checkpoint),
            });
        }
        let folded = started.elapsed();
        // Each shard now derives its documents into the writers' queue.
        for shard in &mut shards {
            shard.end().await?;
        }
        let mut merged: Option<Box<dyn Projection>> = None;
        for shard in shards {
            let shard = shard.finish().await?;
            match &mut merged {
                None => merged = Some(shard),
                Some(first) => first.merge(shard).map_err(|reason| {
                    Stop::Failed(Error::Database(format!(
                        "merging the shards of {} failed: {reason}",
                        template.name()
                    )))
                })?,
            }
        }
        if sharded && let Some(mut merged) = merged {
            let shared = tokio::task::spawn_blocking(move || merged.take_changes())
                .await
                .map_err(|e| failure_of("deriving the shared documents", e))?;
            // Dealt out, so that every writer takes a part (the catalogue
            // and the leaders' headers; their shares went with the reps).
            let mut hands: Vec<Vec<DocChange>> = (0..feed.writers).map(|_| Vec::new()).collect();
            for (n, change) in shared.into_iter().enumerate() {
                hands[n % feed.writers].push(change);
            }
            for hand in hands.into_iter().filter(|hand| !hand.is_empty()) {
                feed.send(Part::Docs(hand)).await?;
            }
        }
        for _ in 0..feed.writers {
            feed.send(Part::Done).await?;
        }
        Ok((checkpoint, events, folded))
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

/// Why a part of a rebuild stopped.
enum Stop {
    /// It failed, for this reason.
    Failed(Error),
    /// It stopped because another part failed (a writer, a shard).
    Stopped,
}

fn failure(error: impl Into<Error>) -> Stop {
    Stop::Failed(error.into())
}

fn failure_of(what: &str, error: tokio::task::JoinError) -> Stop {
    Stop::Failed(Error::Database(format!("{what} failed: {error}")))
}

fn changed(name: &str, generation: &Generation) -> Error {
    Error::Database(format!(
        "generation {} of {name} changed during its rebuild",
        generation.generation
    ))
}

/// A rebuild's writers and their queue.
struct Writers {
    feed: Feed,
    tasks: JoinSet<Result<bool, Error>>,
}

/// The sending end of the writers' queue.
struct Feed {
    parts: mpsc::Sender<Part>,
    writers: usize,
}

impl Feed {
    async fn send(&self, part: Part) -> Result<(), Stop> {
        // Closed: every writer has stopped, and says why.
        self.parts.send(part).await.map_err(|_| Stop::Stopped)
    }
}

/// What a shard is handed.
enum Fold {
    Events(Vec<Envelope>),
    /// The log is folded: derive the documents.
    End,
}

/// Runs `work`, which keeps a thread busy (folding a batch and deriving and
/// writing out its documents: tens of milliseconds for a batch of reps with
/// two years of history), without holding up the tasks queued on this worker
/// of the runtime: on a multi-threaded runtime the worker hands them to
/// another first ([`tokio::task::block_in_place`]). Inline elsewhere (a
/// current-thread runtime, which has no other worker to hand them to).
///
/// On two cores, a live batch run inline kept one of the two workers from
/// the pages and API reads queued behind it until it was done.
pub(crate) fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// One shard of a rebuild's fold: a projection folding on a thread of the
/// blocking pool, then deriving its documents into the writers' queue.
struct Shard {
    events: mpsc::Sender<Fold>,
    task: tokio::task::JoinHandle<Result<Box<dyn Projection>, Stop>>,
}

impl Shard {
    /// Batches of events queued ahead of a shard's fold.
    const DEPTH: usize = 4;

    fn start(
        mut projection: Box<dyn Projection>,
        parts: mpsc::Sender<Part>,
        part: usize,
        own_only: bool,
        failed: Arc<AtomicBool>,
    ) -> Shard {
        let (events, mut received) = mpsc::channel(Self::DEPTH);
        let task = tokio::task::spawn_blocking(move || {
            loop {
                match received.blocking_recv() {
                    Some(Fold::Events(batch)) => {
                        for envelope in &batch {
                            projection.apply(envelope);
                        }
                    }
                    Some(Fold::End) => break,
                    // The rebuild stopped reading.
                    None => return Err(Stop::Stopped),
                }
            }
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Err(Stop::Stopped);
                }
                let (changes, more) = if own_only {
                    projection.take_own_part(part)
                } else {
                    projection.take_changes_part(part)
                };
                if !changes.is_empty() && parts.blocking_send(Part::Docs(changes)).is_err() {
                    return Err(Stop::Stopped);
                }
                if !more {
                    return Ok(projection);
                }
            }
        });
        Shard { events, task }
    }

    async fn fold(&mut self, batch: Vec<Envelope>) -> Result<(), Stop> {
        if batch.is_empty() {
            return Ok(());
        }
        self.events
            .send(Fold::Events(batch))
            .await
            .map_err(|_| Stop::Stopped)
    }

    async fn end(&mut self) -> Result<(), Stop> {
        self.events.send(Fold::End).await.map_err(|_| Stop::Stopped)
    }

    /// The shard's projection, its documents all handed out.
    async fn finish(self) -> Result<Box<dyn Projection>, Stop> {
        self.task
            .await
            .map_err(|e| failure_of("a shard of the rebuild", e))?
    }
}

/// Drops a rebuild's generation unless the rebuild kept it: at once when
/// the rebuild fails, and on a task of its own when its future is dropped
/// (a cancelled rebuild). Holds the rebuild's lease until then, so no other
/// rebuild starts beside the clean-up.
struct Abandon {
    read: Arc<dyn ReadStore>,
    model: &'static str,
    generation: i32,
    lease: Option<Box<dyn Lease>>,
}

impl Abandon {
    /// The rebuild is done: keep the generation, release the lease.
    async fn keep(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }

    async fn drop_now(mut self) {
        let lease = self.lease.take();
        drop_generation(&*self.read, self.model, self.generation).await;
        if let Some(lease) = lease {
            lease.release().await;
        }
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let (read, model, generation) = (self.read.clone(), self.model, self.generation);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    drop_generation(&*read, model, generation).await;
                    drop(lease);
                });
            }
            // No runtime left: the next rebuild drops it.
            Err(_) => drop(lease),
        }
    }
}

async fn drop_generation(read: &dyn ReadStore, model: &str, generation: i32) {
    match read.drop_generation(model, generation).await {
        Ok(()) => tracing::info!(
            model,
            generation,
            "dropped the generation of a rebuild that stopped"
        ),
        Err(error) => tracing::warn!(
            model,
            generation,
            %error,
            "cannot drop the generation of a rebuild that stopped; the next rebuild will"
        ),
    }
}

/// One page of the log, decoded.
struct Page {
    envelopes: Vec<Envelope>,
    last: Checkpoint,
}

/// Reads the log's next pages on a task of its own, and decodes them on
/// another, while the caller folds the current one: the database works on
/// the next page while the last one is decoded. Stops when dropped.
struct ReadAhead {
    pages: mpsc::Receiver<Result<Page, Error>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl ReadAhead {
    /// Pages read ahead of the decoding, and decoded ahead of the fold.
    const DEPTH: usize = 2;

    fn start(log: Arc<dyn EventStore>, from: Checkpoint, page: usize) -> Self {
        let (send_read, mut read) = mpsc::channel(Self::DEPTH);
        let (send, pages) = mpsc::channel(Self::DEPTH);
        let reading = tokio::spawn(async move {
            let mut after = from;
            loop {
                match log.read_all_json(after, page.max(1)).await {
                    Ok(batch) => {
                        let Some(last) = batch.last().map(|e| e.checkpoint) else {
                            return;
                        };
                        after = last;
                        if send_read.send(Ok((batch, last))).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = send_read.send(Err(Error::from(error))).await;
                        return;
                    }
                }
            }
        });
        let decoding = tokio::spawn(async move {
            while let Some(batch) = read.recv().await {
                let page = batch.and_then(|(batch, last)| {
                    let envelopes = batch
                        .iter()
                        .map(Envelope::decode_json)
                        .collect::<Result<Vec<_>, Error>>()?;
                    Ok(Page { envelopes, last })
                });
                let failed = page.is_err();
                if send.send(page).await.is_err() || failed {
                    return;
                }
            }
        });
        ReadAhead {
            pages,
            tasks: [reading, decoding],
        }
    }

    /// The next page, `None` at the end of the log.
    async fn next(&mut self) -> Result<Option<Page>, Error> {
        self.pages.recv().await.transpose()
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
