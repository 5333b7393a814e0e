//! What both sides of every measurement share: the event, the time box, the
//! generic Trellis writers and readers, and how results are reported.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use trellis_eventstore::{
    AppendRequest, Checkpoint, CommandMeta, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use uuid::Uuid;

/// The event every append writes.
pub const EVENT_TYPE: &str = "FeedbackGiven";
pub const SCHEMA_VERSION: u16 = 1;
pub const ACTOR: &str = "user-0190a0b1-bench";

/// Streams per writer in the append measurements.
pub const STREAMS_PER_WRITER: usize = 100;

/// A `FeedbackGiven` payload of about 300 bytes, with fresh ids.
pub fn payload() -> Value {
    json!({
        "feedback_id": Uuid::now_v7(),
        "rep_id": Uuid::now_v7(),
        "given_by": Uuid::now_v7(),
        "competency": "discovery-questions",
        "kind": "coaching",
        "visibility": "rep-and-manager",
        "note": "Restated the customer's goals before the demo and asked two sharp follow-ups about budget timing.",
    })
}

pub fn new_event() -> NewEvent {
    NewEvent::new(EVENT_TYPE, SCHEMA_VERSION, payload(), Utc::now())
}

/// Fresh stream ids, `rep-<uuid>`.
pub fn streams(n: usize) -> Result<Vec<StreamId>> {
    (0..n)
        .map(|_| StreamId::for_entity("rep", Uuid::now_v7()).context("failed to make a stream id"))
        .collect()
}

/// A small, fast generator for the baselines' stand-in hashes (splitmix64).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        let seed = Uuid::now_v7().as_u128();
        Rng((seed as u64) ^ ((seed >> 64) as u64))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn hash(&mut self) -> [u8; 32] {
        let mut out = [0; 32];
        for chunk in out.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        out
    }
}

/// One row a baseline inserts: the same values an append stores, with a
/// locally computed version and random bytes where the chain would be.
#[derive(Debug)]
pub struct RawRow {
    pub event_id: Uuid,
    pub stream_version: i64,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The per-append part of a baseline's rows (what `CommandMeta` carries).
#[derive(Debug)]
pub struct RawMeta {
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub recorded_at: DateTime<Utc>,
}

impl RawMeta {
    pub fn new() -> Self {
        let command_id = Uuid::now_v7();
        RawMeta {
            command_id,
            correlation_id: command_id,
            recorded_at: Utc::now(),
        }
    }
}

/// `n` rows continuing a stream at `version`, which is advanced.
pub fn raw_rows(n: usize, version: &mut i64, rng: &mut Rng) -> Vec<RawRow> {
    (0..n)
        .map(|_| {
            *version += 1;
            RawRow {
                event_id: Uuid::now_v7(),
                stream_version: *version,
                payload: payload(),
                occurred_at: Utc::now(),
                prev_hash: rng.hash(),
                hash: rng.hash(),
            }
        })
        .collect()
}

/// One event as a baseline reader decodes it: every column, in the types a
/// client would use.
#[derive(Debug)]
#[allow(dead_code, reason = "decoded to be measured, never inspected")]
pub struct RawEvent {
    pub global_position: i64,
    pub tx_id: Option<u64>,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i64,
    pub payload: Value,
    pub actor: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// Copies a stored hash, whatever its length (the baselines store 32 bytes).
pub fn hash_from(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    let n = bytes.len().min(32);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Events counted over a wall-clock span.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub events: u64,
    pub elapsed: Duration,
}

impl Tally {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn add(&mut self, other: Tally) {
        self.events += other.events;
        self.elapsed += other.elapsed;
    }
}

/// Runs `writers` copies of `writer` until `duration` has passed; each
/// returns how many events it wrote. The span ends when the last one has
/// finished its last operation.
pub async fn time_boxed<F, Fut>(writers: usize, duration: Duration, writer: F) -> Result<Tally>
where
    F: Fn(Instant) -> Fut,
    Fut: Future<Output = Result<u64>> + Send + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = (0..writers)
        .map(|_| tokio::spawn(writer(deadline)))
        .collect();
    let mut events = 0;
    for handle in handles {
        events += handle.await.context("a writer panicked")??;
    }
    Ok(Tally {
        events,
        elapsed: start.elapsed(),
    })
}

/// Runs baseline then scenario, `rounds` times, so drift hits both alike.
pub async fn alternate<B, BF, S, SF>(
    rounds: usize,
    mut baseline: B,
    mut scenario: S,
) -> Result<(Tally, Tally)>
where
    B: FnMut() -> BF,
    BF: Future<Output = Result<Tally>>,
    S: FnMut() -> SF,
    SF: Future<Output = Result<Tally>>,
{
    let (mut base, mut scen) = (Tally::default(), Tally::default());
    for _ in 0..rounds {
        base.add(baseline().await?);
        scen.add(scenario().await?);
    }
    Ok((base, scen))
}

/// The read-all scenario in alternating rounds, after one untimed pass of
/// each side so neither is measured cold: `store`'s `read_all` (described as
/// `store_what`) against `raw`, an ordered scan of the same events, `page`
/// at a time. Records the ratio under `name`; both must read as many events.
pub async fn read_all_scenario<R, RF>(
    report: &mut Report,
    name: &str,
    page: usize,
    raw: R,
    store_what: &str,
    store: &dyn EventStore,
) -> Result<()>
where
    R: Fn() -> RF,
    RF: Future<Output = Result<Tally>>,
{
    raw().await?;
    trellis_read_all(store, page).await?;
    let (base, scen) = alternate(crate::ROUNDS, &raw, || trellis_read_all(store, page))
        .await
        .with_context(|| format!("{name} failed"))?;
    if base.events != scen.events {
        anyhow::bail!(
            "the baseline read {} events but read_all read {}",
            base.events,
            scen.events
        );
    }
    report.record(
        name,
        &format!("raw paged scan by global_position, {page} per page"),
        base,
        &format!("{store_what}::read_all, {page} per page"),
        scen,
    );
    Ok(())
}

/// One append scenario in alternating rounds: `writers` writers appending
/// `per_append` events at a time through `store` (described as `store_what`,
/// e.g. `PostgresStore`), against the same writers through `raw` (the
/// baseline, described as `baseline_what`). Records the ratio under `name`.
#[allow(clippy::too_many_arguments)]
pub async fn append_scenario<R, RF>(
    report: &mut Report,
    name: &str,
    (writers, per_append): (usize, usize),
    slice: Duration,
    baseline_what: &str,
    raw: R,
    store_what: &str,
    store: &Arc<dyn EventStore>,
) -> Result<()>
where
    R: Fn(Instant, usize) -> RF,
    RF: Future<Output = Result<u64>> + Send + 'static,
{
    let (base, scen) = alternate(
        crate::ROUNDS,
        || time_boxed(writers, slice, |deadline| raw(deadline, per_append)),
        || {
            time_boxed(writers, slice, |deadline| {
                trellis_writer(store.clone(), deadline, per_append)
            })
        },
    )
    .await
    .with_context(|| format!("{name} failed"))?;
    let events = if per_append == 1 {
        "1 event"
    } else {
        "100 events"
    };
    let scenario_what = format!("{store_what}::append, {events}, Exact version");
    report.record(name, baseline_what, base, &scenario_what, scen);
    Ok(())
}

/// Rounds of each side in [`on_off_scenario`], each a fifth of the other
/// lines' slice: twice their time in all, since the two sides differ by
/// less than either differs from raw, and in short rounds, since the
/// machine's speed moves within seconds and many alternations average
/// that out (four rounds of 2.5 s gave on ÷ off from 0.82 to 0.94 within
/// one hour; with both sides off, rounds of 0.5 s gave medians of 0.98 to
/// 1.03 over sixteen to thirty rounds).
pub const ON_OFF_ROUNDS: usize = 10 * crate::ROUNDS;

/// One-event appends with everything on (`on`: sealed, personal data
/// encrypted, and the tree grown and signed behind them from `signer`'s
/// store) against the same appends with everything off, in alternate
/// rounds on one store: the figure issue 16 bounds. The `_private` and
/// `_sealed` lines compare each side with raw INSERTs, but run after the
/// plain lines, on a larger file and a machine whose speed may have moved
/// since; here both sides share both. The ratio is on ÷ off. The signer
/// runs through the on rounds only, as `trellis serve`'s worker does when
/// checkpoints are on, after catching up (untimed) with the off rounds;
/// its last catch-up, over the round's events it has not yet integrated,
/// is timed as part of the round, so the on side pays for the whole tree
/// of what it wrote.
///
/// Each side appends about its own reps, made before the timed rounds
/// ([`Reps::prepare`]): the rounds measure appends about reps the store
/// knows, each one's data key already made, as a server's appends mostly
/// are. With a hundred new reps per writer per round, the key each new
/// rep's first event waits for dominated the on side (ADR 8). `off` and
/// `on` should reach the database through one connection pool: two pools
/// of the same store, alternating, measured the second about 1.3× faster
/// with nothing else different.
#[allow(clippy::too_many_arguments)]
pub async fn on_off_scenario(
    report: &mut Report,
    name: &str,
    writers: usize,
    slice: Duration,
    (off_what, off): (&str, &Arc<dyn EventStore>),
    (on_what, on): (&str, &Arc<dyn EventStore>),
    (signed, key): (&Arc<dyn EventStore>, &trellis_eventstore::note::SignerKey),
) -> Result<()> {
    let (off_reps, on_reps) = (Reps::default(), Reps::default());
    off_reps.prepare(off, writers).await?;
    on_reps.prepare(on, writers).await?;
    let slice = slice / 5;
    let tree = std::cell::Cell::new(Duration::ZERO);
    let (off_tally, on_tally) = alternate(
        ON_OFF_ROUNDS,
        || {
            time_boxed(writers, slice, |deadline| {
                off_reps.clone().writer(off.clone(), deadline, 1)
            })
        },
        || async {
            let signer = Signer::start(signed.clone(), key.clone()).await?;
            let mut tally = time_boxed(writers, slice, |deadline| {
                on_reps.clone().writer(on.clone(), deadline, 1)
            })
            .await?;
            let last_catch_up = Instant::now();
            signer.stop().await;
            tally.elapsed += last_catch_up.elapsed();
            tree.set(tree.get() + last_catch_up.elapsed());
            Ok(tally)
        },
    )
    .await
    .with_context(|| format!("{name} failed"))?;
    report.record(
        name,
        &format!("{off_what}::append, 1 event, everything off"),
        off_tally,
        &format!("{on_what}::append, 1 event, everything on"),
        on_tally,
    );
    println!("{}", tree_share(name, tree.get(), on_tally));
    Ok(())
}

/// The line that says how much of the on side's time its tree's last
/// catch-ups took: the part of on ÷ off that is the tree's.
fn tree_share(name: &str, tree: Duration, on: Tally) -> String {
    let share = tree.as_secs_f64() / on.elapsed.as_secs_f64().max(1e-9);
    let per_event = tree.as_secs_f64() * 1e6 / (on.events.max(1) as f64);
    format!(
        "{name:<16} tree      {:.2} s of the on side's {:.2} s ({:.1}%), {per_event:.1} µs an event",
        tree.as_secs_f64(),
        on.elapsed.as_secs_f64(),
        share * 100.0
    )
}

/// One Trellis writer: round-robin over its own streams, `per_append`
/// events per append, each append expecting the version it last saw.
pub async fn trellis_writer(
    store: Arc<dyn EventStore>,
    deadline: Instant,
    per_append: usize,
) -> Result<u64> {
    let mut reps = RepSet::new()?;
    append_until(&*store, deadline, per_append, &mut reps).await
}

/// What [`trellis_writer`] does with `reps`, one writer's streams.
async fn append_until(
    store: &dyn EventStore,
    deadline: Instant,
    per_append: usize,
    reps: &mut RepSet,
) -> Result<u64> {
    let mut written = 0u64;
    while Instant::now() < deadline {
        reps.append(store, per_append).await?;
        written += per_append as u64;
    }
    Ok(written)
}

/// One writer's streams (`rep-<uuid>`, so each is about a rep of its
/// own) and the version it last saw of each.
struct RepSet {
    streams: Vec<StreamId>,
    versions: Vec<u64>,
    next: usize,
}

impl RepSet {
    fn new() -> Result<Self> {
        Ok(RepSet {
            streams: streams(STREAMS_PER_WRITER)?,
            versions: vec![0; STREAMS_PER_WRITER],
            next: 0,
        })
    }

    /// Appends `per_append` events to the next stream in turn, expecting
    /// the version last seen.
    async fn append(&mut self, store: &dyn EventStore, per_append: usize) -> Result<()> {
        let i = self.next % self.streams.len();
        self.next += 1;
        let events: Vec<NewEvent> = (0..per_append).map(|_| new_event()).collect();
        let meta = CommandMeta::new(ACTOR, Utc::now());
        // Handed over, as the service's command layer appends.
        let outcome = store
            .append_owned(AppendRequest {
                stream: self.streams[i].clone(),
                expected: ExpectedVersion::Exact(self.versions[i]),
                meta,
                events,
            })
            .await
            .context("a Trellis append failed")?;
        self.versions[i] = outcome.stream_version;
        Ok(())
    }
}

/// The reps one side of a line appends to, kept from round to round: each
/// writer takes a set of streams when it starts and gives it back when it
/// stops. A server appends mostly about reps it already knows, whose data
/// keys were made with their first event; [`Reps::prepare`] makes them so
/// before the timed rounds, so a round does not measure a hundred new reps
/// per writer.
#[derive(Clone, Default)]
pub struct Reps(Arc<std::sync::Mutex<Vec<RepSet>>>);

impl Reps {
    /// Makes `writers` sets of streams and appends one event to each
    /// stream through `store` (untimed).
    pub async fn prepare(&self, store: &Arc<dyn EventStore>, writers: usize) -> Result<()> {
        let mut handles = Vec::with_capacity(writers);
        for _ in 0..writers {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut reps = RepSet::new()?;
                for _ in 0..STREAMS_PER_WRITER {
                    reps.append(&*store, 1).await?;
                }
                anyhow::Ok(reps)
            }));
        }
        for handle in handles {
            let reps = handle.await.context("a preparing writer panicked")??;
            self.lock().push(reps);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RepSet>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`trellis_writer`] on a set of these reps (a new set when none is free).
    pub async fn writer(
        self,
        store: Arc<dyn EventStore>,
        deadline: Instant,
        per_append: usize,
    ) -> Result<u64> {
        let taken = self.lock().pop();
        let mut reps = match taken {
            Some(reps) => reps,
            None => RepSet::new()?,
        };
        let written = append_until(&*store, deadline, per_append, &mut reps).await;
        self.lock().push(reps);
        written
    }
}

/// Reads the whole log through `EventStore::read_all`, `page` at a time.
pub async fn trellis_read_all(store: &dyn EventStore, page: usize) -> Result<Tally> {
    let start = Instant::now();
    let mut after = Checkpoint::START;
    let mut events = 0u64;
    loop {
        let batch = store
            .read_all(after, page)
            .await
            .context("EventStore::read_all failed")?;
        let Some(last) = batch.last() else { break };
        after = last.checkpoint;
        events += batch.len() as u64;
        std::hint::black_box(&batch);
    }
    Ok(Tally {
        events,
        elapsed: start.elapsed(),
    })
}

/// Appends `target` events through the real append path: `writers`
/// concurrent writers, `per_append` events per append, spread over `streams`
/// streams. Shows progress on stderr.
pub async fn fill(
    store: Arc<dyn EventStore>,
    label: &str,
    target: u64,
    writers: usize,
    streams_total: usize,
    per_append: usize,
) -> Result<Tally> {
    let start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                show_progress(&label, done.load(Ordering::Relaxed), target, start);
            }
        })
    };
    let appends = target.div_ceil(per_append as u64);
    let mut handles = Vec::with_capacity(writers);
    for w in 0..writers as u64 {
        let store = store.clone();
        let done = done.clone();
        // Writer w makes appends w, w + writers, w + 2 * writers, ...
        let streams = streams(streams_total.div_ceil(writers))?;
        handles.push(tokio::spawn(async move {
            let mut versions = vec![0u64; streams.len()];
            for (k, a) in (w..appends).step_by(writers).enumerate() {
                let left = target - a * per_append as u64;
                let n = usize::try_from(left).map_or(per_append, |l| l.min(per_append));
                let i = k % streams.len();
                let events: Vec<NewEvent> = (0..n).map(|_| new_event()).collect();
                let meta = CommandMeta::new(ACTOR, Utc::now());
                let outcome = store
                    .append(
                        &streams[i],
                        ExpectedVersion::Exact(versions[i]),
                        &meta,
                        &events,
                    )
                    .await
                    .context("an append while filling the log failed")?;
                versions[i] = outcome.stream_version;
                done.fetch_add(n as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let mut result = Ok(());
    for handle in handles {
        let outcome = handle.await.context("a filling writer panicked");
        if result.is_ok() {
            result = outcome.and_then(|r| r);
        }
    }
    progress.abort();
    show_progress(label, done.load(Ordering::Relaxed), target, start);
    eprintln!();
    result?;
    Ok(Tally {
        events: done.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    })
}

pub(crate) fn show_progress(label: &str, done: u64, target: u64, start: Instant) {
    let percent = 100.0 * done as f64 / target.max(1) as f64;
    let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r{label}: {percent:5.1}% ({done}/{target} events, {rate:.0} events/s)   "
    );
    let _ = err.flush();
}

/// The measurements of one run and the final ratios line.
#[derive(Debug, Default)]
pub struct Report {
    ratios: Vec<(String, f64)>,
    latencies: Vec<(String, f64)>,
    memory: Vec<(String, f64)>,
}

impl Report {
    /// Prints both sides of one measurement and records their ratio under `name`.
    pub fn record(
        &mut self,
        name: &str,
        baseline_what: &str,
        baseline: Tally,
        scenario_what: &str,
        scenario: Tally,
    ) {
        line(name, "baseline", baseline_what, baseline);
        line(name, "trellis", scenario_what, scenario);
        let ratio = scenario.rate() / baseline.rate().max(1e-9);
        println!("{name:<16} ratio     {ratio:.2}");
        self.ratios.push((name.to_owned(), ratio));
    }

    /// Like [`Report::record`], for a measurement made in blocks of rounds
    /// run back to back (each block one round or more of each side, ordered
    /// so that each side goes first as often): records the median of the
    /// blocks' own ratios. A block's rounds ran under the same conditions,
    /// so a slow spell of the machine that hits one round moves one block's
    /// ratio, not the result. The pooled ratio (all events over all time,
    /// of each side) is printed too.
    pub fn record_blocks(
        &mut self,
        name: &str,
        baseline_what: &str,
        baseline: Tally,
        scenario_what: &str,
        scenario: Tally,
        block_ratios: &[f64],
    ) {
        line(name, "baseline", baseline_what, baseline);
        line(name, "trellis", scenario_what, scenario);
        let pooled = scenario.rate() / baseline.rate().max(1e-9);
        let ratio = median(block_ratios);
        println!(
            "{name:<16} ratio     {ratio:.2}  (median of {} blocks; pooled {pooled:.2})",
            block_ratios.len()
        );
        self.ratios.push((name.to_owned(), ratio));
    }

    /// Records a latency figure, in milliseconds, for the `latency_ms:` line.
    pub fn latency(&mut self, name: &str, milliseconds: f64) {
        self.latencies.push((name.to_owned(), milliseconds));
    }

    /// `latency_ms: name=value ...`, when a scenario measured latency.
    pub fn latency_line(&self) -> Option<String> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut line = String::from("latency_ms:");
        for (name, ms) in &self.latencies {
            line.push_str(&format!(" {name}={ms:.2}"));
        }
        Some(line)
    }

    /// Records a memory figure, in MiB, for the `memory_mb:` line.
    pub fn memory(&mut self, name: &str, mib: f64) {
        self.memory.push((name.to_owned(), mib));
    }

    /// `memory_mb: name=value ...`, when a scenario measured memory.
    pub fn memory_line(&self) -> Option<String> {
        if self.memory.is_empty() {
            return None;
        }
        let mut line = String::from("memory_mb:");
        for (name, mib) in &self.memory {
            line.push_str(&format!(" {name}={mib:.0}"));
        }
        Some(line)
    }

    pub fn ratios_line(&self) -> String {
        let mut line = String::from("ratios:");
        for (name, ratio) in &self.ratios {
            line.push_str(&format!(" {name}={ratio:.2}"));
        }
        line
    }
}

/// The median of `values` (the mean of the middle two when their number is
/// even); 0 when there are none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn line(name: &str, side: &str, what: &str, tally: Tally) {
    println!(
        "{name:<16} {side:<9} {rate:>9.0} events/s  {events:>8} events in {secs:>6.2} s  {what}",
        rate = tally.rate(),
        events = tally.events,
        secs = tally.elapsed.as_secs_f64(),
    );
}

/// A checkpoint signer running beside the sealed scenarios, as `trellis
/// serve` runs one: grows the log's tree behind the appends (at most every
/// `CATCH_UP_INTERVAL`) and signs it every 1,000 events. [`Signer::stop`]
/// ends it between scenarios; dropped, it is aborted.
#[derive(Debug)]
pub struct Signer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Signer {
    /// Starts once the tree covers the log as it stands: a server's signer
    /// follows the appends, so what the scenarios measure is that, not a
    /// first pass over the events the scenarios before them wrote.
    pub async fn start(
        store: Arc<dyn EventStore>,
        key: trellis_eventstore::note::SignerKey,
    ) -> Result<Signer> {
        use trellis_eventstore::tree::TreeBuilder;
        let mut builder = TreeBuilder::load(&*store)
            .await
            .context("the bench's signer could not load the tree")?;
        let mut signed = builder
            .catch_up(&*store)
            .await
            .context("the bench's signer could not catch up with the log")?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                // Told to stop, it integrates what is left first.
                let stopping = tokio::select! {
                    _ = &mut stopped => true,
                    () = tokio::time::sleep(trellis_eventstore::tree::CATCH_UP_INTERVAL) => false,
                };
                match builder.catch_up(&*store).await {
                    Ok(size) => {
                        if size >= signed + 1_000
                            && builder
                                .sign(&*store, &key, "trellis.bench/log", chrono::Utc::now())
                                .await
                                .is_ok()
                        {
                            signed = size;
                        }
                    }
                    // As serve's worker: start again from the tree as stored.
                    Err(_) => {
                        if let Ok(reloaded) = TreeBuilder::load(&*store).await {
                            builder = reloaded;
                        }
                    }
                }
                if stopping {
                    return;
                }
            }
        });
        Ok(Signer {
            stop: Some(stop),
            task,
        })
    }

    /// Stops once the tree covers every event appended before this call
    /// (a last catch-up, signed when due). Dropped instead, a
    /// signer could leave a write to the tree running that the next
    /// scenario's signer, loading the tree meanwhile, would then trip on.
    pub async fn stop(mut self) {
        drop(self.stop.take());
        let _ = (&mut self.task).await;
    }
}

/// The signing key of the sealed scenarios.
pub fn bench_key() -> Result<trellis_eventstore::note::SignerKey> {
    trellis_eventstore::note::SignerKey::generate("trellis.bench/log")
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `store` with personal data encrypted per person, as `trellis serve`
/// runs it (crypto-shredding): the note of every bench event is sealed
/// with its rep's key, kept in `keys`, and scans read the next page while
/// the vault decrypts the last.
pub fn private(
    store: Arc<dyn EventStore>,
    keys: Arc<dyn trellis_eventstore::vault::KeyStore>,
) -> Arc<dyn EventStore> {
    Arc::new(trellis_eventstore::vault::Vault::new(
        Arc::new(trellis_eventstore::ReadAhead::new(store)),
        keys,
        Arc::new(trellis_commands::personal::DomainPersonalData),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trellis_eventstore::sqlite::SqliteStore;

    use super::*;

    /// Every stream of the log and its last version.
    async fn heads(store: &dyn EventStore) -> BTreeMap<String, u64> {
        let mut heads = BTreeMap::new();
        trellis_eventstore::scan_streams_after(store, None, 1000, |event| {
            heads.insert(event.stream_id.to_string(), event.stream_version);
            Ok::<_, trellis_eventstore::Error>(std::ops::ControlFlow::Continue(()))
        })
        .await
        .expect("a scan");
        heads
    }

    #[test]
    fn the_tree_line_gives_the_catch_ups_share_of_the_on_side_and_their_cost_an_event() {
        let on = Tally {
            events: 100_000,
            elapsed: Duration::from_secs(10),
        };
        let line = tree_share("append_8w_on_off", Duration::from_millis(500), on);
        assert!(line.starts_with("append_8w_on_off tree "), "{line}");
        assert!(
            line.contains("0.50 s of the on side's 10.00 s (5.0%)"),
            "{line}"
        );
        assert!(line.ends_with("5.0 µs an event"), "{line}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_side_s_rounds_append_about_the_reps_it_prepared_and_continue_their_versions() {
        let dir =
            TempDir(std::env::temp_dir().join(format!("trellis-bench-reps-{}", Uuid::now_v7())));
        let store: Arc<dyn EventStore> =
            Arc::new(SqliteStore::open(&dir.0).await.expect("a store"));
        let reps = Reps::default();
        reps.prepare(&store, 2).await.expect("prepared");
        let prepared = heads(&*store).await;
        assert_eq!(prepared.len(), 2 * STREAMS_PER_WRITER);
        assert!(prepared.values().all(|v| *v == 1), "one event each");

        let mut written = 0;
        for round in 0..3 {
            let tally = time_boxed(2, Duration::from_millis(100), |deadline| {
                reps.clone().writer(store.clone(), deadline, 1)
            })
            .await
            .expect("a round");
            // A round that wrote nothing would not show versions carried on.
            assert!(tally.events > 0, "round {round} appended nothing");
            written += tally.events;
        }
        let after = heads(&*store).await;
        // No new rep: every round appended to the prepared streams, each
        // append expecting the version the round before left.
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            prepared.keys().collect::<Vec<_>>()
        );
        let total: u64 = after.values().sum();
        assert_eq!(total, 2 * STREAMS_PER_WRITER as u64 + written);
    }

    /// A directory removed when the test ends, failed or not.
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
