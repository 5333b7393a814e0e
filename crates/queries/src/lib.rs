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
//! needs the grant `reads:read`. Everything held about one person
//! ([`export`]) is for an admin or the person themself only.
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
//! - [`QueryState`], [`api`]: the service and its routes (mounted by
//!   `trellis_http::app`).
//! - [`streams`]: reading and decoding a rep's stream, for this API and the
//!   dashboard alike.
//! - [`access`]: who may read what. [`params`]: query strings, each bad
//!   parameter named.
//! - [`models`]: the read-model routes. [`asof`], [`audit`], [`packet`],
//!   [`feed`]: the log routes.
//! - [`export`]: everything Trellis holds about one person (subject
//!   access), for an admin or the person themself.
//! - [`ops`]: `replay` with progress, and projection lag as Prometheus text.
//! - [`openapi`]: this API's OpenAPI document ([`openapi::ApiDoc`]), which
//!   [`api`] hands to `trellis_http::app` to merge into `/openapi.json`.

use axum::Router;
use axum::routing::get;

pub mod access;
pub mod asof;
pub mod audit;
pub mod collections;
pub mod event_schemas;
pub mod export;
pub mod feed;
pub mod framework;
pub mod models;
pub mod openapi;
pub mod ops;
pub mod packet;
pub mod params;
pub mod schemas;
mod state;
pub mod streams;

pub use ops::{ReplayProgress, lag_metrics, prometheus_lag, replay, replay_named};
pub use state::QueryState;

/// The read API, for [`trellis_http::app`]: every query route with `state`
/// applied, and its OpenAPI document. A person's export says it has no
/// sign-in records to show: [`api_with_access`] gives it them.
pub fn api(state: QueryState) -> trellis_http::Api {
    trellis_http::Api {
        routes: routes(state, None),
        doc: Some(openapi::document()),
    }
}

/// The read API with the sign-in records (`trellis_access`), which a
/// person's export (`GET /v1/people/{person_id}/export`) lists.
pub fn api_with_access(state: QueryState, access: trellis_access::Access) -> trellis_http::Api {
    trellis_http::Api {
        routes: routes(state, Some(access)),
        doc: Some(openapi::document()),
    }
}

/// Every query route, with `state` applied and no fallback; `access`: the
/// sign-in records for a person's export.
fn routes(state: QueryState, access: Option<trellis_access::Access>) -> Router {
    let export = export::ExportState {
        reads: state.clone(),
        access,
    };
    Router::new()
        .route("/v1/teams", get(collections::teams))
        .route("/v1/leaders", get(collections::leaders))
        .route("/v1/reps", get(collections::reps))
        .route("/v1/competencies", get(collections::competencies))
        .route("/v1/standards", get(collections::standards))
        .route("/v1/action-items", get(collections::action_items))
        .route("/v1/support-requests", get(collections::support_requests))
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
        .route(
            "/v1/people/{person_id}/export",
            get(export::route).with_state(export),
        )
        .route("/v1/events", get(feed::page))
        .route("/v1/events/stream", get(feed::stream))
        .with_state(state)
}
