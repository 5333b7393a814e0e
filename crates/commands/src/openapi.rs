//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the wire types, never written by hand.
//!
//! [`ApiDoc`] describes this service's routes. Other services mounted beside
//! it with [`crate::router_with`] (the read API, the webhook admin API) bring
//! their own documents; [`document`] merges them under this one's `info` and
//! security scheme, and [`crate::AppState::with_api_doc`] makes
//! `/openapi.json` serve the merge, so this crate never depends on theirs.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::problem::Problem;
use crate::routes::{framework, measurements, ops, reps, teams};

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

/// Adds the `bearer` security scheme (an HS256 JWT) that every `/v1`
/// operation names. Public so that the other services' documents name the
/// same scheme and stand on their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
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
        description = "Trellis, an event-sourced ledger of how each salesperson grows. Writes \
                       record domain commands in an append-only log: send `Idempotency-Key` to \
                       make a retry safe and `If-Match` (a stream version) to write only if \
                       nothing changed since you read. Reads answer from the read models (rep \
                       profiles, growth timelines, team views, leader scorecards, coaching \
                       impact) or from the log itself (a rep's state as of any instant, audit \
                       trails with the hash chain verified, review packets and their SHA-256, \
                       the global feed, paged or as Server-Sent Events). Admins manage signed \
                       webhooks and their delivery log. Every `/v1` route takes a bearer token; \
                       every error is application/problem+json (RFC 9457)."
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

/// The documents of the services mounted beside this one, as
/// [`crate::AppState`] keeps them (utoipa's `OpenApi` is `Debug` only with
/// a feature we do not need, so this names their titles instead).
#[derive(Clone, Default)]
pub(crate) struct OtherDocs(pub(crate) Vec<Document>);

impl std::fmt::Debug for OtherDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|doc| &doc.info.title))
            .finish()
    }
}

/// The document `/openapi.json` serves: this service's [`ApiDoc`] with
/// `others` merged in (their paths, schemas, responses, security schemes and
/// tags), keeping this one's `info`. An operation or schema name that is
/// already present is kept as it is, so the services must not share one; the
/// workspace tests check that nothing is lost in the merge.
pub fn document(others: impl IntoIterator<Item = Document>) -> Document {
    let mut merged = ApiDoc::openapi();
    for other in others {
        merged.merge(other);
    }
    merged
}
