//! The competency framework as the log holds it now: each competency folded
//! from its own stream by the domain (name, description, the rubric of its
//! five levels, whether it is retired). For the forms that show a rubric
//! beside the choice of a level.

use std::collections::BTreeMap;

use trellis_domain::Event;
use trellis_domain::competency::{CompetencyState, evolve};
use trellis_eventstore::EventStore;
use trellis_http::problem::ApiError;

use crate::streams::{category_events, envelope};

/// Every competency ever defined, by name.
pub async fn competencies(store: &dyn EventStore) -> Result<Vec<CompetencyState>, ApiError> {
    let mut states: BTreeMap<String, CompetencyState> = BTreeMap::new();
    for recorded in category_events(store, "competency").await? {
        let decoded = envelope(recorded)?;
        if let Event::Competency(event) = &decoded.event {
            let state = states.remove(&decoded.stream_id).unwrap_or_default();
            states.insert(decoded.stream_id, evolve(state, event));
        }
    }
    let mut all: Vec<CompetencyState> = states
        .into_values()
        .filter(|s| matches!(s, CompetencyState::Defined { .. }))
        .collect();
    all.sort_by_key(|s| match s {
        CompetencyState::Defined { name, .. } => name.to_string(),
        CompetencyState::NotDefined => String::new(),
    });
    Ok(all)
}
