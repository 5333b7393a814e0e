//! Which parts of a stored payload are personal data, and whose.
//!
//! Personal data — a person's name and the free text written about them
//! (feedback, assessment evidence, coaching notes and action items, support
//! requests and their answers, plan targets and notes, departure and
//! correction reasons) — is stored encrypted with a key of its own person, so
//! that destroying the key erases it while the log and its proofs stay whole
//! (crypto-shredding; the store does the encrypting, see
//! `trellis_eventstore::vault`). This module only says where that data sits
//! in each event's payload and whose it is: a rep's stream holds the rep's,
//! and a team's `LeaderAssigned` holds the leader's name.
//!
//! Everything else (ids, dates, levels, figures, the names of teams,
//! competencies, standards, metrics and trainings) is not personal and stays
//! readable, so figures stay attached to a person's pseudonymous id after
//! their personal data is erased.

use serde_json::Value;
use uuid::Uuid;

/// Whether `text` names the person called `name`: their whole name in any
/// case, their surname (the name's last word) in any case, or another word
/// of their name of three letters or more written as a name, capitalised
/// ("Ada asked", not "will be" for a Will). An erasure's reason stays
/// readable after the erasure, so it must not
/// (`Rejection::ErasureReasonNamesPerson`). The name an erased person
/// reads as ([`ERASED_NAME`]) names no one.
pub fn names_person(text: &str, name: &str) -> bool {
    if name == ERASED_NAME {
        return false;
    }
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let lower = |ws: &[String]| ws.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>();
    let (written, name) = (words(text), words(name));
    let (text, name) = (lower(&written), lower(&name));
    let whole = !name.is_empty() && text.windows(name.len()).any(|w| w == name.as_slice());
    let surname = name
        .last()
        .filter(|w| name.len() > 1 && w.chars().count() >= 3);
    let capitalised = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
    whole
        || surname.is_some_and(|surname| text.contains(surname))
        || name.iter().filter(|w| w.chars().count() >= 3).any(|w| {
            written
                .iter()
                .zip(&text)
                .any(|(as_written, lower)| lower == w && capitalised(as_written))
        })
}

/// What a personal string is, so an erased one reads sensibly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A person's name.
    Name,
    /// Free text written about a person.
    Text,
}

impl Kind {
    /// What is shown where an erased value of this kind was.
    pub fn erased(self) -> &'static str {
        match self {
            Kind::Name => ERASED_NAME,
            Kind::Text => ERASED_TEXT,
        }
    }
}

/// Shown where an erased person's name was.
pub const ERASED_NAME: &str = "Erased person";
/// Shown where free text about an erased person was.
pub const ERASED_TEXT: &str = "(erased)";

/// Where the personal strings of one event type sit: a path of object keys,
/// `[]` standing for every element of an array.
fn paths(event_type: &str) -> &'static [&'static [&'static str]] {
    match event_type {
        "RepJoined" | "RepRenamed" => &[&["name"]],
        "RepDeparted" | "ActionItemDropped" => &[&["reason"]],
        "FeedbackGiven" | "PlanCheckpointRecorded" | "ImprovementPlanClosed" => &[&["note"]],
        "SkillAssessed" => &[&["evidence"]],
        "CoachingSessionHeld" => &[&["notes"], &["action_items", "[]", "description"]],
        "SupportRequested" => &[&["description"]],
        "SupportResolved" => &[&["resolution"]],
        "ImprovementPlanStarted" => &[&["targets", "[]", "description"]],
        "FactCorrected" => &[&["reason"], &["correction", "evidence"]],
        "LeaderAssigned" => &[&["leader_name"]],
        _ => &[],
    }
}

/// Whose personal data an event of `event_type` in `stream_id` holds: the
/// rep of a rep's stream, the leader a team's `LeaderAssigned` names.
pub fn owner(stream_id: &str, event_type: &str, payload: &Value) -> Option<Uuid> {
    if paths(event_type).is_empty() {
        return None;
    }
    if event_type == "LeaderAssigned" {
        return payload
            .get("leader_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
    }
    match entity_of_stream(stream_id) {
        Some(("rep", id)) => Some(id),
        _ => None,
    }
}

/// The category and entity id of a stream id (`rep-0190…` → `("rep",
/// 0190…)`, as `ids::stream_id` makes them), or `None` for any other shape.
pub(crate) fn entity_of_stream(stream_id: &str) -> Option<(&str, Uuid)> {
    let (category, id) = stream_id.split_at_checked(stream_id.len().checked_sub(36)?)?;
    let category = category.strip_suffix('-')?;
    Some((category, Uuid::parse_str(id).ok()?))
}

/// Calls `each` with every personal string of a payload about to be stored,
/// and its kind. A name field is [`Kind::Name`]; the rest is [`Kind::Text`].
pub fn visit(event_type: &str, payload: &mut Value, each: &mut dyn FnMut(Kind, &mut Value)) {
    for path in paths(event_type) {
        let kind = match path.last() {
            Some(&"name") | Some(&"leader_name") => Kind::Name,
            _ => Kind::Text,
        };
        visit_path(payload, path, kind, each);
    }
}

fn visit_path(
    value: &mut Value,
    path: &[&str],
    kind: Kind,
    each: &mut dyn FnMut(Kind, &mut Value),
) {
    match path.split_first() {
        None => {
            if value.is_string() {
                each(kind, value);
            }
        }
        Some((&"[]", rest)) => {
            if let Value::Array(items) = value {
                for item in items {
                    visit_path(item, rest, kind, each);
                }
            }
        }
        Some((key, rest)) => {
            if let Some(inner) = value.get_mut(*key) {
                visit_path(inner, rest, kind, each);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_coaching_sessions_notes_and_every_action_item_are_visited_as_text() {
        let mut payload = json!({
            "notes": "Talked about discovery",
            "action_items": [{"description": "Call Ann"}, {"description": "Read the guide"}],
            "held_on": "2026-01-01"
        });
        let mut seen = Vec::new();
        visit("CoachingSessionHeld", &mut payload, &mut |kind, v| {
            seen.push((kind, v.as_str().unwrap().to_owned()));
            *v = Value::from("x");
        });
        assert_eq!(
            seen,
            [
                (Kind::Text, "Talked about discovery".to_owned()),
                (Kind::Text, "Call Ann".to_owned()),
                (Kind::Text, "Read the guide".to_owned()),
            ]
        );
        assert_eq!(payload["held_on"], "2026-01-01");
    }

    #[test]
    fn a_leaders_name_belongs_to_the_leader_and_a_reps_text_to_the_rep() {
        let leader = Uuid::from_u128(7);
        let rep = Uuid::from_u128(9);
        let assigned = json!({"leader_id": leader.to_string(), "leader_name": "Lee"});
        assert_eq!(
            owner(
                "team-00000000-0000-0000-0000-000000000001",
                "LeaderAssigned",
                &assigned
            ),
            Some(leader)
        );
        let stream = format!("rep-{rep}");
        assert_eq!(owner(&stream, "FeedbackGiven", &json!({})), Some(rep));
        assert_eq!(owner(&stream, "PerformanceMeasured", &json!({})), None);
    }
}
