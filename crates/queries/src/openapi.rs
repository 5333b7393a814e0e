//! The read API's OpenAPI document, generated from the handlers'
//! annotations and the response types of this crate ([`crate::schemas`]).
//!
//! [`crate::api`] hands it to `trellis_http::app`, which merges it with the
//! other APIs' so `/openapi.json` describes the reads beside the writes. It
//! stands on its own too: it names the same `bearer` scheme and the same
//! `Problem` body.

use trellis_http::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::schemas::StandingSchema;
use crate::{asof, audit, collections, export, feed, models, packet};

/// Every query route, described.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Trellis reads",
        description = "The read side of Trellis: rep profiles, growth timelines, team views, \
                       leader scorecards, coaching impact, a rep's state as of any instant, \
                       audit trails, review packets and the global feed."
    ),
    paths(
        models::rep, models::rep_profile, models::growth_timeline, asof::route, audit::route,
        packet::route, models::team_view, models::coaching_impact, models::leader_scorecard,
        feed::page, feed::stream,
        collections::teams, collections::leaders, collections::reps, collections::competencies,
        collections::action_items, collections::support_requests, collections::standards,
        export::route,
    ),
    components(schemas(StandingSchema)),
    tags(
        (name = "audit", description = "A rep's audit trail: every event of their stream, \
                                        corrections linked, the hash chain verified."),
        (name = "leaders", description = "Leaders' scorecards."),
        (name = "feed", description = "Every event in global order, for auditors and services: \
                                       paged, or as Server-Sent Events."),
        (name = "people", description = "Everything Trellis holds about one person (subject \
                                         access), for an admin or the person themself."),
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// [`ApiDoc`] as a document, for callers that do not depend on utoipa,
/// with the feed's event payloads described ([`crate::event_schemas`]).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    crate::event_schemas::describe(&mut doc).expect("the read document round-trips as JSON");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_document_is_valid_json_with_an_operation_per_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        let operations: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|item| item.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(operations, 19);
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
