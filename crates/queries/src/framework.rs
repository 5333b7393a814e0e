//! The competency framework and the standards as the log holds them now:
//! each folded from its own stream by the domain (a competency's name,
//! description, the rubric of its five levels and whether it is retired; a
//! standard's every version and its retirement). For the forms that show a
//! rubric beside the choice of a level, and the lists integrations read.

use std::collections::BTreeMap;

use trellis_domain::Event;
use trellis_domain::competency::{CompetencyState, evolve};
use trellis_domain::standard::{self, Standard, StandardState};
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

/// Every standard ever set, with every version, by name.
pub async fn standards(store: &dyn EventStore) -> Result<Vec<Standard>, ApiError> {
    let mut states: BTreeMap<String, StandardState> = BTreeMap::new();
    for recorded in category_events(store, "standard").await? {
        let decoded = envelope(recorded)?;
        if let Event::Standard(event) = &decoded.event {
            let state = states.remove(&decoded.stream_id).unwrap_or_default();
            states.insert(decoded.stream_id, standard::evolve(state, event));
        }
    }
    let mut all: Vec<Standard> = states
        .into_values()
        .filter_map(|s| match s {
            StandardState::Set(standard) => Some(standard),
            StandardState::NotSet => None,
        })
        .collect();
    all.sort_by_key(|s| s.name.to_string());
    Ok(all)
}
