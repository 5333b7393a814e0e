//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the wire types, never written by hand.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::problem::Problem;
use crate::routes::{framework, measurements, ops, reps, teams};

/// The errors every write can answer with, each an `application/problem+json` body.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Malformed JSON or CSV, or a bad header (If-Match, Idempotency-Key).
    #[response(status = 400)]
    BadRequest(Problem),
    /// No bearer token, or a bad or expired one.
    #[response(status = 401)]
    Unauthorized(Problem),
    /// The token does not allow this write.
    #[response(status = 403)]
    Forbidden(Problem),
    /// The rep, team, standard or record does not exist.
    #[response(status = 404)]
    NotFound(Problem),
    /// The stream changed since the version sent in If-Match (`current_version` says where it is).
    #[response(status = 409)]
    Conflict(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413)]
    PayloadTooLarge(Problem),
    /// The body is not JSON (or, for imports, CSV).
    #[response(status = 415)]
    UnsupportedMediaType(Problem),
    /// Invalid fields (each named in `errors`), a rule of the domain, or a reused idempotency key.
    #[response(status = 422)]
    Unprocessable(Problem),
    /// The store is unavailable; retry after the `Retry-After` seconds.
    #[response(status = 503)]
    Unavailable(Problem),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Trellis",
        description = "The write side of Trellis, an event-sourced ledger of how each salesperson \
                       grows. Every error is application/problem+json (RFC 9457). Send \
                       `Idempotency-Key` to make a retry safe and `If-Match` (a stream version) \
                       to write only if nothing changed since you read."
    ),
    paths(
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
        teams::form, teams::assign_leader, teams::rename,
        framework::define_competency, framework::revise_competency, framework::retire_competency,
        framework::set_standard, framework::revise_standard, framework::retire_standard,
        reps::join, reps::move_team, reps::change_role, reps::depart,
        reps::acknowledge_expectations, reps::give_feedback, reps::acknowledge_feedback,
        reps::assess_skill, reps::hold_coaching_session, reps::complete_action_item,
        reps::drop_action_item, reps::record_training, reps::record_measurement,
        measurements::import,
        reps::raise_support_request, reps::acknowledge_support_request,
        reps::resolve_support_request, reps::start_improvement_plan,
        reps::record_plan_checkpoint, reps::close_improvement_plan, reps::correct_fact,
        reps::hold_review,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;
