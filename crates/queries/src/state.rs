//! What a query handler, and the dashboard asking the same questions, needs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use trellis_http::HttpState;
use trellis_http::auth::Claims;
use trellis_http::extract::Principal;
use trellis_http::problem::ApiError;
use trellis_projections::growth::GrowthSettings;
use trellis_projections::query::ReadModels;

use crate::params::{PathId, PathParam};
use crate::streams::StreamCache;

/// Everything a query handler needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueryState {
    /// What every API shares: the log, the token key, the clock.
    pub http: HttpState,
    /// The active generation of the read models.
    pub read: ReadModels,
    /// The settings the `growth` projection runs with (the state-as-of fold
    /// uses the same, so its documents match the projection's).
    pub settings: GrowthSettings,
    /// How often the event stream looks at the log when nothing signals an append.
    pub feed_poll: Duration,
    /// Decoded rep streams kept for time travel, the audit trail (who may
    /// read it, and its events decoded) and the review packet.
    pub stream_cache: Arc<StreamCache>,
}

impl QueryState {
    pub fn new(http: HttpState, read: ReadModels) -> Self {
        QueryState {
            http,
            read,
            settings: GrowthSettings::default(),
            feed_poll: trellis_eventstore::Follower::DEFAULT_POLL,
            stream_cache: Arc::new(StreamCache::default()),
        }
    }

    /// Keeps at most `max_events` decoded events for time travel (0: none).
    pub fn with_stream_cache(mut self, max_events: usize) -> Self {
        self.stream_cache = Arc::new(StreamCache::new(max_events));
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
        self.http.clock().now().date_naive()
    }
}

impl FromRef<QueryState> for HttpState {
    fn from_ref(state: &QueryState) -> HttpState {
        state.http.clone()
    }
}

/// Who asks, with the state to answer from: every query handler's first
/// argument.
#[derive(Debug, Clone)]
pub struct Reader {
    pub state: QueryState,
    pub claims: Claims,
}

impl FromRequestParts<QueryState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        let Principal(claims) = Principal::from_request_parts(parts, state).await?;
        Ok(Reader {
            state: state.clone(),
            claims,
        })
    }
}

/// A read about one entity the path names (`{rep_id}`, `{team_id}`,
/// `{leader_id}`): who asks, the state to answer from, and the id.
#[derive(Debug, Clone)]
pub struct About<T> {
    pub state: QueryState,
    pub claims: Claims,
    pub id: T,
}

impl<T: PathParam> FromRequestParts<QueryState> for About<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        let Reader { state, claims } = Reader::from_request_parts(parts, state).await?;
        let PathId(id) = PathId::<T>::from_request_parts(parts, &state).await?;
        Ok(About { state, claims, id })
    }
}
