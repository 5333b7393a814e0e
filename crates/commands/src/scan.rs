//! Reading every stream of one category, for a command that checks its
//! entity against the others of its kind (a team's name against the other
//! teams', a measurement's metric against the standards). Those categories
//! are small — teams, competencies, standards: dozens of streams, each
//! with a handful of events — and read straight from the log, so what was
//! recorded a moment ago counts.

use std::ops::ControlFlow;

use trellis_domain::Event;
use trellis_eventstore::{EventStore, StreamId, scan_streams_after};
use trellis_http::problem::ApiError;

/// Hands `visit` every event of every stream of `category`, decoded, in
/// stream order (each stream's events in version order), with its stream.
pub async fn each_event_of(
    store: &dyn EventStore,
    category: &str,
    mut visit: impl FnMut(&StreamId, Event),
) -> Result<(), ApiError> {
    let first = StreamId::new(category).map_err(|e| ApiError::Internal(e.to_string()))?;
    scan_streams_after(store, Some((first, 0)), 500, |event| {
        if event.stream_id.category() != category {
            return Ok::<_, ApiError>(ControlFlow::Break(()));
        }
        let decoded =
            Event::from_stored_ref(&event.event_type, event.schema_version, &event.payload)
                .map_err(|e| {
                    ApiError::Internal(format!("a {category}'s event does not decode: {e}"))
                })?;
        visit(&event.stream_id, decoded);
        Ok(ControlFlow::Continue(()))
    })
    .await
}
