//! What every write answers with: the `Recorded` body with its status and
//! headers (for a rep command, as the command says: [`answer_rep`]), and the
//! errors the OpenAPI document lists for each write.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use trellis_domain::RepCommand;
use trellis_eventstore::StreamId;
use trellis_http::problem::{ApiError, Problem};
use utoipa::IntoResponses;
use uuid::Uuid;

use crate::wire::{Recorded, SessionRecorded};
use crate::write::Written;

/// The errors every write can answer with, each an `application/problem+json`
/// body ([`Problem`]).
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Malformed JSON or CSV, or a bad header (If-Match, Idempotency-Key).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No bearer token, or a bad or expired one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token does not allow this write.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The rep, team, standard or record does not exist.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The stream changed since the version sent in If-Match (`current_version` says where it is).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    /// The body is not JSON (or, for imports, CSV).
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Invalid fields (each named in `errors`), a rule of the domain, or a reused idempotency key.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// The store is unavailable; retry after the `Retry-After` seconds.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// A stream id of one of our categories; cannot fail for a UUID.
pub fn stream(category: &str, id: Uuid) -> Result<StreamId, ApiError> {
    StreamId::for_entity(category, id).map_err(|e| ApiError::Internal(e.to_string()))
}

/// 201 (created) or 200 with the `Recorded` body, an `ETag` of the stream
/// version, and `Idempotent-Replayed: true` on a replay.
pub fn respond(created: bool, id: Option<Uuid>, written: Written) -> Response {
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

/// What a rep command answers: 201 with the id of what it created (a
/// coaching session also lists its action items' ids), or 200.
pub fn answer_rep(command: &RepCommand, written: Written) -> Response {
    use RepCommand as C;
    let created = match command {
        C::JoinRep { joined, .. } => joined.rep_id.as_uuid(),
        C::GiveFeedback { feedback, .. } => feedback.feedback_id.as_uuid(),
        C::AssessSkill { assessment, .. } => assessment.assessment_id.as_uuid(),
        C::HoldCoachingSession { session, .. } => {
            let body = SessionRecorded {
                recorded: Recorded {
                    id: Some(session.session_id.as_uuid()),
                    stream_version: written.stream_version,
                    events: written.events,
                    replayed: written.replayed,
                },
                action_item_ids: session
                    .action_items
                    .iter()
                    .map(|i| i.action_item_id.as_uuid())
                    .collect(),
            };
            return respond_with(true, written, &body);
        }
        C::RecordTraining { training, .. } => training.training_id.as_uuid(),
        C::MeasurePerformance { measurement, .. } => measurement.measurement_id.as_uuid(),
        C::RaiseSupportRequest { request, .. } => request.request_id.as_uuid(),
        C::StartImprovementPlan { plan, .. } => plan.plan_id.as_uuid(),
        C::HoldReview { review, .. } => review.review_id.as_uuid(),
        C::MoveTeam { .. }
        | C::ChangeRole { .. }
        | C::Rename { .. }
        | C::Depart { .. }
        | C::AcknowledgeExpectations { .. }
        | C::AcknowledgeFeedback { .. }
        | C::CompleteActionItem { .. }
        | C::DropActionItem { .. }
        | C::AcknowledgeSupportRequest { .. }
        | C::ResolveSupportRequest { .. }
        | C::RecordPlanCheckpoint { .. }
        | C::CloseImprovementPlan { .. }
        | C::CorrectFact { .. }
        | C::ErasePersonalData { .. } => return respond(false, None, written),
    };
    respond(true, Some(created), written)
}

/// `body` with its status (201 when `created`, else 200), an `ETag` of the
/// stream version, and `Idempotent-Replayed: true` on a replay.
pub fn respond_with(created: bool, written: Written, body: &impl serde::Serialize) -> Response {
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
