//! The relay: the global log, from a durable checkpoint, to JetStream.
//!
//! # How exactly-once and order hold
//! - Every message carries `Nats-Msg-Id` = event id: within the stream's
//!   duplicate window JetStream acknowledges a re-publish as a duplicate and
//!   stores nothing. JetStream checks the id *before* any expectation header,
//!   so a re-published event is acknowledged even when it is not the last.
//! - Publishes are pipelined (up to [`RelayConfig::max_in_flight`]
//!   unacknowledged). Each one but the first of a chain carries
//!   `Nats-Expected-Last-Msg-Id` = the previous event's id, so when one
//!   publish fails (lost, timed out, refused) every later one in flight is
//!   refused too: the stream is always a prefix of the log, in log order.
//! - A chain starts (no expectation) only right after an acknowledged event:
//!   at start-up, and after a failure, from the first unacknowledged event.
//!   Its predecessor is in the stream, so the prefix property holds, and a
//!   broker that restarted and forgot its last message id cannot stall it.
//! - The checkpoint moves only to events whose ack (and every earlier ack)
//!   arrived. At start-up the relay also reads the stream's last message and,
//!   when that event is past the checkpoint, resumes after it: what a crashed
//!   relay published but did not checkpoint is not published again, even
//!   after the duplicate window.
//! - While the broker is down every failure backs off (100 ms doubling to
//!   5 s, with jitter) and retries the same events; nothing is skipped. The
//!   log's writers never wait for the relay. After six failures in a row the
//!   relay also sets the stream up again (it may have been deleted).
//! - Reading the log, encoding and publishing run as three tasks joined by
//!   small channels, so they overlap.
//! - Acks come back on one subscription of the relay's and are matched to
//!   their publishes by number (`Acks`), rather than through a response
//!   future per publish.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};
use futures_util::StreamExt as _;
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use trellis_contracts::{EVENTS_STREAM, EVENTS_SUBJECT_PREFIX};
use trellis_eventstore::{Checkpoint, EventStore, Follower, RecordedEvent, StreamId};
use uuid::Uuid;

use crate::lease::{AbortOnDrop, Lease, LeaseConfig};
use crate::message::{EncodeError, Encoder, Erasure, MsgId, Outgoing};

/// Publishes that failed and were retried, by stream: a counter of the
/// [`metrics`] facade's global recorder (`trellis serve` renders it on
/// `/metrics`).
pub const PUBLISH_ERRORS: &str = "trellis_relay_publish_errors_total";

/// How the relay publishes.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The JetStream stream, `TRELLIS_EVENTS`.
    pub stream: String,
    /// Subjects are `<prefix>.<category>.<entity id>.<event type>`; the
    /// default is the contract's `trellis.events`.
    pub subject_prefix: String,
    /// Copies of the stream: 1 on one machine, 3 in a cluster.
    pub replicas: usize,
    /// How long the broker remembers message ids to drop duplicates. Keep it
    /// well above `ack_timeout` plus the longest backoff (5 s): a publish whose
    /// ack was lost is retried within that time and must be recognised.
    pub duplicate_window: Duration,
    /// Events read from the log per batch. The checkpoint is saved (in the
    /// background, never holding up publishing) about once per ten batches
    /// acknowledged, when the relay is caught up, and when it stops. A relay
    /// that dies between saves loses no work: its successor resumes after
    /// the stream's last message.
    pub batch: usize,
    /// Publishes awaiting their ack at most.
    pub max_in_flight: usize,
    /// How long a publish may wait for its ack before it counts as failed.
    pub ack_timeout: Duration,
    /// The CloudEvents `source` attribute.
    pub source: String,
    /// The name the relay's checkpoint is saved under.
    pub checkpoint_name: String,
    /// How relays of the same stream agree on the single active one.
    pub lease: LeaseConfig,
    /// How often a standby relay tries to take over.
    pub standby_retry: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            stream: EVENTS_STREAM.into(),
            subject_prefix: EVENTS_SUBJECT_PREFIX.into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(3600),
            batch: 1000,
            max_in_flight: 2000,
            ack_timeout: Duration::from_secs(5),
            source: "urn:trellis".into(),
            checkpoint_name: format!("relay:{EVENTS_STREAM}"),
            lease: LeaseConfig::InProcess,
            standby_retry: Duration::from_secs(1),
        }
    }
}

impl RelayConfig {
    /// The defaults for a stream and subject prefix of its own, checkpointed
    /// under `relay:<stream>`.
    pub fn for_stream(stream: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        let stream = stream.into();
        RelayConfig {
            checkpoint_name: format!("relay:{stream}"),
            stream,
            subject_prefix: subject_prefix.into(),
            ..RelayConfig::default()
        }
    }

    /// Take the single-active lease as a PostgreSQL advisory lock (use the
    /// log's database).
    pub fn with_postgres_lease(mut self, database_url: impl Into<String>) -> Self {
        self.lease = LeaseConfig::Postgres {
            url: database_url.into(),
        };
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("the broker: {0}")]
    Broker(String),
    #[error("invalid NATS URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Store(#[from] trellis_eventstore::Error),
}

/// A broker error, saying what the relay was doing: `doing` reads as
/// "cannot <doing>", e.g. "create or update stream TRELLIS_EVENTS".
fn broker(doing: &str, e: impl std::fmt::Display) -> RelayError {
    RelayError::Broker(format!("cannot {doing}: {e}"))
}

/// Creates the stream, or updates it to `config` (subjects, duplicate
/// window, replicas); running it again changes nothing.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &RelayConfig,
) -> Result<(), RelayError> {
    let wanted = jetstream::stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        duplicate_window: config.duplicate_window,
        num_replicas: config.replicas,
        storage: StorageType::File,
        ..Default::default()
    };
    let setting_up = format!("create or update stream {}", config.stream);
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| broker(&setting_up, e))?;
    let current = stream
        .info()
        .await
        .map_err(|e| broker(&setting_up, e))?
        .config
        .clone();
    if current.subjects != wanted.subjects
        || current.duplicate_window != wanted.duplicate_window
        || current.num_replicas != wanted.num_replicas
    {
        tracing::info!(stream = %config.stream, "relay updates the stream's configuration");
        let updated = jetstream::stream::Config {
            subjects: wanted.subjects,
            duplicate_window: wanted.duplicate_window,
            num_replicas: wanted.num_replicas,
            ..current
        };
        js.update_stream(updated)
            .await
            .map_err(|e| broker(&setting_up, e))?;
    }
    Ok(())
}

/// What a running relay reports.
#[derive(Debug, Default)]
struct Shared {
    active: AtomicBool,
    acked: AtomicU64,
    duplicates: AtomicU64,
    /// The checkpoint of the last acknowledged event (every earlier one is acknowledged too).
    acked_upto: Mutex<Option<Checkpoint>>,
    /// The last checkpoint saved; saves are serialised and never go back.
    saved_upto: tokio::sync::Mutex<Option<Checkpoint>>,
}

impl Shared {
    async fn save(&self, store: &dyn EventStore, name: &str, checkpoint: Checkpoint) {
        let mut saved = self.saved_upto.lock().await;
        if saved.is_some_and(|saved| saved >= checkpoint) {
            return;
        }
        match store.save_checkpoint(name, checkpoint).await {
            Ok(()) => *saved = Some(checkpoint),
            // Publishing goes on; the next save catches up.
            Err(e) => tracing::warn!(error = %e, "relay cannot save its checkpoint"),
        }
    }
}

/// Publishes the log to JetStream. Several may run; one is active at a time.
#[derive(Debug, Clone)]
pub struct Relay {
    store: Arc<dyn EventStore>,
    js: jetstream::Context,
    config: RelayConfig,
    shared: Arc<Shared>,
}

impl Relay {
    pub fn new(
        store: Arc<dyn EventStore>,
        client: async_nats::Client,
        config: RelayConfig,
    ) -> Self {
        // For setting up and inspecting the stream; events are published
        // through [`Acks`].
        let js = jetstream::ContextBuilder::new()
            .timeout(config.ack_timeout)
            .build(client);
        Relay {
            store,
            js,
            config,
            shared: Arc::default(),
        }
    }

    /// Events acknowledged by the broker (duplicates included) since this relay started.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Whether this relay holds the lease and publishes.
    pub fn is_active(&self) -> bool {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Runs until `shutdown` completes: waits for the lease, then publishes;
    /// goes back to standby when the lease is lost. Never skips an event,
    /// backs off and retries while the broker or the store is away, and
    /// moves the checkpoint only past acknowledged events.
    #[tracing::instrument(name = "relay.run", skip_all, fields(stream = %self.config.stream))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        tokio::pin!(shutdown);
        // Shown at zero from the start, not only after the first failure.
        metrics::describe_counter!(
            PUBLISH_ERRORS,
            "Relay publishes that failed (lost, timed out or refused) and were retried."
        );
        metrics::counter!(PUBLISH_ERRORS, "stream" => self.config.stream.clone()).increment(0);
        loop {
            let mut lease = tokio::select! {
                () = &mut shutdown => return Ok(()),
                lease = Lease::acquire(&self.config.lease, &self.config.stream, self.config.standby_retry) => lease,
            };
            self.shared.active.store(true, Ordering::Relaxed);
            tracing::info!("relay is active");
            let stop = tokio::select! {
                () = &mut shutdown => true,
                () = lease.lost() => false,
                () = self.lead() => false,
            };
            self.shared.active.store(false, Ordering::Relaxed);
            // Whatever was acknowledged and not yet saved: save it now.
            self.save_progress().await;
            drop(lease);
            if stop {
                return Ok(());
            }
            tracing::warn!("relay lost its lease; standing by");
        }
    }

    /// Saves the checkpoint of the last acknowledged event, if it moved.
    async fn save_progress(&self) {
        let acked = *self.shared.acked_upto.lock().expect("acked_upto");
        if let Some(checkpoint) = acked {
            self.shared
                .save(&*self.store, &self.config.checkpoint_name, checkpoint)
                .await;
        }
    }

    /// Saves in the background, so publishing never waits for the store;
    /// skipped while the previous save is still running (the next one covers it).
    fn save_in_background(
        &self,
        checkpoint: Checkpoint,
        saving: &mut Option<tokio::task::JoinHandle<()>>,
    ) -> bool {
        if saving.as_ref().is_some_and(|task| !task.is_finished()) {
            return false;
        }
        let (store, shared) = (self.store.clone(), self.shared.clone());
        let name = self.config.checkpoint_name.clone();
        *saving = Some(tokio::spawn(async move {
            shared.save(&*store, &name, checkpoint).await;
        }));
        true
    }

    /// Publishes as the active relay, forever.
    async fn lead(&self) {
        let mut backoff = Backoff::new();
        while let Err(e) = ensure_stream(&self.js, &self.config).await {
            tracing::warn!(error = %e, "relay cannot set up its stream; retrying");
            backoff.wait().await;
        }
        let mut backoff = Backoff::new();
        let from = loop {
            match self.resume_point().await {
                Ok(from) => break from,
                Err(e) => {
                    tracing::warn!(error = %e, "relay cannot load its checkpoint; retrying");
                    backoff.wait().await;
                }
            }
        };
        *self.shared.acked_upto.lock().expect("acked_upto") = None;
        // Three stages, so reading, encoding and publishing overlap.
        let (read_tx, read_rx) = mpsc::channel(2);
        let (encoded_tx, encoded_rx) = mpsc::channel(2);
        let _reader = AbortOnDrop(tokio::spawn(read(
            self.store.clone(),
            from,
            self.config.batch,
            read_tx,
        )));
        let _encoder = AbortOnDrop(tokio::spawn(encode(
            self.config.clone(),
            read_rx,
            encoded_tx,
        )));
        self.publish(encoded_rx).await;
    }

    /// Deletes from the stream what an erasure obliges it to forget, so a
    /// subscriber replaying the stream later finds no personal data of the
    /// erased person. A failure is logged with what finishes the job; it
    /// does not stop the relay.
    async fn forget(&self, erasure: Erasure) {
        match erasure {
            Erasure::Entity(subjects) => self.purge_erased(&subjects).await,
            Erasure::LeaderNamed(leader) => match self.delete_leader_named(leader).await {
                Ok(deleted) => {
                    tracing::info!(%leader, deleted, "deleted an erased leader's LeaderAssigned messages")
                }
                Err(e) => tracing::error!(error = %e, %leader,
                    "could not delete an erased leader's LeaderAssigned messages; \
                     delete every `*.team.*.LeaderAssigned` message naming them with `nats stream rmm`"),
            },
        }
    }

    /// Purges the messages of an erased rep's stream, all but the last (the
    /// erasure itself, which subscribers must see).
    async fn purge_erased(&self, subjects: &str) {
        let stream = &self.config.stream;
        let purged = match self.js.get_stream(stream).await {
            Ok(s) => s.purge().filter(subjects).keep(1).await.map(|p| p.purged),
            Err(e) => Err(async_nats::jetstream::stream::PurgeError::with_source(
                async_nats::jetstream::stream::PurgeErrorKind::Request,
                e,
            )),
        };
        match purged {
            Ok(purged) => tracing::info!(%subjects, purged, "purged an erased person's messages"),
            Err(e) => tracing::error!(error = %e, %subjects,
                "could not purge an erased person's messages; run `nats stream purge {stream} --subject '{subjects}' --keep 1`"),
        }
    }

    /// Deletes every team's `LeaderAssigned` message that names `leader`
    /// (their name is in it); returns how many. The teams' other messages,
    /// and the other leaders' assignments, stay.
    async fn delete_leader_named(&self, leader: Uuid) -> Result<u64, async_nats::Error> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        use trellis_contracts::proto::envelope::Payload;
        use trellis_domain::EventPayload as _;

        let stream = self.js.get_stream(&self.config.stream).await?;
        let subject = format!(
            "{}.{}.*.{}",
            self.config.subject_prefix,
            trellis_domain::TeamEvent::CATEGORY,
            trellis_domain::team::LeaderAssigned::EVENT_TYPE
        );
        let leader = leader.to_string();
        let (mut from, mut deleted) = (1, 0);
        loop {
            let message = match stream
                .raw_message_builder()
                .sequence(from)
                .next_by_subject(subject.clone())
                .send()
                .await
            {
                Ok(message) => message,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(deleted),
                Err(e) => return Err(e.into()),
            };
            from = message.sequence + 1;
            let names_leader = trellis_contracts::Envelope::decode(message.payload.as_ref())
                .is_ok_and(|envelope| {
                    matches!(envelope.payload, Some(Payload::LeaderAssigned(a)) if a.leader_id == leader)
                });
            if names_leader && stream.delete_message(message.sequence).await? {
                deleted += 1;
            }
        }
    }

    /// Where to start: the saved checkpoint, or the stream's last event when
    /// a previous relay published past its checkpoint.
    async fn resume_point(&self) -> Result<Checkpoint, RelayError> {
        let saved = self
            .store
            .load_checkpoint(&self.config.checkpoint_name)
            .await?
            .unwrap_or(Checkpoint::START);
        let last = match self.last_published().await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot read the stream's last message; resuming from its checkpoint");
                None
            }
        };
        match last {
            Some(last) if last > saved => {
                tracing::info!(%saved, %last, "relay resumes after the stream's last event");
                Ok(last)
            }
            _ => Ok(saved),
        }
    }

    /// The checkpoint of the stream's last message, if it is an event of this log.
    async fn last_published(&self) -> Result<Option<Checkpoint>, RelayError> {
        let reading = format!("read the last message of stream {}", self.config.stream);
        let mut stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| broker(&reading, e))?;
        let last = stream
            .info()
            .await
            .map_err(|e| broker(&reading, e))?
            .state
            .last_sequence;
        if last == 0 {
            return Ok(None);
        }
        let message = stream
            .get_raw_message(last)
            .await
            .map_err(|e| broker(&reading, e))?;
        let Ok(envelope) = trellis_contracts::Envelope::decode(message.payload) else {
            return Ok(None);
        };
        let Ok(stream_id) = StreamId::new(envelope.stream_id) else {
            return Ok(None);
        };
        let Some(version) = envelope.stream_version.checked_sub(1) else {
            return Ok(None);
        };
        let found = self.store.read_stream(&stream_id, version, 1).await?;
        Ok(found
            .first()
            .filter(|event| event.event_id.to_string() == envelope.event_id)
            .map(|event| event.checkpoint))
    }

    /// A subscription to this relay's acks; retries until it has one.
    async fn subscribe_acks(&self) -> Acks {
        let mut backoff = Backoff::new();
        loop {
            match Acks::subscribe(
                &self.js.client(),
                &self.config.stream,
                self.config.ack_timeout,
            )
            .await
            {
                Ok(acks) => return acks,
                Err(e) => {
                    tracing::warn!(error = %e, "relay cannot subscribe to its acks; retrying");
                    backoff.wait().await;
                }
            }
        }
    }

    /// Publishes what the reader sends, pipelined, acks taken in order.
    async fn publish(&self, mut rx: mpsc::Receiver<Vec<Outgoing>>) {
        let window = self.config.max_in_flight.max(1);
        // Each save is a write to the log's database, which the relay also
        // reads: while catching up, save every ten batches.
        let save_every = 10 * self.config.batch.max(1) as u64;
        let stream = &self.config.stream;
        // Unacknowledged events in log order; the first `acks.len()` are published.
        let mut queue: VecDeque<Outgoing> = VecDeque::new();
        let client = self.js.client();
        let mut acks = self.subscribe_acks().await;
        // The last event published in the current chain; `None` starts a new one.
        let mut chain: Option<MsgId> = None;
        let mut since_save = 0u64;
        let mut backoff = Backoff::new();
        let mut failures = 0u32;
        let mut saving = None;
        loop {
            while queue.len() < window {
                match rx.try_recv() {
                    Ok(batch) => queue.extend(batch),
                    Err(_) => break,
                }
            }
            let mut failed = None;
            while acks.len() < queue.len().min(window) {
                let next = &mut queue[acks.len()];
                let headers = next.take_headers(&self.config.source, chain.take());
                if let Err(e) = acks.publish(&client, next, headers).await {
                    failed = Some(broker(&format!("publish to stream {stream}"), e));
                    break;
                }
                chain = Some(next.msg_id());
            }
            if failed.is_none() {
                if acks.is_empty() {
                    // Caught up: save where we stand, then wait for the log.
                    let acked = *self.shared.acked_upto.lock().expect("acked_upto");
                    if since_save > 0
                        && let Some(checkpoint) = acked
                        && self.save_in_background(checkpoint, &mut saving)
                    {
                        since_save = 0;
                    }
                    let next = if since_save > 0 {
                        // The previous save is still running: look again soon.
                        tokio::select! {
                            next = rx.recv() => next,
                            () = tokio::time::sleep(Duration::from_millis(20)) => continue,
                        }
                    } else {
                        rx.recv().await
                    };
                    match next {
                        Some(batch) => queue.extend(batch),
                        // The reader only ends when the relay does.
                        None => return,
                    }
                    continue;
                }
                match acks.next().await {
                    Ok(duplicate) => {
                        let event = queue.pop_front().expect("a published event is queued");
                        if let Some(erasure) = event.erasure() {
                            self.forget(erasure).await;
                        }
                        self.shared.acked.fetch_add(1, Ordering::Relaxed);
                        if duplicate {
                            self.shared.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        *self.shared.acked_upto.lock().expect("acked_upto") =
                            Some(event.checkpoint);
                        since_save += 1;
                        backoff = Backoff::new();
                        failures = 0;
                        if since_save >= save_every
                            && self.save_in_background(event.checkpoint, &mut saving)
                        {
                            since_save = 0;
                        }
                        continue;
                    }
                    Err(e) => failed = Some(broker(&format!("publish to stream {stream}"), e)),
                }
            }
            if let Some(e) = failed {
                metrics::counter!(PUBLISH_ERRORS, "stream" => stream.clone()).increment(1);
                tracing::warn!(
                    error = %e,
                    unacked = queue.len(),
                    "relay.publish failed; retrying from the first unacknowledged event"
                );
                // Later publishes in flight name a predecessor that is not
                // acknowledged; forget them (their acks, if any come, are
                // ignored) and start a new chain after the last acknowledged event.
                acks.abandon();
                if acks.closed {
                    acks = self.subscribe_acks().await;
                }
                chain = None;
                backoff.wait().await;
                failures += 1;
                if failures.is_multiple_of(6) {
                    // Still failing after several seconds (longer than a
                    // cluster takes to elect a new stream leader): the stream
                    // may have been deleted.
                    if let Err(e) = ensure_stream(&self.js, &self.config).await {
                        tracing::warn!(error = %e, "relay cannot set up its stream");
                    }
                }
            }
        }
    }
}

/// The relay's publishes awaiting their JetStream ack, in publish order.
///
/// Each publish asks for its ack at `<inbox>.<n>`, `n` counting the relay's
/// publishes, and one subscription to `<inbox>.*` receives them all: no
/// per-publish response channel, timer or boxed future (async-nats'
/// `jetstream::Context::publish` makes one of each), which measurably
/// lightens the relay's hot loop. Acks are matched by `n` ([`AckQueue`]).
struct Acks<S = async_nats::Subscriber> {
    /// The acks: messages to `<prefix>*`.
    subscriber: S,
    /// Reply subjects are `<prefix><n>`.
    prefix: String,
    /// The stream whose acks count.
    stream: String,
    timeout: Duration,
    queue: AckQueue,
    /// The subscription ended (the client was closed): make another.
    closed: bool,
    /// Fires no later than the oldest publish's deadline. It is moved when it
    /// fires early (about once per timeout), not for every ack.
    watchdog: Pin<Box<tokio::time::Sleep>>,
}

impl Acks {
    async fn subscribe(
        client: &async_nats::Client,
        stream: &str,
        timeout: Duration,
    ) -> Result<Self, RelayError> {
        let prefix = format!("{}.", client.new_inbox());
        let subscriber = client
            .subscribe(format!("{prefix}*"))
            .await
            .map_err(|e| broker("subscribe to the relay's acks", e))?;
        Ok(Acks::new(subscriber, prefix, stream, timeout))
    }
}

impl<S> Acks<S>
where
    S: futures_util::Stream<Item = async_nats::Message> + Unpin,
{
    fn new(subscriber: S, prefix: String, stream: &str, timeout: Duration) -> Self {
        Acks {
            subscriber,
            prefix,
            stream: stream.to_owned(),
            timeout,
            queue: AckQueue::default(),
            closed: false,
            watchdog: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Publishes awaiting their ack.
    fn len(&self) -> usize {
        self.queue.pending.len()
    }

    fn is_empty(&self) -> bool {
        self.queue.pending.is_empty()
    }

    /// Hands a publish to the client. Fails when the client cannot take it
    /// within the ack timeout (its connection is stuck, or reconnecting).
    async fn publish(
        &mut self,
        client: &async_nats::Client,
        event: &Outgoing,
        headers: async_nats::HeaderMap,
    ) -> Result<(), String> {
        let reply = reply_subject(&self.prefix, self.queue.next_number());
        let publish = client.publish_with_reply_and_headers(
            event.subject.clone(),
            reply,
            headers,
            event.body.clone(),
        );
        match tokio::time::timeout(self.timeout, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                return Err(format!(
                    "the client did not take the message within {:?}",
                    self.timeout
                ));
            }
        }
        self.queue.push(tokio::time::Instant::now() + self.timeout);
        Ok(())
    }

    /// The outcome of the oldest publish (there must be one): whether the
    /// broker already had it (a duplicate), or why it is not stored. Only
    /// the oldest publish's deadline is watched: later ones end no sooner.
    async fn next(&mut self) -> Result<bool, String> {
        loop {
            let deadline = match self.queue.pop_answered() {
                Ok(outcome) => return outcome,
                Err(deadline) => deadline,
            };
            if self.watchdog.deadline() > deadline {
                self.watchdog.as_mut().reset(deadline);
            }
            tokio::select! {
                biased;
                message = self.subscriber.next() => match message {
                    Some(message) => {
                        let number = message
                            .subject
                            .strip_prefix(self.prefix.as_str())
                            .and_then(|n| n.parse::<u64>().ok());
                        if let Some(number) = number {
                            self.queue.answer(number, ack_outcome(&message, &self.stream));
                        }
                    }
                    None => {
                        self.closed = true;
                        return Err("the subscription to the relay's acks ended".into());
                    }
                },
                () = &mut self.watchdog => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(format!("no ack within {:?}", self.timeout));
                    }
                    self.watchdog.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Gives up on every publish awaiting its ack.
    fn abandon(&mut self) {
        self.queue.abandon();
    }
}

/// `<prefix><n>`, with `n` in decimal.
fn reply_subject(prefix: &str, n: u64) -> String {
    // By hand: this runs once per published event, and `format!` costs
    // several times as much.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut subject = String::with_capacity(prefix.len() + digits.len() - start);
    subject.push_str(prefix);
    subject.extend(digits[start..].iter().map(|&d| char::from(d)));
    subject
}

/// Publishes awaiting their ack, numbered in publish order, and the acks
/// that came for them. Acks may come in any order; an ack for a number
/// not awaited (given up on, or never made) is ignored.
#[derive(Debug, Default)]
struct AckQueue {
    /// The number of the oldest publish in `pending`.
    first: u64,
    pending: VecDeque<Pending>,
}

#[derive(Debug)]
struct Pending {
    deadline: tokio::time::Instant,
    /// `Some` once its ack arrived: whether it was a duplicate, or why it failed.
    outcome: Option<Result<bool, String>>,
}

impl AckQueue {
    /// The number the next publish gets.
    fn next_number(&self) -> u64 {
        self.first + self.pending.len() as u64
    }

    /// Records a publish (numbered [`Self::next_number`]) made just now.
    fn push(&mut self, deadline: tokio::time::Instant) {
        self.pending.push_back(Pending {
            deadline,
            outcome: None,
        });
    }

    /// Files an ack under the publish it answers. The first answer stands:
    /// a second reply to the same subject (nothing but JetStream should
    /// send one) cannot turn a refusal into a success.
    fn answer(&mut self, number: u64, outcome: Result<bool, String>) {
        let pending = number
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.pending.get_mut(i));
        if let Some(pending) = pending
            && pending.outcome.is_none()
        {
            pending.outcome = Some(outcome);
        }
    }

    /// The oldest publish's outcome, removing it, when its ack is in;
    /// else its deadline. There must be a publish awaiting its ack.
    fn pop_answered(&mut self) -> Result<Result<bool, String>, tokio::time::Instant> {
        let oldest = self.pending.front_mut().expect("a publish awaits its ack");
        match oldest.outcome.take() {
            Some(outcome) => {
                self.pending.pop_front();
                self.first += 1;
                Ok(outcome)
            }
            None => Err(oldest.deadline),
        }
    }

    /// Gives up on every publish awaiting its ack; acks that still come for
    /// them are ignored. Numbering goes on after them and after one more
    /// number, that of a publish the client refused or did not take in
    /// time: had it gone out after all, its ack must not be taken for
    /// another's.
    fn abandon(&mut self) {
        self.first = self.next_number() + 1;
        self.pending.clear();
    }
}

/// What a JetStream ack says: `Ok(duplicate)` when the message is stored
/// (now or before), else why not.
fn ack_outcome(message: &async_nats::Message, stream: &str) -> Result<bool, String> {
    #[derive(serde::Deserialize)]
    struct Ack<'a> {
        #[serde(borrow)]
        stream: Option<std::borrow::Cow<'a, str>>,
        seq: Option<u64>,
        #[serde(default)]
        duplicate: bool,
        error: Option<AckError>,
    }
    #[derive(serde::Deserialize)]
    struct AckError {
        #[serde(default)]
        err_code: u64,
        #[serde(default)]
        description: String,
    }
    match message.status {
        Some(async_nats::StatusCode::NO_RESPONDERS) => {
            return Err("no stream takes its subject (was the stream deleted?)".into());
        }
        Some(status) if !status.is_success() => {
            return Err(format!(
                "the broker answered {status} {}",
                message.description.as_deref().unwrap_or_default()
            ));
        }
        _ => {}
    }
    if let Some(duplicate) = plain_ack(&message.payload, stream) {
        return Ok(duplicate);
    }
    let ack = serde_json::from_slice::<Ack>(&message.payload)
        .map_err(|e| format!("unreadable ack: {e}"))?;
    if let Some(error) = ack.error {
        return Err(format!(
            "JetStream refused it: {} (error code {})",
            error.description, error.err_code
        ));
    }
    match (ack.stream.as_deref(), ack.seq) {
        (Some(acked), Some(_)) if acked == stream => Ok(ack.duplicate),
        _ => Err(format!(
            "the reply is not an ack of stream {stream}: {}",
            String::from_utf8_lossy(&message.payload)
        )),
    }
}

/// The ack nats-server writes for a message stored in `stream`, read without
/// a JSON parser: `{"stream":"<stream>", "seq":<n>}`, with
/// `,"duplicate": true` before the brace when it already had the message.
/// Spaces may follow any token after `{"stream":` (never inside the name).
/// `Some(duplicate)` for exactly that, `n` a `u64`; `None` for anything else
/// (an error, another stream, a domain, another layout), which
/// [`ack_outcome`] then parses in full. The relay reads one ack per event,
/// nearly all of them of this one shape.
fn plain_ack(payload: &[u8], stream: &str) -> Option<bool> {
    /// `rest` after `token` and the spaces that follow it.
    fn after<'a>(rest: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
        let rest = rest.strip_prefix(token)?;
        let spaces = rest.iter().take_while(|&&b| b == b' ').count();
        Some(&rest[spaces..])
    }
    let rest = after(payload, br#"{"stream":"#)?;
    let name = rest.strip_prefix(b"\"")?.strip_prefix(stream.as_bytes())?;
    let rest = after(name, b"\"")?;
    let rest = after(rest, b",")?;
    let rest = after(rest, br#""seq":"#)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // A sequence number: a u64 written without a leading zero.
    let seq = std::str::from_utf8(&rest[..digits]).ok()?;
    if seq.starts_with('0') || seq.parse::<u64>().is_err() {
        return None;
    }
    let rest = after(&rest[digits..], b"")?;
    if rest == b"}" {
        return Some(false);
    }
    let rest = after(rest, b",")?;
    let rest = after(rest, br#""duplicate":"#)?;
    let rest = after(rest, b"true")?;
    (rest == b"}").then_some(true)
}

/// Reads the log from `from`, a batch at a time.
async fn read(
    store: Arc<dyn EventStore>,
    from: Checkpoint,
    batch: usize,
    tx: mpsc::Sender<Vec<RecordedEvent<String>>>,
) {
    let mut follower = Follower::new(store, from, batch);
    let mut backoff = Backoff::new();
    loop {
        // Payloads as JSON text: the encoder decodes them straight into
        // domain events, with no `serde_json::Value` in between.
        let batch = match follower.next_batch_json().await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot read the log; retrying");
                backoff.wait().await;
                continue;
            }
        };
        backoff = Backoff::new();
        if tx.send(batch).await.is_err() {
            return;
        }
    }
}

/// Encodes what the reader read.
async fn encode(
    config: RelayConfig,
    mut rx: mpsc::Receiver<Vec<RecordedEvent<String>>>,
    tx: mpsc::Sender<Vec<Outgoing>>,
) {
    let encoder = Encoder::new(config.subject_prefix, config.source);
    while let Some(batch) = rx.recv().await {
        let encoded: Result<Vec<Outgoing>, EncodeError> = batch
            .into_iter()
            .map(|event| encoder.encode(event))
            .collect();
        let encoded = match encoded {
            Ok(encoded) => encoded,
            // Never skip: an event this build cannot encode (written by a
            // newer one) holds the relay until a build that can takes over.
            Err(e) => loop {
                tracing::error!(
                    error = %e,
                    "relay is stopped at an event it cannot encode and will not skip it; \
                     nothing after it is published until this process is upgraded to a \
                     build that knows the event (it was most likely written by a newer \
                     one); checking again in 60 s"
                );
                tokio::time::sleep(Duration::from_secs(60)).await;
            },
        };
        if tx.send(encoded).await.is_err() {
            return;
        }
    }
}

/// A relay running in a task of its own, as `trellis serve` runs it.
///
/// Dropping the handle aborts the relay (as a crash would); [`RelayHandle::stop`]
/// stops it after saving its checkpoint.
#[derive(Debug)]
pub struct RelayHandle {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), RelayError>>>,
}

/// Starts a relay over `store` publishing to the NATS server(s) at
/// `nats_url` (comma-separated for a cluster). Returns at once: the
/// connection is made, and remade, in the background.
pub fn spawn(
    store: Arc<dyn EventStore>,
    nats_url: &str,
    config: RelayConfig,
) -> Result<RelayHandle, RelayError> {
    let servers = nats_url
        .split(',')
        .map(|url| {
            url.trim()
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| RelayError::Url {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared::default());
    let (shutdown, mut stopped) = watch::channel(false);
    let name = format!("trellis-relay {}", config.stream);
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let connect = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(connect_delay)
            .connect(servers);
        let client = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return Ok(()),
            client = connect => client.map_err(|e| broker("connect to NATS", e))?,
        };
        let mut relay = Relay::new(store, client, config);
        relay.shared = task_shared;
        relay
            .run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(RelayHandle {
        shared,
        shutdown,
        task: Some(task),
    })
}

/// How long the client waits before connection attempt number `attempt`
/// (counted from 1, and from 1 again after every successful connection):
/// the first attempt at once, then 100 ms doubling to 2 s.
///
/// The first attempt must not wait: the client asks this before connecting at
/// start-up too, and each relay start (a restart, a standby taking over)
/// would otherwise begin by idling. (As with async-nats' own default, a
/// server that accepts and at once drops every connection is reconnected to
/// without a pause: each attempt still costs a TCP connect and a handshake.)
fn connect_delay(attempt: usize) -> Duration {
    match attempt {
        0 | 1 => Duration::ZERO,
        n => {
            let doublings = u32::try_from(n - 2).unwrap_or(u32::MAX).min(5);
            Duration::from_millis(100 << doublings).min(Duration::from_secs(2))
        }
    }
}

impl RelayHandle {
    /// Events acknowledged by the broker (duplicates included).
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` events were acknowledged.
    pub async fn wait_acked(&self, n: u64) {
        while self.acked() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Acknowledgements that were duplicates (already in the stream).
    pub fn duplicates(&self) -> u64 {
        self.shared.duplicates.load(Ordering::Relaxed)
    }

    /// Whether this relay holds the lease and publishes.
    pub fn is_active(&self) -> bool {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Stops the relay, saving what was acknowledged, and waits for it.
    pub async fn stop(mut self) -> Result<(), RelayError> {
        let _ = self.shutdown.send(true);
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(RelayError::Broker(format!("the relay task failed: {e}")))),
            None => Ok(()),
        }
    }

    /// Kills the relay where it stands, as a crash would (tests use it).
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Exponential backoff with jitter, 100 ms to 5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }

    async fn wait(&mut self) {
        let jitter = Duration::from_millis(u64::from(Uuid::now_v7().as_bytes()[15]) % 50);
        tokio::time::sleep(self.next + jitter).await;
        self.next = (self.next * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(payload: &str) -> async_nats::Message {
        async_nats::Message {
            subject: "_INBOX.test.0".into(),
            reply: None,
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
            headers: None,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    const STREAM: &str = "TRELLIS_EVENTS";

    #[test]
    fn an_ack_says_stored_or_duplicate() {
        assert_eq!(
            ack_outcome(&ack(r#"{"stream":"TRELLIS_EVENTS","seq":7}"#), STREAM),
            Ok(false)
        );
        assert_eq!(
            ack_outcome(
                &ack(r#"{"stream":"TRELLIS_EVENTS","seq":7,"duplicate":true}"#),
                STREAM
            ),
            Ok(true)
        );
    }

    /// The outcome of `payload` with the full JSON parse only.
    fn parsed_outcome(payload: &str, stream: &str) -> Result<bool, String> {
        #[derive(serde::Deserialize)]
        struct Ack {
            stream: Option<String>,
            seq: Option<u64>,
            #[serde(default)]
            duplicate: bool,
            error: Option<serde_json::Value>,
        }
        let ack: Ack = serde_json::from_str(payload).map_err(|e| e.to_string())?;
        match (ack.error, ack.stream, ack.seq) {
            (None, Some(acked), Some(_)) if acked == stream => Ok(ack.duplicate),
            _ => Err("not stored".into()),
        }
    }

    #[test]
    fn the_plain_ack_reader_agrees_with_the_json_parser() {
        let payloads = [
            // As nats-server 2.9 writes them.
            r#"{"stream":"TRELLIS_EVENTS", "seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":7,"duplicate": true}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":18446744073709551615}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7,"duplicate":true}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7,"duplicate":false}"#,
            r#"{"stream":"TRELLIS_EVENTS","domain":"hub","seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7,"domain":"hub"}"#,
            r#"{"stream":"TRELLIS_EVENTS_2","seq":7}"#,
            r#"{"stream":"TRELLIS","seq":7}"#,
            r#"{"stream":"ANOTHER","seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS"}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":-1}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7}}"#,
            r#"{"stream":"TRELLIS_EVENTS","seq":7} "#,
            r#"{"stream": "TRELLIS_EVENTS", "seq": 7}"#,
            r#"{"stream":" TRELLIS_EVENTS", "seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS ", "seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS" , "seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":7, "duplicate" : true}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":7,"duplicate": true }"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":7,"duplicate": truer}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":7,"duplicate": tru}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":7,}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":07}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":123456789012345678901}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":18446744073709551616}"#,
            r#"{"stream":"TRELLIS_EVENTS", "seq":99999999999999999999}"#,
            r#"{"error":{"code":503,"description":"no stream"}}"#,
        ];
        for payload in payloads {
            let parsed = parsed_outcome(payload, STREAM).map_err(drop);
            if let Some(duplicate) = plain_ack(payload.as_bytes(), STREAM) {
                assert_eq!(parsed, Ok(duplicate), "{payload}");
            }
            // Whichever reads it, the relay's answer is the parser's.
            assert_eq!(
                ack_outcome(&ack(payload), STREAM).map_err(drop),
                parsed,
                "{payload}"
            );
        }
        // nats-server's own layouts are read without the parser.
        assert_eq!(plain_ack(payloads[0].as_bytes(), STREAM), Some(false));
        assert_eq!(plain_ack(payloads[1].as_bytes(), STREAM), Some(true));
        assert_eq!(plain_ack(payloads[2].as_bytes(), STREAM), Some(false));
        assert_eq!(plain_ack(payloads[4].as_bytes(), STREAM), Some(true));
    }

    #[test]
    fn a_reply_that_is_not_an_ack_of_the_stream_is_a_failure() {
        for reply in [
            "{}",
            r#"{"seq":7}"#,
            r#"{"stream":"TRELLIS_EVENTS"}"#,
            r#"{"stream":"ANOTHER","seq":7}"#,
        ] {
            let refused = ack_outcome(&ack(reply), STREAM).unwrap_err();
            assert!(
                refused.starts_with("the reply is not an ack of stream TRELLIS_EVENTS"),
                "{reply}: {refused}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_reason_and_code() {
        let reply =
            r#"{"error":{"code":400,"err_code":10071,"description":"wrong last msg ID: 0190"}}"#;
        let refused = ack_outcome(&ack(reply), STREAM).unwrap_err();
        assert!(refused.contains("wrong last msg ID: 0190"), "{refused}");
        assert!(refused.contains("10071"), "{refused}");
    }

    #[test]
    fn no_responders_means_no_stream_takes_the_subject() {
        let mut message = ack("");
        message.status = Some(async_nats::StatusCode::NO_RESPONDERS);
        let refused = ack_outcome(&message, STREAM).unwrap_err();
        assert!(refused.contains("no stream takes its subject"), "{refused}");
    }

    #[test]
    fn an_unreadable_ack_is_a_failure_not_a_success() {
        let refused = ack_outcome(&ack("+OK"), STREAM).unwrap_err();
        assert!(refused.starts_with("unreadable ack"), "{refused}");
    }

    fn deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn acks_arriving_out_of_order_are_taken_in_publish_order() {
        let mut queue = AckQueue::default();
        for _ in 0..3 {
            queue.push(deadline());
        }
        queue.answer(2, Ok(true));
        queue.answer(1, Err("refused".into()));
        assert!(queue.pop_answered().is_err(), "publish 0 has no ack yet");
        queue.answer(0, Ok(false));
        assert_eq!(queue.pop_answered(), Ok(Ok(false)));
        assert_eq!(queue.pop_answered(), Ok(Err("refused".into())));
        assert_eq!(queue.pop_answered(), Ok(Ok(true)));
        assert_eq!(queue.next_number(), 3);
    }

    #[test]
    fn acks_of_abandoned_publishes_are_ignored() {
        let mut queue = AckQueue::default();
        queue.push(deadline());
        queue.push(deadline());
        queue.abandon();
        // Numbering goes on after the abandoned publishes, and after the
        // number a failed publish would have had (2)...
        assert_eq!(queue.next_number(), 3);
        queue.push(deadline());
        // ... so their late acks cannot be taken for the new one's.
        for stale in 0..=2 {
            queue.answer(stale, Ok(false));
        }
        assert!(queue.pop_answered().is_err());
        queue.answer(3, Ok(true));
        assert_eq!(queue.pop_answered(), Ok(Ok(true)));
    }

    #[test]
    fn reply_subjects_end_in_the_publish_number() {
        assert_eq!(reply_subject("_INBOX.abc.", 0), "_INBOX.abc.0");
        assert_eq!(reply_subject("_INBOX.abc.", 1907), "_INBOX.abc.1907");
        assert_eq!(reply_subject("p.", u64::MAX), format!("p.{}", u64::MAX));
    }

    /// Acks fed by hand: what the subscription would deliver.
    type Feed = tokio::sync::mpsc::UnboundedSender<async_nats::Message>;

    fn waiting_acks(
        timeout: Duration,
    ) -> (
        Acks<impl futures_util::Stream<Item = async_nats::Message> + Unpin>,
        Feed,
    ) {
        let (feed, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let subscriber = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let acks = Acks::new(subscriber, "_INBOX.test.".into(), STREAM, timeout);
        (acks, feed)
    }

    fn ack_of(n: u64) -> async_nats::Message {
        let mut message = ack(r#"{"stream":"TRELLIS_EVENTS","seq":1}"#);
        message.subject = format!("_INBOX.test.{n}").into();
        message
    }

    /// A publish made now: numbered and given its deadline, as `publish` does.
    fn published<S>(acks: &mut Acks<S>) {
        acks.queue.push(tokio::time::Instant::now() + acks.timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ack_within_the_timeout_is_taken() {
        let (mut acks, feed) = waiting_acks(Duration::from_secs(5));
        published(&mut acks);
        tokio::time::advance(Duration::from_millis(4_900)).await;
        feed.send(ack_of(0)).unwrap();
        assert_eq!(acks.next().await, Ok(false));
        assert!(acks.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn no_ack_within_the_timeout_is_a_failure_at_the_deadline() {
        let (mut acks, _feed) = waiting_acks(Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        published(&mut acks);
        let failed = acks.next().await.unwrap_err();
        assert!(failed.starts_with("no ack within 5s"), "{failed}");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_millis(5_010),
            "failed after {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_after_a_quiet_spell_gets_its_full_timeout() {
        let (mut acks, feed) = waiting_acks(Duration::from_secs(5));
        // A publish acked at once, then nothing for a minute: the watchdog
        // still holds the first publish's deadline, long past.
        published(&mut acks);
        feed.send(ack_of(0)).unwrap();
        assert_eq!(acks.next().await, Ok(false));
        tokio::time::advance(Duration::from_secs(60)).await;
        // A new publish gets its full timeout, not the stale deadline...
        let start = tokio::time::Instant::now();
        published(&mut acks);
        published(&mut acks);
        feed.send(ack_of(1)).unwrap();
        assert_eq!(acks.next().await, Ok(false));
        // ... and the next one fails at its own deadline.
        let failed = acks.next().await.unwrap_err();
        assert!(failed.starts_with("no ack within"), "{failed}");
        assert!(
            start.elapsed() >= Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_giving_up_new_publishes_wait_for_their_own_acks() {
        let (mut acks, feed) = waiting_acks(Duration::from_secs(5));
        published(&mut acks);
        published(&mut acks);
        assert!(acks.next().await.is_err(), "no ack: a failure");
        acks.abandon();
        published(&mut acks);
        // Late acks of the abandoned publishes, then the new one's (number 3:
        // one number is skipped after giving up).
        for n in [0, 1, 2] {
            feed.send(ack_of(n)).unwrap();
        }
        let mut duplicate = ack_of(3);
        duplicate.payload = r#"{"stream":"TRELLIS_EVENTS","seq":9,"duplicate":true}"#.into();
        feed.send(duplicate).unwrap();
        assert_eq!(acks.next().await, Ok(true));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_subscription_is_a_failure_that_asks_for_another() {
        let (mut acks, feed) = waiting_acks(Duration::from_secs(5));
        published(&mut acks);
        drop(feed);
        let failed = acks.next().await.unwrap_err();
        assert!(failed.contains("subscription"), "{failed}");
        assert!(acks.closed);
    }

    #[test]
    fn the_first_answer_to_a_publish_stands() {
        let mut queue = AckQueue::default();
        queue.push(deadline());
        queue.answer(0, Err("refused".into()));
        queue.answer(0, Ok(false));
        assert_eq!(queue.pop_answered(), Ok(Err("refused".into())));
    }

    #[test]
    fn an_ack_for_a_publish_never_made_is_ignored() {
        let mut queue = AckQueue::default();
        queue.push(deadline());
        queue.answer(5, Ok(false));
        assert!(queue.pop_answered().is_err());
    }

    #[test]
    fn connect_delay_is_zero_for_the_first_attempt() {
        // The client asks for attempt 1 before it first connects, at start-up
        // and after a lost connection alike.
        assert_eq!(connect_delay(1), Duration::ZERO);
        assert_eq!(connect_delay(0), Duration::ZERO);
    }

    #[test]
    fn later_connection_attempts_back_off_from_100_ms_to_2_s() {
        let delays: Vec<u64> = (2..=9)
            .map(|attempt| connect_delay(attempt).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(connect_delay(usize::MAX), Duration::from_secs(2));
    }
}
