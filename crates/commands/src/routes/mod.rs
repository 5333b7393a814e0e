//! The routes, one module per resource, and what their responses share.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use trellis_eventstore::StreamId;
use uuid::Uuid;

use crate::AppState;
use crate::problem::ApiError;
use crate::wire::Recorded;
use crate::write::Written;

pub mod framework;
pub mod measurements;
pub mod ops;
pub mod reps;
pub mod teams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/teams", post(teams::form))
        .route("/v1/teams/{team_id}/leaders", post(teams::assign_leader))
        .route("/v1/teams/{team_id}/name", put(teams::rename))
        .route("/v1/competencies", post(framework::define_competency))
        .route(
            "/v1/competencies/{competency_id}",
            put(framework::revise_competency),
        )
        .route(
            "/v1/competencies/{competency_id}/retirement",
            post(framework::retire_competency),
        )
        .route("/v1/standards", post(framework::set_standard))
        .route(
            "/v1/standards/{standard_id}/revisions",
            post(framework::revise_standard),
        )
        .route(
            "/v1/standards/{standard_id}/retirement",
            post(framework::retire_standard),
        )
        .route("/v1/reps", post(reps::join))
        .route("/v1/reps/{rep_id}/team-moves", post(reps::move_team))
        .route("/v1/reps/{rep_id}/role-changes", post(reps::change_role))
        .route("/v1/reps/{rep_id}/departure", post(reps::depart))
        .route(
            "/v1/reps/{rep_id}/expectations-acknowledgements",
            post(reps::acknowledge_expectations),
        )
        .route("/v1/reps/{rep_id}/feedback", post(reps::give_feedback))
        .route(
            "/v1/reps/{rep_id}/feedback/{feedback_id}/acknowledgement",
            post(reps::acknowledge_feedback),
        )
        .route(
            "/v1/reps/{rep_id}/skill-assessments",
            post(reps::assess_skill),
        )
        .route(
            "/v1/reps/{rep_id}/coaching-sessions",
            post(reps::hold_coaching_session),
        )
        .route(
            "/v1/reps/{rep_id}/action-items/{action_item_id}/completion",
            post(reps::complete_action_item),
        )
        .route(
            "/v1/reps/{rep_id}/action-items/{action_item_id}/drop",
            post(reps::drop_action_item),
        )
        .route("/v1/reps/{rep_id}/trainings", post(reps::record_training))
        .route(
            "/v1/reps/{rep_id}/measurements",
            post(reps::record_measurement),
        )
        .route("/v1/measurements", post(measurements::import))
        .route(
            "/v1/reps/{rep_id}/support-requests",
            post(reps::raise_support_request),
        )
        .route(
            "/v1/reps/{rep_id}/support-requests/{request_id}/acknowledgement",
            post(reps::acknowledge_support_request),
        )
        .route(
            "/v1/reps/{rep_id}/support-requests/{request_id}/resolution",
            post(reps::resolve_support_request),
        )
        .route(
            "/v1/reps/{rep_id}/improvement-plans",
            post(reps::start_improvement_plan),
        )
        .route(
            "/v1/reps/{rep_id}/improvement-plans/{plan_id}/checkpoints",
            post(reps::record_plan_checkpoint),
        )
        .route(
            "/v1/reps/{rep_id}/improvement-plans/{plan_id}/closure",
            post(reps::close_improvement_plan),
        )
        .route("/v1/reps/{rep_id}/corrections", post(reps::correct_fact))
        .route("/v1/reps/{rep_id}/reviews", post(reps::hold_review))
        .fallback(ops::not_found)
}

/// A stream id of one of our categories; cannot fail for a UUID.
pub(crate) fn stream(category: &str, id: Uuid) -> Result<StreamId, ApiError> {
    StreamId::for_entity(category, id).map_err(|e| ApiError::Internal(e.to_string()))
}

/// 201 (created) or 200 with the `Recorded` body, an `ETag` of the stream
/// version, and `Idempotent-Replayed: true` on a replay.
pub(crate) fn respond(created: bool, id: Option<Uuid>, written: Written) -> Response {
    respond_with(
        created,
        written,
        &Recorded {
            id,
            stream_version: written.stream_version,
            events: written.events,
            replayed: written.replayed,
        },
    )
}

pub(crate) fn respond_with(
    created: bool,
    written: Written,
    body: &impl serde::Serialize,
) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", written.stream_version)) {
        headers.insert(header::ETAG, etag);
    }
    if written.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Path parameters, parsed with messages that say which one was wrong.
#[derive(Debug)]
pub struct PathIds(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("the path could not be read: {e}")))?;
        Ok(PathIds(
            raw.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

impl PathIds {
    /// The UUID in path parameter `name`; 404 when it is not one, since no
    /// such resource can exist.
    pub fn uuid(&self, name: &str) -> Result<Uuid, ApiError> {
        let value = self
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::Internal(format!("route has no {name} parameter")))?;
        Uuid::parse_str(value).map_err(|_| {
            ApiError::NotFound(format!(
                "{value:?} is not a valid {}: ids are UUIDs, as Trellis returned them",
                name.replace('_', " ")
            ))
        })
    }
}
