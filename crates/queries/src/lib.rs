//! The read side of Trellis over HTTP, and the operator helpers around it.
//!
//! Everything here answers questions; nothing writes to the log. Two kinds of
//! answer:
//!
//! - From the read models of the `growth` projection
//!   ([`trellis_projections::query::ReadModels`]): a rep's profile, growth
//!   timeline, a team's view, a leader's scorecard, coaching impact.
//! - From the log itself: a rep's state as of any instant, as it happened
//!   (business time) or as it was known then (recorded time), by replaying
//!   that rep's stream ([`asof`]); the audit trail with corrections linked and
//!   the hash chain verified ([`audit`]); the review packet and its SHA-256
//!   ([`packet`]); the global feed, paged and as Server-Sent Events ([`feed`]).
//!
//! Authorization follows the command service ([`access`]): a rep reads only
//! their own records and never private notes (nor, in the audit trail, what
//! the domain hides from them since); a leader reads the reps of the
//! teams their token lists; auditors and admins read everything; a service
//! needs the grant `reads:read`.
//!
//! # What it must not do
//!
//! - Write to the log or to the read models.
//! - Hold SQL: the log is read through [`trellis_eventstore::EventStore`], read
//!   models through [`trellis_projections::query::ReadModels`].
//! - Read the clock inside a fold: "today" is the service clock's date, passed
//!   in; a state as of an instant uses that instant's date.
//!
//! # Layout
//!
//! - [`QueryState`], [`routes`]: the service and its routes (mounted by
//!   `trellis_commands::router_with(app, routes(state))`).
//! - [`access`]: who may read what. [`params`]: query strings, each bad
//!   parameter named.
//! - [`models`]: the read-model routes. [`asof`], [`audit`], [`packet`],
//!   [`feed`]: the log routes.
//! - [`ops`]: `replay` with progress, and projection lag as Prometheus text.
//! - [`hooks`]: the dashboard's packet page shows the packet this API serves
//!   ([`hooks::ReplayedPackets`], handed to the dashboard by `trellis serve`).
//! - [`openapi`]: this API's OpenAPI document ([`openapi::ApiDoc`]), which
//!   `trellis serve` merges into `/openapi.json` with
//!   `app.with_api_doc(openapi::document())`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use trellis_commands::AppState;
use trellis_commands::problem::ApiError;
use trellis_projections::growth::GrowthSettings;
use trellis_projections::query::ReadModels;

pub mod access;
pub mod asof;
pub mod audit;
pub mod feed;
pub mod hooks;
pub mod models;
pub mod openapi;
pub mod ops;
pub mod packet;
pub mod params;

pub use ops::{ReplayProgress, lag_metrics, prometheus_lag, replay, replay_named};

/// Everything a query handler needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueryState {
    /// The command service's state: the log, the token key, the clock.
    pub app: AppState,
    /// The active generation of the read models.
    pub read: ReadModels,
    /// The settings the `growth` projection runs with (the state-as-of fold
    /// uses the same, so its documents match the projection's).
    pub settings: GrowthSettings,
    /// How often the event stream looks at the log when nothing signals an append.
    pub feed_poll: Duration,
    /// Decoded rep streams kept for time travel, the audit trail (who may
    /// read it, and its events decoded) and the review packet.
    pub stream_cache: Arc<asof::StreamCache>,
}

impl QueryState {
    pub fn new(app: AppState, read: ReadModels) -> Self {
        QueryState {
            app,
            read,
            settings: GrowthSettings::default(),
            feed_poll: trellis_eventstore::Follower::DEFAULT_POLL,
            stream_cache: Arc::new(asof::StreamCache::default()),
        }
    }

    /// Keeps at most `max_events` decoded events for time travel (0: none).
    pub fn with_stream_cache(mut self, max_events: usize) -> Self {
        self.stream_cache = Arc::new(asof::StreamCache::new(max_events));
        self
    }

    pub fn with_settings(mut self, settings: GrowthSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn with_feed_poll(mut self, poll: Duration) -> Self {
        self.feed_poll = poll;
        self
    }

    /// Today, by the service's clock.
    pub(crate) fn today(&self) -> chrono::NaiveDate {
        self.app.clock().now().date_naive()
    }
}

impl FromRef<QueryState> for AppState {
    fn from_ref(state: &QueryState) -> AppState {
        state.app.clone()
    }
}

/// Every query route, with `state` applied and no fallback: merge it into
/// the command service with `trellis_commands::router_with(app, routes(state))`.
pub fn routes(state: QueryState) -> Router {
    Router::new()
        .route("/v1/reps/{rep_id}", get(models::rep))
        .route("/v1/reps/{rep_id}/profile", get(models::rep_profile))
        .route("/v1/reps/{rep_id}/timeline", get(models::growth_timeline))
        .route("/v1/reps/{rep_id}/as-of", get(asof::route))
        .route("/v1/reps/{rep_id}/audit", get(audit::route))
        .route("/v1/reps/{rep_id}/review-packet", get(packet::route))
        .route("/v1/teams/{team_id}/view", get(models::team_view))
        .route(
            "/v1/teams/{team_id}/coaching-impact",
            get(models::coaching_impact),
        )
        .route(
            "/v1/leaders/{leader_id}/scorecard",
            get(models::leader_scorecard),
        )
        .route("/v1/events", get(feed::page))
        .route("/v1/events/stream", get(feed::stream))
        .with_state(state)
}

/// A read-side failure at the HTTP edge.
pub(crate) fn read_error(e: trellis_projections::Error) -> ApiError {
    use trellis_projections::Error as E;
    match e {
        E::Store(e) => ApiError::from(e),
        E::InvalidInput(message) => ApiError::BadRequest(message),
        other => ApiError::Internal(other.to_string()),
    }
}
