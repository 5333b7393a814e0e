//! Alerts: tell the person who must act.
//!
//! # What it owns
//!
//! - [`rules`]: pure functions from one rep's read models (the `growth`
//!   profile and timeline), the team's leaders, `today` and [`Thresholds`]
//!   to [`Occurrence`]s, each with a key naming exactly one situation.
//! - [`evaluator`]: [`run_evaluator`] runs the rules every minute and soon
//!   after appends, and records each new occurrence as `AlertRaised` on its
//!   own stream `alert-<uuid v5 of the key>`, expecting the stream empty: an
//!   occurrence is raised once, also across restarts and processes, and is
//!   in the log (hash-chained, auditable).
//! - [`publisher`]: [`run_publisher`] follows the log from its own checkpoint
//!   and publishes each `AlertRaised` to JetStream `TRELLIS_ALERTS`, subject
//!   `trellis.alerts.<team id>.<kind>`, with `Nats-Msg-Id` = event id and the
//!   contract's protobuf envelope as body.
//!
//! # What it must not do
//!
//! Decide anything the domain decides (`AlertAggregate` does), or write
//! anything but `AlertRaised` events.
//!
//! # Wiring (`trellis serve`)
//!
//! ```text
//! let read = ReadModels::new(read_store.clone());
//! tokio::spawn(trellis_alerts::run_evaluator(
//!     store.clone(), read, AlertsConfig::default().evaluator, shutdown.clone()));
//! if let Some(url) = nats_url {            // without NATS alerts are still recorded
//!     let client = async_nats::connect(url).await?;
//!     tokio::spawn(trellis_alerts::run_publisher(
//!         store.clone(), client, AlertsConfig::default().publisher, shutdown));
//! }
//! ```
//!
//! Several processes may run both: the evaluator's appends conflict instead
//! of repeating, and JetStream drops the publishers' duplicate message ids.

pub mod evaluator;
pub mod publisher;
pub mod rules;

pub use evaluator::{Evaluation, Evaluator, EvaluatorConfig, Today, run_evaluator};
pub use publisher::{
    ALERTS_STREAM, ALERTS_SUBJECT_PREFIX, AlertMessage, PublisherConfig, run_publisher,
};
pub use rules::{Occurrence, Thresholds};

/// Everything alerts need to know, for the binary's configuration.
#[derive(Debug, Clone, Default)]
pub struct AlertsConfig {
    pub evaluator: EvaluatorConfig,
    pub publisher: PublisherConfig,
}

/// Why an evaluation or a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] trellis_eventstore::Error),
    #[error(transparent)]
    ReadModels(#[from] trellis_projections::Error),
    #[error("the domain refused an alert: {0}")]
    Rejected(String),
    #[error("an alert could not be decoded: {0}")]
    Decode(String),
    #[error("NATS: {0}")]
    Broker(String),
}

impl Error {
    pub(crate) fn broker(e: impl std::fmt::Display) -> Self {
        Error::Broker(e.to_string())
    }
}

#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod tests;
