//! The event catalogue as one enum, and how events travel to and from storage.
//!
//! A stored event is three things: its type name (`"FeedbackGiven"`), its schema
//! version, and a JSON payload holding the event's own fields. The type name and
//! version are stable forever; when an event's shape changes, its version goes up
//! and an upcaster in [`crate::upcast`] turns old payloads into the current shape
//! on read. Nothing already stored is ever rewritten.

use serde_json::Value;
use uuid::Uuid;

use crate::alert::AlertEvent;
use crate::competency::CompetencyEvent;
use crate::decode::DecodeError;
use crate::leader::LeaderEvent;
use crate::rep::RepEvent;
use crate::standard::StandardEvent;
use crate::team::TeamEvent;
use crate::upcast;

/// The person whose personal data an event erases, when it is an erasure:
/// a rep's `PersonalDataErased` (on the rep's stream) or a leader's
/// `LeaderErased` (on the leader's). Whoever keeps copies of personal data
/// (read models, published messages, webhook bodies) forgets theirs on it.
pub fn erased_person(stream_id: &str, event_type: &str) -> Option<Uuid> {
    use crate::EventPayload as _;
    let category = match event_type {
        crate::rep::PersonalDataErased::EVENT_TYPE => crate::rep::RepEvent::CATEGORY,
        crate::leader::LeaderErased::EVENT_TYPE => crate::leader::LeaderEvent::CATEGORY,
        _ => return None,
    };
    match crate::personal::entity_of_stream(stream_id) {
        Some((c, id)) if c == category => Some(id),
        _ => None,
    }
}

/// Any event in Trellis, grouped by the aggregate whose stream it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Team(TeamEvent),
    Competency(CompetencyEvent),
    Standard(StandardEvent),
    Rep(RepEvent),
    Alert(AlertEvent),
    Leader(LeaderEvent),
}

/// A stored payload in the current schema version, parsed (owned or
/// borrowed) or still text.
enum StoredPayload<'a> {
    Value(Value),
    Borrowed(&'a Value),
    Json(&'a str),
}

impl From<AlertEvent> for Event {
    fn from(event: AlertEvent) -> Self {
        Event::Alert(event)
    }
}

impl From<TeamEvent> for Event {
    fn from(event: TeamEvent) -> Self {
        Event::Team(event)
    }
}

impl From<CompetencyEvent> for Event {
    fn from(event: CompetencyEvent) -> Self {
        Event::Competency(event)
    }
}

impl From<StandardEvent> for Event {
    fn from(event: StandardEvent) -> Self {
        Event::Standard(event)
    }
}

impl From<RepEvent> for Event {
    fn from(event: RepEvent) -> Self {
        Event::Rep(event)
    }
}

impl From<LeaderEvent> for Event {
    fn from(event: LeaderEvent) -> Self {
        Event::Leader(event)
    }
}

impl Event {
    /// Every event type with its current schema version, across all aggregates.
    pub fn types() -> impl Iterator<Item = (&'static str, u16)> {
        TeamEvent::TYPES
            .iter()
            .chain(CompetencyEvent::TYPES)
            .chain(StandardEvent::TYPES)
            .chain(RepEvent::TYPES)
            .chain(AlertEvent::TYPES)
            .chain(LeaderEvent::TYPES)
            .copied()
    }

    /// The current schema version of `event_type`, or `None` if the type is unknown.
    pub fn latest_version(event_type: &str) -> Option<u16> {
        Self::types()
            .find(|(name, _)| *name == event_type)
            .map(|(_, version)| version)
    }

    /// The stable type name, e.g. `"FeedbackGiven"`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::Team(e) => e.event_type(),
            Event::Competency(e) => e.event_type(),
            Event::Standard(e) => e.event_type(),
            Event::Rep(e) => e.event_type(),
            Event::Alert(e) => e.event_type(),
            Event::Leader(e) => e.event_type(),
        }
    }

    /// The schema version of [`Event::to_payload`].
    pub fn schema_version(&self) -> u16 {
        match self {
            Event::Team(e) => e.schema_version(),
            Event::Competency(e) => e.schema_version(),
            Event::Standard(e) => e.schema_version(),
            Event::Rep(e) => e.schema_version(),
            Event::Alert(e) => e.schema_version(),
            Event::Leader(e) => e.schema_version(),
        }
    }

    /// The stream category: `team`, `competency`, `standard`, `rep`, `alert`
    /// or `leader`.
    pub fn category(&self) -> &'static str {
        match self {
            Event::Team(_) => TeamEvent::CATEGORY,
            Event::Competency(_) => CompetencyEvent::CATEGORY,
            Event::Standard(_) => StandardEvent::CATEGORY,
            Event::Rep(_) => RepEvent::CATEGORY,
            Event::Alert(_) => AlertEvent::CATEGORY,
            Event::Leader(_) => LeaderEvent::CATEGORY,
        }
    }

    /// The business date the fact belongs to, when it has one: when feedback
    /// was given, a session held, a standard takes effect; the last day of a
    /// measured period. `None` for facts that are about the record itself
    /// (team and competency changes, corrections): their time is when they
    /// were recorded.
    pub fn occurred_on(&self) -> Option<chrono::NaiveDate> {
        use crate::rep::RepEvent as R;
        use crate::standard::StandardEvent as S;
        match self {
            Event::Team(_) | Event::Competency(_) | Event::Leader(_) => None,
            Event::Standard(S::Set(e)) => Some(e.effective_from),
            Event::Standard(S::Revised(e)) => Some(e.effective_from),
            Event::Standard(S::Retired(e)) => Some(e.effective_from),
            Event::Rep(e) => match e {
                R::Joined(e) => Some(e.start_date),
                R::MovedTeam(e) => Some(e.on),
                R::RoleChanged(e) => Some(e.on),
                R::Departed(e) => Some(e.on),
                R::Renamed(_) => None,
                R::ExpectationsAcknowledged(e) => Some(e.on),
                R::FeedbackGiven(e) => Some(e.given_on),
                R::FeedbackAcknowledged(e) => Some(e.on),
                R::SkillAssessed(e) => Some(e.assessed_on),
                R::CoachingSessionHeld(e) => Some(e.held_on),
                R::ActionItemCompleted(e) => Some(e.on),
                R::ActionItemDropped(e) => Some(e.on),
                R::TrainingCompleted(e) => Some(e.completed_on),
                R::PerformanceMeasured(e) => Some(e.period.end()),
                R::SupportRequested(e) => Some(e.raised_on),
                R::SupportAcknowledged(e) => Some(e.on),
                R::SupportResolved(e) => Some(e.on),
                R::ImprovementPlanStarted(e) => Some(e.started_on),
                R::PlanCheckpointRecorded(e) => Some(e.on),
                R::ImprovementPlanClosed(e) => Some(e.on),
                R::FactCorrected(_) => None,
                R::ReviewHeld(e) => Some(e.on),
                R::PersonalDataErased(_) => None,
            },
            Event::Alert(AlertEvent::Raised(e)) => Some(e.raised_on),
        }
    }

    /// The event's own fields as JSON. Type name and version travel separately.
    pub fn to_payload(&self) -> Value {
        match self {
            Event::Team(e) => e.to_payload(),
            Event::Competency(e) => e.to_payload(),
            Event::Standard(e) => e.to_payload(),
            Event::Rep(e) => e.to_payload(),
            Event::Alert(e) => e.to_payload(),
            Event::Leader(e) => e.to_payload(),
        }
    }

    /// Reads a stored event back, upcasting older schema versions to the current one first.
    pub fn from_stored(
        event_type: &str,
        schema_version: u16,
        payload: Value,
    ) -> Result<Event, DecodeError> {
        let latest = Self::latest_version(event_type).ok_or_else(|| DecodeError::UnknownType {
            event_type: event_type.to_owned(),
        })?;
        if schema_version == 0 || schema_version > latest {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version: schema_version,
                latest,
            });
        }
        let payload = upcast::to_latest(event_type, schema_version, latest, payload)?;
        Self::decode_current(event_type, schema_version, StoredPayload::Value(payload))
    }

    /// [`Event::from_stored`] for a payload the caller keeps (a page of the
    /// log it goes on to show): one in the current schema version is decoded
    /// from the borrowed value; only an older one is copied, to be upcast.
    pub fn from_stored_ref(
        event_type: &str,
        schema_version: u16,
        payload: &Value,
    ) -> Result<Event, DecodeError> {
        if Self::latest_version(event_type).is_some_and(|latest| latest != schema_version) {
            return Self::from_stored(event_type, schema_version, payload.clone());
        }
        Self::decode_current(event_type, schema_version, StoredPayload::Borrowed(payload))
    }

    /// [`Event::from_stored`] for a payload still in its JSON text, as the
    /// log returns it: a payload already in the current schema version is
    /// decoded straight into the event (the fast path readers of the whole
    /// log take); an older one is parsed and upcast first.
    pub fn from_stored_json(
        event_type: &str,
        schema_version: u16,
        payload: &str,
    ) -> Result<Event, DecodeError> {
        if Self::latest_version(event_type).is_some_and(|latest| latest != schema_version) {
            let value =
                serde_json::from_str::<Value>(payload).map_err(|error| DecodeError::Malformed {
                    event_type: event_type.to_owned(),
                    version: schema_version,
                    reason: error.to_string(),
                })?;
            return Self::from_stored(event_type, schema_version, value);
        }
        Self::decode_current(event_type, schema_version, StoredPayload::Json(payload))
    }

    fn decode_current(
        event_type: &str,
        schema_version: u16,
        payload: StoredPayload<'_>,
    ) -> Result<Event, DecodeError> {
        macro_rules! decode {
            ($Enum:ident, $Variant:ident) => {
                match payload {
                    StoredPayload::Value(value) => $Enum::decode_current(event_type, value),
                    StoredPayload::Borrowed(value) => $Enum::decode_current_ref(event_type, value),
                    StoredPayload::Json(text) => $Enum::decode_current_json(event_type, text),
                }
                .map(|r| r.map(Event::$Variant))
            };
        }
        let is = |types: &[(&str, u16)]| types.iter().any(|(name, _)| *name == event_type);
        let decoded = if is(TeamEvent::TYPES) {
            decode!(TeamEvent, Team)
        } else if is(CompetencyEvent::TYPES) {
            decode!(CompetencyEvent, Competency)
        } else if is(StandardEvent::TYPES) {
            decode!(StandardEvent, Standard)
        } else if is(AlertEvent::TYPES) {
            decode!(AlertEvent, Alert)
        } else if is(LeaderEvent::TYPES) {
            decode!(LeaderEvent, Leader)
        } else {
            decode!(RepEvent, Rep)
        }
        .ok_or_else(|| DecodeError::UnknownType {
            event_type: event_type.to_owned(),
        })?;
        decoded.map_err(|error| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            version: schema_version,
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erasure_names_the_person_of_its_own_stream_and_nothing_else_does() {
        let id = Uuid::from_u128(0x0190_a5b2_7c3e_7d41_9a2b_3c4d_5e6f_7a8b);
        let rep = format!("rep-{id}");
        let leader = format!("leader-{id}");
        assert_eq!(erased_person(&rep, "PersonalDataErased"), Some(id));
        assert_eq!(erased_person(&leader, "LeaderErased"), Some(id));
        assert_eq!(erased_person(&rep, "LeaderErased"), None);
        assert_eq!(erased_person(&leader, "PersonalDataErased"), None);
        assert_eq!(erased_person(&rep, "FeedbackGiven"), None);
    }
}
