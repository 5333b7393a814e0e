//! The publisher: every `AlertRaised` of the log, from a durable checkpoint,
//! to the JetStream stream `TRELLIS_ALERTS`, subject
//! `trellis.alerts.<team id>.<kind>`.
//!
//! The body is the contract's protobuf `Envelope` (as on `TRELLIS_EVENTS`),
//! with `Nats-Msg-Id` = the event id, CloudEvents binary-mode headers and
//! `Content-Type: application/protobuf`. Every publish of a batch is awaited
//! before the checkpoint moves; a failure backs off and publishes the same
//! batch again (duplicates within the stream's duplicate window are dropped
//! by JetStream on the message id), so every alert appears once.
//!
//! With several `trellis` processes exactly one publisher is active: it
//! holds the stream's lease (a PostgreSQL advisory lock, as the relay's);
//! the others stand by and take over when it stops.
//!
//! Without NATS nothing here runs, and alerts are still raised and recorded
//! in the log by the evaluator.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream::StorageType};
use bytes::Bytes;
use prost::Message as _;
use trellis_domain::alert::AlertRaised;
use trellis_domain::{AlertEvent, Event};
use trellis_eventstore::{EventStore, Follower, RecordedEvent};

use trellis_notifications::lease::{Lease, LeaseConfig};

use crate::Error;

/// The JetStream stream of alerts.
pub const ALERTS_STREAM: &str = "TRELLIS_ALERTS";

/// The first two tokens of every alert subject.
pub const ALERTS_SUBJECT_PREFIX: &str = "trellis.alerts";

/// How the publisher publishes.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The JetStream stream, `TRELLIS_ALERTS`.
    pub stream: String,
    /// Subjects are `<prefix>.<team id>.<kind>`; default `trellis.alerts`.
    pub subject_prefix: String,
    /// Copies of the stream: 1 on one machine, 3 in a cluster.
    pub replicas: usize,
    /// How long the broker remembers message ids to drop duplicates.
    pub duplicate_window: Duration,
    /// The name the publisher's checkpoint is saved under.
    pub checkpoint_name: String,
    /// Events read from the log per batch.
    pub batch: usize,
    /// How long a publish may wait for its ack.
    pub ack_timeout: Duration,
    /// The CloudEvents `source` attribute.
    pub source: String,
    /// How publishers of the same stream agree on the single active one.
    pub lease: LeaseConfig,
    /// How often a standby publisher tries to take over.
    pub standby_retry: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            stream: ALERTS_STREAM.into(),
            subject_prefix: ALERTS_SUBJECT_PREFIX.into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(3600),
            checkpoint_name: "alerts-publisher".into(),
            batch: 1000,
            ack_timeout: Duration::from_secs(5),
            source: "urn:trellis".into(),
            lease: LeaseConfig::InProcess,
            standby_retry: Duration::from_secs(1),
        }
    }
}

impl PublisherConfig {
    /// Take the single-active lease as a PostgreSQL advisory lock (use the
    /// log's database).
    pub fn with_postgres_lease(mut self, database_url: impl Into<String>) -> Self {
        self.lease = LeaseConfig::Postgres {
            url: database_url.into(),
        };
        self
    }

    /// A config for another stream and subject prefix (tests, several
    /// environments on one broker); the checkpoint name follows the stream.
    pub fn for_stream(stream: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        let stream = stream.into();
        PublisherConfig {
            checkpoint_name: format!("alerts-publisher:{stream}"),
            stream,
            subject_prefix: subject_prefix.into(),
            ..PublisherConfig::default()
        }
    }
}

/// The subject of an alert: `<prefix>.<team id>.<kind>`.
pub fn subject(prefix: &str, alert: &AlertRaised) -> String {
    format!("{prefix}.{}.{}", alert.team_id, alert.kind())
}

/// Creates the stream, or updates its subjects, duplicate window and replicas.
pub async fn ensure_stream(js: &jetstream::Context, config: &PublisherConfig) -> Result<(), Error> {
    let wanted = jetstream::stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        duplicate_window: config.duplicate_window,
        num_replicas: config.replicas,
        storage: StorageType::File,
        ..Default::default()
    };
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(Error::broker)?;
    let current = stream.info().await.map_err(Error::broker)?.config.clone();
    if current.subjects != wanted.subjects
        || current.duplicate_window != wanted.duplicate_window
        || current.num_replicas != wanted.num_replicas
    {
        js.update_stream(jetstream::stream::Config {
            subjects: wanted.subjects,
            duplicate_window: wanted.duplicate_window,
            num_replicas: wanted.num_replicas,
            ..current
        })
        .await
        .map_err(Error::broker)?;
    }
    Ok(())
}

/// One alert as a message: subject, headers, body.
#[derive(Debug, Clone)]
pub struct AlertMessage {
    pub subject: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The message of a recorded event, when it is an alert.
pub fn message(
    event: &RecordedEvent<String>,
    config: &PublisherConfig,
) -> Result<Option<AlertMessage>, Error> {
    // Most of the log is not alerts: those are skipped before any decoding.
    if event.stream_id.category() != AlertEvent::CATEGORY {
        return Ok(None);
    }
    let domain = Event::from_stored_json(&event.event_type, event.schema_version, &event.payload)
        .map_err(|e| Error::Decode(e.to_string()))?;
    let Event::Alert(AlertEvent::Raised(alert)) = &domain else {
        return Ok(None);
    };
    let envelope = trellis_contracts::envelope(event, &domain);
    // The same headers as every event on TRELLIS_EVENTS: Nats-Msg-Id, the
    // CloudEvents attributes and the content type.
    let headers = trellis_notifications::message::headers(event, &config.source);
    Ok(Some(AlertMessage {
        subject: subject(&config.subject_prefix, alert),
        headers,
        body: Bytes::from(envelope.encode_to_vec()),
    }))
}

/// Publishes every message and awaits every ack.
async fn publish_all(
    js: &jetstream::Context,
    messages: &[AlertMessage],
    ack_timeout: Duration,
) -> Result<(), Error> {
    let mut acks = Vec::with_capacity(messages.len());
    for m in messages {
        let ack = js
            .publish_with_headers(m.subject.clone(), m.headers.clone(), m.body.clone())
            .await
            .map_err(Error::broker)?;
        acks.push(ack);
    }
    for ack in acks {
        tokio::time::timeout(ack_timeout, ack)
            .await
            .map_err(|_| Error::Broker("timed out waiting for a publish ack".into()))?
            .map_err(Error::broker)?;
    }
    Ok(())
}

struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Self::MAX);
    }
}

/// Follows the log from the publisher's checkpoint and publishes every alert
/// until `shutdown` completes, while it holds the stream's lease (standing
/// by until it gets it, and again when it loses it). Broker or store
/// failures back off and retry; nothing is skipped.
pub async fn run_publisher(
    store: Arc<dyn EventStore>,
    client: async_nats::Client,
    config: PublisherConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let mut lease = tokio::select! {
            () = &mut shutdown => return,
            lease = Lease::acquire(&config.lease, &config.stream, config.standby_retry) => lease,
        };
        tracing::info!(stream = %config.stream, "alerts publisher is active");
        tokio::select! {
            () = &mut shutdown => return,
            () = lease.lost() => {
                tracing::warn!(stream = %config.stream, "alerts publisher lost its lease; standing by");
            }
            () = publish_forever(store.clone(), client.clone(), config.clone()) => {}
        }
    }
}

async fn publish_forever(
    store: Arc<dyn EventStore>,
    client: async_nats::Client,
    config: PublisherConfig,
) {
    let js = jetstream::new(client);
    let mut backoff = Backoff(Backoff::FIRST);
    while let Err(error) = ensure_stream(&js, &config).await {
        tracing::warn!(%error, stream = %config.stream, "cannot set up the alerts stream; retrying");
        backoff.wait().await;
    }
    let from = loop {
        match store.load_checkpoint(&config.checkpoint_name).await {
            Ok(checkpoint) => break checkpoint.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "cannot load the alerts publisher checkpoint; retrying");
                backoff.wait().await;
            }
        }
    };
    let mut follower = Follower::new(store.clone(), from, config.batch);
    loop {
        // Payloads as text: only the alerts among them are decoded.
        let batch = match follower.next_batch_json().await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot read the log; retrying");
                backoff.wait().await;
                continue;
            }
        };
        let mut messages = Vec::new();
        for event in &batch {
            match message(event, &config) {
                Ok(Some(m)) => messages.push(m),
                Ok(None) => {}
                // An alert this build cannot read: a bug or a newer writer.
                // It stays in the log; skipping it keeps the others flowing.
                Err(error) => {
                    tracing::error!(%error, event = %event.event_id, "alert not published")
                }
            }
        }
        backoff = Backoff(Backoff::FIRST);
        while let Err(error) = publish_all(&js, &messages, config.ack_timeout).await {
            tracing::warn!(%error, "publishing alerts failed; retrying the batch");
            backoff.wait().await;
        }
        let Some(last) = batch.last() else { continue };
        while let Err(error) = store
            .save_checkpoint(&config.checkpoint_name, last.checkpoint)
            .await
        {
            tracing::warn!(%error, "cannot save the alerts publisher checkpoint; retrying");
            backoff.wait().await;
        }
        if !messages.is_empty() {
            tracing::debug!(published = messages.len(), "alerts published");
        }
        backoff = Backoff(Backoff::FIRST);
    }
}
