//! Where subscriptions and deliveries live: their own tables in the log's
//! database, one backend per event store backend (PostgreSQL schema
//! `trellis`, or the embedded file), each with its own migrations.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use trellis_eventstore::Checkpoint;
use uuid::Uuid;

use crate::Error;

pub mod postgres;
pub mod sqlite;

/// A subscription: where to send which events, signed with which secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: Uuid,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    /// Empty: every category (`rep`, `team`, `standard`, `competency`).
    pub categories: Vec<String>,
    /// `whsec_<base64>`.
    pub secret: Secret,
    /// The subscription sees the events after this place in the log.
    pub start: Checkpoint,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Since when no delivery is sent (they are still queued); none: sending.
    pub paused_at: Option<DateTime<Utc>>,
    /// Since when, and why, nothing is queued or sent: its receiver answered
    /// `410 Gone`. None: enabled. Resuming enables it again.
    pub disabled: Option<Disabled>,
}

/// Why a subscription stopped receiving anything, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A webhook's signing secret: never printed, in a log line or a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Subscription {
    /// Whether an event of this type, in a stream of this category, at this
    /// place in the log, is for this subscription (a disabled one wants none).
    /// A leader's erasure (category `leader`) goes to the subscriptions of
    /// `team` too: their `LeaderAssigned` hold the name it obliges them to
    /// forget.
    pub fn matches(&self, event_type: &str, category: &str, at: Checkpoint) -> bool {
        let wanted = |c: &String| {
            c == category
                || (category == trellis_domain::LeaderEvent::CATEGORY
                    && c == trellis_domain::TeamEvent::CATEGORY)
        };
        self.disabled.is_none()
            && at > self.start
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && (self.categories.is_empty() || self.categories.iter().any(wanted))
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed, no attempt could succeed, or its subscription
    /// was deleted or disabled: the dead-letter list.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

pub(crate) fn status_of(text: &str) -> Result<DeliveryStatus, Error> {
    DeliveryStatus::parse(text)
        .ok_or_else(|| Error::Database(format!("unknown delivery status {text:?}")))
}

/// One event queued for one subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub stream_id: String,
    pub global_position: u64,
    /// The JSON body every attempt sends.
    pub body: String,
    /// The W3C trace context the event was recorded with, sent as the
    /// `traceparent` header of every attempt.
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed (none for a 2xx).
    pub error: Option<String>,
    pub duration_ms: u32,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub stream_id: String,
    pub global_position: u64,
    pub status: DeliveryStatus,
    /// Attempts since it was queued or last replayed.
    pub attempts: u32,
    pub replays: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first, across replays.
    pub history: Vec<Attempt>,
}

/// A pending delivery a sender took for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    /// Attempts made before this one (since queued or replayed).
    pub attempts: u32,
    pub body: String,
    /// Sent as the `traceparent` header ([`NewDelivery::traceparent`]).
    pub traceparent: Option<String>,
    pub url: String,
    pub secret: Secret,
}

/// What an attempt leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub attempt: Attempt,
    /// `Delivered`, `Pending` (retry at `next_attempt_at`) or `Dead`.
    pub status: DeliveryStatus,
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver wants nothing more (`410 Gone`): disable the
    /// subscription for this reason, at the attempt's time, and move its
    /// other pending deliveries to the dead-letter list, all with the attempt.
    pub disable: Option<String>,
}

/// What a delivery left pending when its subscription is disabled says.
pub(crate) fn disabled_error(reason: &str) -> String {
    format!("not sent: the webhook was disabled ({reason})")
}

/// How many deliveries wait, and how many are dead letters, of the
/// subscriptions not deleted (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Pending: due, waiting for a retry, or held by a paused subscription.
    pub pending: u64,
    /// Dead: every attempt failed, no attempt could succeed, or the
    /// subscription was disabled (an admin may replay them).
    pub dead: u64,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Queued again, due now.
    Requeued(Box<Delivery>),
    /// It is still pending: nothing to replay.
    AlreadyPending,
    /// Its subscription was deleted.
    SubscriptionDeleted,
    NotFound,
}

/// The type of the event that names a leader (their name is its personal
/// data).
pub(crate) const LEADER_ASSIGNED: &str =
    <trellis_domain::team::LeaderAssigned as trellis_domain::EventPayload>::EVENT_TYPE;

/// Which deliveries' bodies an erasure rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bodies {
    /// Every delivery of an event of this stream (an erased rep's).
    OfStream(String),
    /// Every delivery of a team's `LeaderAssigned` naming this leader.
    LeaderAssigned(Uuid),
}

/// Subscriptions and deliveries of one backend.
#[async_trait]
pub trait WebhookStore: Send + Sync + fmt::Debug {
    async fn create_subscription(&self, subscription: &Subscription) -> Result<(), Error>;

    /// Every subscription not deleted, oldest first.
    async fn subscriptions(&self) -> Result<Vec<Subscription>, Error>;

    /// A subscription not deleted.
    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, Error>;

    /// Marks a subscription deleted and its pending deliveries dead; `false`
    /// when there is no such subscription (or it was deleted before).
    async fn delete_subscription(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, Error>;

    /// Pauses (`Some(at)`) or resumes (`None`) a subscription not deleted;
    /// resuming also enables a disabled one. `false` when there is no such
    /// subscription.
    async fn set_paused(&self, id: Uuid, paused_at: Option<DateTime<Utc>>) -> Result<bool, Error>;

    /// Queues deliveries, due at once; one per (subscription, event) however
    /// often it is called, none for a subscription deleted or disabled
    /// meanwhile. Returns how many were new.
    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<u64, Error>;

    /// Rewrites, in one transaction, the body of every delivery `of` holds
    /// as `rewrite` returns it (`None`: leave it).
    async fn rewrite_bodies(
        &self,
        of: &Bodies,
        rewrite: for<'b> fn(&'b str) -> Option<String>,
    ) -> Result<u64, Error>;

    /// Takes up to `max` pending deliveries due at `now` (of subscriptions not
    /// deleted, paused nor disabled), oldest due first, and pushes their due time to `lease_until`
    /// so no other sender takes them meanwhile.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<Claimed>, Error>;

    /// Records an attempt and where the delivery stands after it, atomically;
    /// with [`AttemptOutcome::disable`], disables its subscription too. A
    /// delivery left pending whose subscription is disabled is dead instead.
    async fn record_attempt(
        &self,
        delivery_id: Uuid,
        outcome: &AttemptOutcome,
    ) -> Result<(), Error>;

    /// When the earliest pending delivery of a subscription not deleted,
    /// paused nor disabled is due.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error>;

    /// The deliveries pending and dead, of subscriptions not deleted.
    async fn backlog(&self) -> Result<Backlog, Error>;

    /// The deliveries of a subscription, newest first, with their attempts.
    async fn deliveries(
        &self,
        subscription_id: Uuid,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error>;

    async fn delivery(&self, id: Uuid) -> Result<Option<Delivery>, Error>;

    /// Queues a delivered or dead delivery again, due at `now`, with its
    /// attempt count reset (its history is kept).
    async fn replay(&self, id: Uuid, now: DateTime<Utc>) -> Result<Replay, Error>;
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

pub(crate) fn to_u16(n: i64) -> u16 {
    u16::try_from(n).unwrap_or(0)
}
