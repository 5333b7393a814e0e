//! Signed webhooks, for systems that do not speak NATS.
//!
//! An admin registers subscriptions over the API (a URL, event type and
//! category filters, a secret). The dispatcher follows the log from its own
//! checkpoint (`webhooks`) and queues one delivery per matching subscription
//! and event; the sender POSTs each as JSON, signed per the Standard Webhooks
//! specification, retries failures with exponential backoff and jitter, and
//! moves a delivery to the dead-letter list (`dead`) after the configured
//! number of attempts. Every attempt is kept in a delivery log an admin can
//! query and replay. Nothing here needs NATS: it reads the log directly.
//!
//! Subscriptions and deliveries live in their own tables in the log's
//! database ([`store`]; PostgreSQL schema `trellis` or the embedded file),
//! created by this crate's own migrations.
//!
//! # Wiring
//! ```text
//! let hooks = Webhooks::postgres(pg.pool().clone(), WebhooksConfig::default()).await?;
//! // or: Webhooks::sqlite(sqlite_store.path(), config).await?
//! let api = trellis_webhooks::api(WebhooksState::new(http.clone(), hooks.clone()));
//! let router = trellis_http::app(http, [api /* and the other APIs */]);
//! tokio::spawn(trellis_webhooks::run(log, hooks, shutdown));
//! ```
//!
//! # Guarantees and limits
//! - A subscription receives every matching event appended after it was
//!   created, at least once, until it is deleted or its receiver answers
//!   `410 Gone`; the `webhook-id` (the event id) lets a receiver drop
//!   duplicates (a sender that dies after sending but before recording
//!   sends again). Deliveries are not ordered.
//! - An event recorded with a W3C `traceparent` (the request that appended
//!   it was traced) is delivered with it as a `traceparent` header, kept
//!   with the delivery when it is queued, so the receiver continues the
//!   trace. Like any header but `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature`, it is outside the signature.
//! - `http://` and `https://` receivers ([`client`]), over connections kept
//!   for the next delivery to the same receiver. Over TLS the receiver's
//!   certificate must verify for the URL's host against the system's roots
//!   or those of [`WebhooksConfig::ca_file`] ([`tls`]); one that does not is
//!   a failed attempt with the reason in the delivery log.
//! - What an answer means ([`verdict`]): a 2xx delivered; `410 Gone` the
//!   receiver wants nothing more: the delivery is dead and the subscription
//!   disabled ([`Subscription::disabled`], shown with its reason wherever
//!   subscriptions are listed) until an admin resumes it; a `429` or `503`
//!   with `Retry-After` is retried no earlier than it asks (at most
//!   [`WebhooksConfig::max_retry_after`] later); anything else, or no
//!   answer, is retried with backoff until the last attempt. A delivery
//!   that cannot be sent at all (its URL or a header is not valid HTTP) is
//!   dead at its first attempt, with the reason.
//! - Secrets are kept in the database as given (the HMAC needs them), and
//!   shown only in the answer to the registration.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Notify;
use trellis_eventstore::{Checkpoint, EventStore, Follower, RecordedEvent};
use uuid::Uuid;

pub mod api;
pub mod client;
pub mod metrics;
pub mod signing;
pub mod store;
pub mod tls;

pub use api::{WebhooksState, api};

/// The webhook admin API's OpenAPI document, which [`api`] hands to
/// `trellis_http::app` to merge into `/openapi.json`.
pub mod openapi {
    pub use crate::api::{ApiDoc, document};
}
pub use store::{
    Attempt, Backlog, Bodies, Delivery, DeliveryStatus, Secret, Subscription, WebhookStore,
    postgres::PostgresWebhookStore, sqlite::SqliteWebhookStore,
};

/// The name of the dispatcher's checkpoint in the log's subscriber checkpoints.
pub const CHECKPOINT: &str = "webhooks";

/// The stream categories a subscription may filter on (`log`: the signed
/// checkpoints of the log, type [`CHECKPOINT_TYPE`]).
pub const CATEGORIES: &[&str] = &[
    "rep",
    "team",
    "standard",
    "competency",
    "alert",
    "leader",
    "log",
];

/// What can go wrong setting up the service, or storing subscriptions and deliveries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be read (or the checkpoint saved).
    #[error("the event log: {0}")]
    Log(#[from] trellis_eventstore::Error),
    /// The webhook tables failed or are unreachable.
    #[error("the webhook tables: {0}")]
    Database(String),
    /// The TLS client for `https://` receivers could not be set up (a bad
    /// CA file); only when the service is built.
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
}

trellis_eventstore::from_database_errors!(Error, Error::Database);

/// Settings of the dispatcher and the sender.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// The delay after the first failed attempt; it doubles after each.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max_delay: Duration,
    /// Attempts before a delivery is dead (at least 1).
    pub max_attempts: u32,
    /// The most of a delay taken off at random (0.0 to 1.0), so receivers
    /// coming back are not hit by every retry at once. Delays still grow:
    /// with 0.25, the n-th delay is between 75% and 100% of `base * 2^(n-1)`.
    pub jitter: f64,
    /// How long one attempt may take, connecting included.
    pub request_timeout: Duration,
    /// How often the sender looks for due deliveries without a signal, and
    /// the dispatcher at the log.
    pub poll: Duration,
    /// Events read per batch, and deliveries claimed per round.
    pub batch: usize,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// A PEM file of CA certificates trusted for `https://` receivers
    /// besides the system's, for receivers whose certificates a private CA
    /// issued. Read once, when the service is built: a missing, unreadable
    /// or certificate-less file is an error then, not at the first delivery.
    pub ca_file: Option<PathBuf>,
    /// Whether receivers on loopback, link-local and private addresses are
    /// allowed (a receiver on the same machine or network). Off, such a
    /// URL is refused when registered and such an address when resolved.
    pub allow_private_targets: bool,
    /// The longest wait a receiver's `Retry-After` (on a 429 or 503) can
    /// impose before the next attempt; it asks for more, it gets this.
    pub max_retry_after: Duration,
    /// How long a connection to a receiver is kept unused for the next
    /// delivery to it.
    pub idle_timeout: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(3600),
            max_attempts: 8,
            jitter: 0.25,
            request_timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            batch: 200,
            concurrency: 8,
            ca_file: None,
            allow_private_targets: false,
            max_retry_after: Duration::from_secs(3600),
            idle_timeout: client::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl WebhooksConfig {
    /// The delay before the next attempt, after `failed` failed attempts (1: the first).
    pub fn backoff(&self, failed: u32) -> Duration {
        let exponent = failed.saturating_sub(1).min(30);
        let full = self
            .retry_base
            .saturating_mul(1u32 << exponent)
            .min(self.retry_max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0) * random_fraction();
        full.mul_f64(1.0 - jitter)
    }
}

/// A uniformly random number in [0, 1).
fn random_fraction() -> f64 {
    let bits = getrandom::u64().unwrap_or(0) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The webhook service: its tables, settings, the HTTP client (with its TLS
/// configuration) and the signal that wakes the sender. Cheap to clone;
/// share one between [`routes`] and [`run`].
#[derive(Debug, Clone)]
pub struct Webhooks {
    store: Arc<dyn WebhookStore>,
    config: WebhooksConfig,
    client: client::Client,
    wake: Arc<Notify>,
}

impl Webhooks {
    /// Over any store (for tests and other backends). Builds the TLS client
    /// from `config.ca_file`, so a bad CA file fails here.
    pub fn new(store: Arc<dyn WebhookStore>, config: WebhooksConfig) -> Result<Self, Error> {
        let client = client_for(&config)?;
        Ok(Self::with_client(store, config, client))
    }

    /// Over any store, with a client of the caller's (`config.ca_file` is
    /// not read: the client's TLS configuration is used as it is).
    pub fn with_client(
        store: Arc<dyn WebhookStore>,
        config: WebhooksConfig,
        client: client::Client,
    ) -> Self {
        Webhooks {
            store,
            config,
            client,
            wake: Arc::new(Notify::new()),
        }
    }

    /// In the log's PostgreSQL database (`PostgresStore::pool`); applies the
    /// migrations. The CA file is read first: a bad one changes nothing.
    pub async fn postgres(
        pool: deadpool_postgres::Pool,
        config: WebhooksConfig,
    ) -> Result<Self, Error> {
        let client = client_for(&config)?;
        Ok(Self::with_client(
            Arc::new(PostgresWebhookStore::new(pool).await?),
            config,
            client,
        ))
    }

    /// In the embedded file (`SqliteStore::path`); applies the migrations.
    /// The CA file is read first: a bad one changes nothing.
    pub async fn sqlite(path: impl AsRef<Path>, config: WebhooksConfig) -> Result<Self, Error> {
        let client = client_for(&config)?;
        Ok(Self::with_client(
            Arc::new(SqliteWebhookStore::open(path).await?),
            config,
            client,
        ))
    }

    /// Whether receivers on private addresses are allowed.
    pub fn allows_private_targets(&self) -> bool {
        self.config.allow_private_targets
    }

    pub fn store(&self) -> &dyn WebhookStore {
        &*self.store
    }

    pub fn config(&self) -> &WebhooksConfig {
        &self.config
    }

    /// Tells the sender (in this process) to look for due deliveries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The client `config` asks for: its CA file, private targets or not, and
/// as many kept connections per receiver as attempts in flight.
fn client_for(config: &WebhooksConfig) -> Result<client::Client, Error> {
    Ok(client::Client::with_ca_file(config.ca_file.as_deref())?
        .allowing_private_targets(config.allow_private_targets)
        .with_pool(config.idle_timeout, config.concurrency.max(1)))
}

/// Runs the dispatcher (log → deliveries) and the sender (deliveries →
/// receivers) until `shutdown` completes. Failures of the log, the tables or
/// a receiver are logged and retried; nothing makes it return early.
///
/// Several processes may run it over the same database: queuing is
/// idempotent per (subscription, event) and a claimed delivery is leased to
/// one sender.
pub async fn run(log: Arc<dyn EventStore>, hooks: Webhooks, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        () = dispatch_forever(log, hooks.clone()) => {}
        () = send_forever(hooks) => {}
    }
}

/// How long to wait after the `n`-th failure in a row of the loops themselves.
fn loop_backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(30))
}

async fn dispatch_forever(log: Arc<dyn EventStore>, hooks: Webhooks) {
    let mut failures = 0u32;
    loop {
        match dispatch(&log, &hooks).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "webhook dispatcher failed; retrying");
            }
        }
        tokio::time::sleep(loop_backoff(failures)).await;
    }
}

/// Where the dispatcher starts without a checkpoint: no subscription can
/// want an event before the log's current head or the oldest subscription's start.
async fn starting_point(log: &dyn EventStore, hooks: &Webhooks) -> Result<Checkpoint, Error> {
    if let Some(saved) = log.load_checkpoint(CHECKPOINT).await? {
        return Ok(saved);
    }
    // The head first: a subscription created after the list below is read
    // starts at or after it.
    let head = log.head().await?;
    let subscriptions = hooks.store.subscriptions().await?;
    Ok(subscriptions
        .iter()
        .map(|s| s.start)
        .chain(std::iter::once(head))
        .min()
        .unwrap_or(head))
}

/// Follows the log, queuing deliveries, until something fails.
async fn dispatch(log: &Arc<dyn EventStore>, hooks: &Webhooks) -> Result<(), Error> {
    let from = starting_point(&**log, hooks).await?;
    let mut follower =
        Follower::new(log.clone(), from, hooks.config.batch).with_poll_interval(hooks.config.poll);
    loop {
        let batch = follower.next_batch().await?;
        let subscriptions = hooks.store.subscriptions().await?;
        let deliveries = deliveries_for(&batch, &subscriptions, Utc::now());
        let queued = hooks.store.enqueue(&deliveries).await?;
        // A person erased: what was queued about them, sent or not, is
        // kept (and sent) with their personal data read as erased. Their
        // key was destroyed before this event was recorded, so what is
        // queued from here on reads as erased already.
        for event in &batch {
            let stream = event.stream_id.as_str();
            let Some(person) = trellis_domain::event::erased_person(stream, &event.event_type)
            else {
                continue;
            };
            let of = if event.stream_id.category() == trellis_domain::LeaderEvent::CATEGORY {
                Bodies::LeaderAssigned(person)
            } else {
                Bodies::OfStream(stream.to_owned())
            };
            let scrubbed = hooks.store.rewrite_bodies(&of, erased_body).await?;
            tracing::info!(%person, scrubbed, "webhook deliveries of an erased person scrubbed");
        }
        if let Some(last) = batch.last() {
            log.save_checkpoint(CHECKPOINT, last.checkpoint).await?;
        }
        if queued > 0 {
            tracing::debug!(queued, events = batch.len(), "webhook deliveries queued");
            hooks.wake();
        }
    }
}

/// One delivery per (subscription, event) that matches.
pub fn deliveries_for(
    events: &[RecordedEvent],
    subscriptions: &[Subscription],
    now: DateTime<Utc>,
) -> Vec<store::NewDelivery> {
    let mut out = Vec::new();
    for event in events {
        let category = event.stream_id.category();
        let mut body = None;
        for subscription in subscriptions {
            if !subscription.matches(&event.event_type, category, event.checkpoint) {
                continue;
            }
            let body = body.get_or_insert_with(|| body_of(event)).clone();
            out.push(store::NewDelivery {
                id: Uuid::now_v7(),
                subscription_id: subscription.id,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                stream_id: event.stream_id.to_string(),
                global_position: event.global_position,
                body,
                traceparent: event
                    .metadata
                    .traceparent
                    .as_ref()
                    .map(|t| t.as_str().to_owned()),
                created_at: now,
            });
        }
    }
    out
}

/// The type a signed checkpoint of the log is delivered as (category `log`).
pub const CHECKPOINT_TYPE: &str = "CheckpointSigned";

/// Queues a signed checkpoint of the log for every subscription that wants
/// it (type [`CHECKPOINT_TYPE`], category `log`; a subscription to every
/// event gets it too), so receivers keep it outside Trellis's database.
/// `at` is where in the log the checkpoint was taken: subscriptions created
/// after it do not get it. Queuing the same checkpoint again adds nothing.
pub async fn deliver_checkpoint(
    hooks: &Webhooks,
    checkpoint: &trellis_eventstore::note::SignedCheckpoint,
    at: Checkpoint,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, checkpoint.text().as_bytes());
    let body = json!({
        "id": id,
        "type": CHECKPOINT_TYPE,
        "category": "log",
        "origin": checkpoint.head.origin,
        "tree_size": checkpoint.head.size,
        "root_hash": hex::encode(checkpoint.head.root.0),
        "signed_at": checkpoint.head.time,
        "signed_by": checkpoint.signers(),
        "checkpoint": checkpoint.text(),
    })
    .to_string();
    let deliveries: Vec<store::NewDelivery> = hooks
        .store
        .subscriptions()
        .await?
        .iter()
        .filter(|s| s.matches(CHECKPOINT_TYPE, "log", at))
        .map(|s| store::NewDelivery {
            id: Uuid::now_v7(),
            subscription_id: s.id,
            event_id: id,
            event_type: CHECKPOINT_TYPE.to_owned(),
            stream_id: "log-checkpoints".to_owned(),
            global_position: checkpoint.head.size,
            body: body.clone(),
            traceparent: None,
            created_at: now,
        })
        .collect();
    let queued = hooks.store.enqueue(&deliveries).await?;
    if queued > 0 {
        hooks.wake();
    }
    Ok(queued)
}

/// A queued body with the personal data of its event read as erased, as
/// the log now reads it; `None` when it holds none.
pub fn erased_body(body: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    let event_type = value.get("type")?.as_str()?.to_owned();
    let payload = value.get_mut("payload")?;
    let mut changed = false;
    trellis_domain::personal::visit(&event_type, payload, &mut |kind, text| {
        if text.as_str() != Some(kind.erased()) {
            *text = serde_json::Value::from(kind.erased());
            changed = true;
        }
    });
    changed.then(|| value.to_string())
}

/// The JSON a receiver gets for an event. The payload is upcast to the
/// current schema version when this build knows the type (as it was stored
/// otherwise).
pub fn body_of(event: &RecordedEvent) -> String {
    let (schema_version, payload) = match trellis_domain::Event::from_stored_ref(
        &event.event_type,
        event.schema_version,
        &event.payload,
    ) {
        Ok(decoded) => (decoded.schema_version(), decoded.to_payload()),
        Err(_) => (event.schema_version, event.payload.clone()),
    };
    json!({
        "id": event.event_id,
        "type": event.event_type,
        "category": event.stream_id.category(),
        "stream": event.stream_id.as_str(),
        "stream_version": event.stream_version,
        "global_position": event.global_position,
        "schema_version": schema_version,
        "occurred_at": event.metadata.occurred_at,
        "recorded_at": event.metadata.recorded_at,
        "actor": event.metadata.actor,
        "correlation_id": event.metadata.correlation_id,
        "causation_id": event.metadata.causation_id,
        "payload": payload,
    })
    .to_string()
}

async fn send_forever(hooks: Webhooks) {
    let mut failures = 0u32;
    loop {
        // Registered before looking, so a wake during the round is not lost.
        let woken = hooks.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let wait = match send_round(&hooks).await {
            Ok(Some(wait)) => {
                failures = 0;
                wait
            }
            Ok(None) => {
                failures = 0;
                continue;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "webhook sender failed; retrying");
                loop_backoff(failures)
            }
        };
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends what is due. `None`: there may be more due right away; otherwise
/// how long to wait for the next due delivery.
async fn send_round(hooks: &Webhooks) -> Result<Option<Duration>, Error> {
    let config = &hooks.config;
    let now = Utc::now();
    let lease = config.request_timeout + Duration::from_secs(30);
    let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let claimed = hooks
        .store
        .claim_due(now, lease_until, config.batch.max(1))
        .await?;
    if claimed.is_empty() {
        let wait = match hooks.store.next_due().await? {
            Some(due) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            None => config.poll,
        };
        return Ok(Some(wait.min(config.poll)));
    }
    let results: Vec<Result<(), Error>> = futures_util::stream::iter(claimed)
        .map(|delivery| attempt(hooks, delivery))
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, Error>>()?;
    Ok(None)
}

/// One attempt at one delivery, recorded.
async fn attempt(hooks: &Webhooks, delivery: store::Claimed) -> Result<(), Error> {
    let config = &hooks.config;
    let started = Instant::now();
    let attempted_at = Utc::now();
    let result = send(
        &hooks.client,
        &delivery,
        attempted_at.timestamp(),
        config.request_timeout,
    )
    .await;
    let duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let failed = delivery.attempts + 1;
    let verdict = verdict(config, failed, &result);
    let (status, next_attempt_at, disable) = match verdict.next {
        Next::Delivered => (DeliveryStatus::Delivered, attempted_at, None),
        Next::Dead => (DeliveryStatus::Dead, attempted_at, None),
        Next::Gone => (
            DeliveryStatus::Dead,
            attempted_at,
            Some(GONE_REASON.to_owned()),
        ),
        Next::Retry(delay) => (
            DeliveryStatus::Pending,
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
            None,
        ),
    };
    let error = verdict.error;
    match (&error, verdict.next) {
        (None, _) => tracing::debug!(delivery = %delivery.id, "webhook delivered"),
        (Some(_), Next::Gone) => tracing::warn!(
            delivery = %delivery.id, webhook = %delivery.subscription_id,
            "the receiver answered 410 Gone; the webhook is disabled"
        ),
        (Some(e), Next::Dead) => tracing::warn!(
            delivery = %delivery.id, attempts = failed, error = %e,
            "webhook delivery failed for the last time; it is dead"
        ),
        (Some(e), _) => tracing::info!(
            delivery = %delivery.id, attempts = failed, error = %e, "webhook delivery failed; will retry"
        ),
    }
    let outcome = store::AttemptOutcome {
        attempt: Attempt {
            attempted_at,
            status_code: verdict.status_code,
            error: error.map(|e| truncate(e, 1000)),
            duration_ms,
        },
        status,
        next_attempt_at,
        disable,
    };
    hooks.store.record_attempt(delivery.id, &outcome).await
}

/// Why a subscription is disabled when its receiver answers `410 Gone`.
pub const GONE_REASON: &str = "the receiver answered 410 Gone: it wants no more deliveries";

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again after this long.
    Retry(Duration),
    /// No more attempts: the last failed, or none could ever succeed.
    Dead,
    /// The receiver answered `410 Gone`: this delivery is dead and its
    /// subscription disabled.
    Gone,
}

/// An attempt judged: what the delivery log records of it, and what next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed; none when delivered.
    pub error: Option<String>,
    pub next: Next,
}

/// Judges the `attempts`-th attempt (1: the first) at a delivery by what
/// it got.
///
/// - 2xx: delivered.
/// - 410: gone, whatever attempt it was.
/// - A request that cannot be sent ([`client::SendError::Unsendable`]):
///   dead now, since no retry could send it.
/// - Anything else is a failure: dead after [`WebhooksConfig::max_attempts`],
///   retried after the [backoff](WebhooksConfig::backoff) otherwise, and on
///   a 429 or 503 with `Retry-After` no earlier than that asks, up to
///   [`WebhooksConfig::max_retry_after`].
pub fn verdict(
    config: &WebhooksConfig,
    attempts: u32,
    result: &Result<client::Answer, client::SendError>,
) -> Verdict {
    let last = attempts >= config.max_attempts.max(1);
    let answer = match result {
        Err(e) => {
            return Verdict {
                status_code: None,
                error: Some(e.to_string()),
                next: if e.is_permanent() || last {
                    Next::Dead
                } else {
                    Next::Retry(config.backoff(attempts))
                },
            };
        }
        Ok(answer) => answer,
    };
    let code = answer.status;
    let status_code = Some(code);
    if (200..300).contains(&code) {
        return Verdict {
            status_code,
            error: None,
            next: Next::Delivered,
        };
    }
    if code == 410 {
        return Verdict {
            status_code,
            error: Some(format!("{GONE_REASON}, so the webhook is disabled")),
            next: Next::Gone,
        };
    }
    let asked = answer.retry_after.filter(|_| code == 429 || code == 503);
    let error = match asked {
        Some(wait) if wait > config.max_retry_after => format!(
            "the receiver answered {code} and asked for no retry within {} s; the next attempt \
             waits the most allowed, {} s",
            wait.as_secs(),
            config.max_retry_after.as_secs()
        ),
        Some(wait) => format!(
            "the receiver answered {code} and asked for no retry within {} s",
            wait.as_secs_f64().ceil()
        ),
        None => format!("the receiver answered {code}"),
    };
    let next = if last {
        Next::Dead
    } else {
        let backoff = config.backoff(attempts);
        Next::Retry(asked.map_or(backoff, |wait| {
            backoff.max(wait.min(config.max_retry_after))
        }))
    };
    Verdict {
        status_code,
        error: Some(error),
        next,
    }
}

/// Signs and POSTs a delivery: what the receiver answered, or why it did not.
async fn send(
    client: &client::Client,
    delivery: &store::Claimed,
    timestamp: i64,
    timeout: Duration,
) -> Result<client::Answer, client::SendError> {
    use client::SendError::Unsendable;
    let url = url::Url::parse(&delivery.url)
        .map_err(|e| Unsendable(format!("the URL is invalid: {e}")))?;
    let key = signing::secret_key(delivery.secret.as_str())
        .map_err(|e| Unsendable(format!("the webhook's secret cannot sign: {e}")))?;
    let msg_id = delivery.event_id.to_string();
    let signature = signing::sign(&key, &msg_id, timestamp, delivery.body.as_bytes());
    let mut headers = vec![
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    // The trace of the request that appended the event, for the receiver
    // to continue (W3C Trace Context); like every header but the three
    // above, outside the signature.
    if let Some(traceparent) = &delivery.traceparent {
        headers.push(("traceparent", traceparent.clone()));
    }
    client
        .post(&url, &headers, delivery.body.as_bytes(), timeout)
        .await
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_the_jitter_and_stops_at_the_cap() {
        let config = WebhooksConfig {
            retry_base: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(1000),
            ..WebhooksConfig::default()
        };
        for _ in 0..100 {
            let delays: Vec<Duration> = (1..=6).map(|n| config.backoff(n)).collect();
            for (n, delay) in delays.iter().enumerate() {
                let full = Duration::from_millis((100u64 << n).min(1000));
                assert!(
                    *delay <= full && *delay >= full.mul_f64(0.75),
                    "{n}: {delay:?}"
                );
            }
            assert!(delays[0] < delays[1] && delays[1] < delays[2] && delays[2] < delays[3]);
        }
    }

    fn answered(
        status: u16,
        retry_after: Option<u64>,
    ) -> Result<client::Answer, client::SendError> {
        Ok(client::Answer {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    /// No jitter, 100 ms base: the n-th retry waits exactly 100 ms * 2^(n-1).
    fn exact() -> WebhooksConfig {
        WebhooksConfig {
            retry_base: Duration::from_millis(100),
            jitter: 0.0,
            max_attempts: 5,
            ..WebhooksConfig::default()
        }
    }

    #[test]
    fn a_2xx_is_delivered_and_anything_else_is_retried_until_the_last_attempt() {
        let config = exact();
        for code in [200, 201, 204, 299] {
            let v = verdict(&config, 1, &answered(code, None));
            assert_eq!((v.next, v.error), (Next::Delivered, None), "{code}");
        }
        for code in [301, 400, 404, 429, 500, 503] {
            let v = verdict(&config, 2, &answered(code, None));
            assert_eq!(v.next, Next::Retry(Duration::from_millis(200)), "{code}");
            assert_eq!(v.status_code, Some(code));
            assert_eq!(v.error, Some(format!("the receiver answered {code}")));
            assert_eq!(verdict(&config, 5, &answered(code, None)).next, Next::Dead);
        }
        let no_answer = Err(client::SendError::NoAnswer("timed out".into()));
        assert_eq!(
            verdict(&config, 1, &no_answer).next,
            Next::Retry(Duration::from_millis(100))
        );
        assert_eq!(verdict(&config, 5, &no_answer).next, Next::Dead);
    }

    #[test]
    fn retry_after_on_a_429_or_503_puts_the_next_attempt_no_earlier_than_asked() {
        let config = exact();
        for code in [429, 503] {
            let v = verdict(&config, 1, &answered(code, Some(7)));
            assert_eq!(v.next, Next::Retry(Duration::from_secs(7)), "{code}");
            assert_eq!(
                v.error.as_deref(),
                Some(
                    format!("the receiver answered {code} and asked for no retry within 7 s")
                        .as_str()
                )
            );
            // A backoff already longer than asked stays.
            let v = verdict(&config, 4, &answered(code, Some(0)));
            assert_eq!(v.next, Next::Retry(Duration::from_millis(800)), "{code}");
        }
        // Elsewhere Retry-After means nothing.
        let v = verdict(&config, 1, &answered(500, Some(7)));
        assert_eq!(v.next, Next::Retry(Duration::from_millis(100)));
        // Asked too much, it waits the most allowed, and says so.
        let v = verdict(&config, 1, &answered(503, Some(10 * 3600)));
        assert_eq!(v.next, Next::Retry(Duration::from_secs(3600)));
        let error = v.error.unwrap_or_default();
        assert!(
            error.contains("36000 s") && error.contains("3600 s"),
            "{error}"
        );
        // The last attempt is the last, whatever the receiver asks.
        assert_eq!(
            verdict(&config, 5, &answered(503, Some(7))).next,
            Next::Dead
        );
    }

    #[test]
    fn gone_disables_at_any_attempt_and_an_unsendable_request_is_dead_at_once() {
        let config = exact();
        for attempt in [1, 3, 5] {
            let v = verdict(&config, attempt, &answered(410, Some(7)));
            assert_eq!(v.next, Next::Gone);
            assert_eq!(v.status_code, Some(410));
            assert!(v.error.unwrap_or_default().contains("410 Gone"));
        }
        let unsendable = Err(client::SendError::Unsendable("a bad header".into()));
        let v = verdict(&config, 1, &unsendable);
        assert_eq!(v.next, Next::Dead);
        assert_eq!(v.status_code, None);
        assert_eq!(v.error.as_deref(), Some("a bad header"));
    }

    /// A subscription to every event of `categories` (none: of all).
    fn subscribed_to(categories: &[&str]) -> Subscription {
        Subscription {
            id: Uuid::now_v7(),
            url: "https://hooks.example.com/trellis".into(),
            event_types: Vec::new(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            secret: store::Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            start: Checkpoint::START,
            created_at: Utc::now(),
            created_by: "admin".into(),
            paused_at: None,
            disabled: None,
        }
    }

    #[test]
    fn a_disabled_subscription_matches_no_event() {
        let mut subscription = subscribed_to(&[]);
        let later = Checkpoint { tx: 5, position: 5 };
        assert!(subscription.matches("TeamFormed", "team", later));
        subscription.disabled = Some(store::Disabled {
            at: Utc::now(),
            reason: GONE_REASON.into(),
        });
        assert!(!subscription.matches("TeamFormed", "team", later));
    }

    #[test]
    fn a_leaders_erasure_goes_to_the_subscriptions_of_teams_and_of_leaders_only() {
        let of = subscribed_to;
        let later = Checkpoint { tx: 5, position: 5 };
        assert!(of(&["team"]).matches("LeaderErased", "leader", later));
        assert!(of(&["leader"]).matches("LeaderErased", "leader", later));
        assert!(!of(&["rep"]).matches("LeaderErased", "leader", later));
        assert!(
            !of(&["leader"]).matches("TeamFormed", "team", later),
            "only the erasure is shared"
        );
    }

    #[test]
    fn truncates_on_a_character_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h…");
        assert_eq!(truncate("hello".into(), 10), "hello");
    }
}
