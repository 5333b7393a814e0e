//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the wire types, never written by hand.
//!
//! [`ApiDoc`] holds what every API shares: `info`, the bearer security
//! scheme, and the operational routes. Each API (the writes, the reads, the
//! webhook admin routes) brings its own document; [`document`] merges them
//! under this one, and [`crate::app`] serves the merge on `/openapi.json`,
//! so no API depends on another's.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::problem::Problem;

use crate::ops;

/// Adds the `bearer` security scheme (an HS256 JWT) and names it on every
/// `/v1` operation of the document (the operational routes take no token).
/// Public so that every API's document names the same scheme and stands on
/// its own, and no route has to say it.
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .security
                    .get_or_insert_with(|| vec![SecurityRequirement::new("bearer", [""; 0])]);
            }
        }
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

/// The errors every `/v1` route can answer with, whatever the API, each an
/// `application/problem+json` body: an API lists them beside its own
/// (its 403, a route's 400 and 404).
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// No bearer token, or a bad or expired one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The store is unavailable; retry after the `Retry-After` seconds.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
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
    paths(ops::healthz, ops::readyz, ops::metrics, ops::openapi),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document `/openapi.json` serves: the shared [`ApiDoc`] with every
/// API's document in `apis` merged in (their paths, schemas, responses,
/// security schemes and tags), keeping the shared `info`. An operation or
/// schema name that is already present is kept as it is, so the APIs must
/// not share one; the workspace tests check that nothing is lost in the merge.
pub fn document(apis: impl IntoIterator<Item = Document>) -> Document {
    let mut merged = ApiDoc::openapi();
    for api in apis {
        merged.merge(api);
    }
    merged
}
