//! The live feed's events, described: the payload of every event type the
//! domain records, as the feed (`GET /v1/events`, `/v1/events/stream`)
//! serves it at its current schema version. [`describe`] adds them to the
//! read API's document (a `<EventType>Payload` schema each, and the feed
//! event's `payload` as one of them); a test reads a log holding every event
//! type and checks each payload against its description, so the two cannot
//! drift apart.

use serde_json::{Value, json};

/// A payload's property: its name, its schema, and whether it is required
/// (absent or null is not allowed).
pub type Property = (&'static str, Value, bool);

const NAME: &str = "a name: one line, at most 200 characters";
const PERSON_NAME: &str = "a person's name: one line, at most 200 characters; \"Erased person\" once their personal data is erased";
const ROLE: &str = "a role, e.g. SDR: one line, at most 50 characters";
const NOTE: &str = "text: at most 10,000 characters";
const METRIC: &str = "a metric, a lowercase slug like calls_made";
const OCCURRENCE: &str = "what makes an alert one occurrence";
const SHA256: &str = "a SHA-256, 64 lowercase hex digits";
const PERIOD: &str = "a period: 2026-W05, 2026-03 or 2026-Q1";
const ACTION_ITEM: &str = "an action item: `action_item_id`, `description`, `owner` \
    (`{\"kind\": \"rep\"}` or `{\"kind\": \"leader\", \"leader_id\": …}`) and `due_on`";
const PLAN_TARGET: &str =
    "a target: `description`, and the `standard_id` it is measured by (or null)";
const RAMP_STEP: &str = "`period_index` (the rep's Nth period, from 1) and `percent_of_target`";
const RECIPIENT: &str = "who is told: a leader or a rep, by id";
const ALERT_DETAILS: &str = "what the alert is about, tagged by `kind` (standard_missed, \
    not_coached, action_item_overdue, support_request_unresolved, quality_gate_passed, \
    plan_review_near)";
const CORRECTION: &str = "how the fact is superseded, tagged by `kind`: `retracted`, \
    `skill_level` (with `level` and `evidence`) or `measured_value` (with `value`)";

/// Each event type, its current schema version, and its payload's properties.
pub fn payloads() -> Vec<(&'static str, u16, Vec<Property>)> {
    vec![
        (
            "TeamFormed",
            1,
            vec![("team_id", id(), true), ("name", text(NAME), true)],
        ),
        (
            "LeaderAssigned",
            1,
            vec![
                ("team_id", id(), true),
                ("leader_id", id(), true),
                ("leader_name", text(PERSON_NAME), true),
            ],
        ),
        (
            "TeamRenamed",
            1,
            vec![("team_id", id(), true), ("name", text(NAME), true)],
        ),
        ("CompetencyDefined", 1, competency()),
        ("CompetencyRevised", 1, competency()),
        (
            "CompetencyRetired",
            1,
            vec![("competency_id", id(), true), ("reason", text(NOTE), true)],
        ),
        (
            "StandardSet",
            1,
            vec![
                ("standard_id", id(), true),
                ("name", text(NAME), true),
                ("metric", text(METRIC), true),
                ("kind", one_of(&["quality", "quantity", "behaviour"]), true),
                ("direction", one_of(&["at_least", "at_most"]), true),
                ("unit", text(NAME), true),
                ("period", one_of(&["week", "month", "quarter"]), true),
                (
                    "target",
                    json!({ "type": "number", "exclusiveMinimum": 0 }),
                    true,
                ),
                ("roles", list(text(ROLE)), true),
                ("effective_from", date(), true),
                ("ramp", list(object(RAMP_STEP)), true),
                ("version", whole(), true),
            ],
        ),
        (
            "StandardRevised",
            1,
            vec![
                ("standard_id", id(), true),
                ("version", whole(), true),
                (
                    "target",
                    json!({ "type": "number", "exclusiveMinimum": 0 }),
                    true,
                ),
                ("effective_from", date(), true),
                ("roles", list(text(ROLE)), false),
                ("ramp", list(object(RAMP_STEP)), false),
            ],
        ),
        (
            "StandardRetired",
            1,
            vec![
                ("standard_id", id(), true),
                ("effective_from", date(), true),
                ("reason", text(NOTE), true),
            ],
        ),
        (
            "AlertRaised",
            1,
            vec![
                ("alert_id", id(), true),
                ("occurrence_key", text(OCCURRENCE), true),
                ("team_id", id(), true),
                ("rep_id", id(), true),
                ("recipients", list(object(RECIPIENT)), true),
                ("details", object(ALERT_DETAILS), true),
                ("raised_on", date(), true),
            ],
        ),
        (
            "RepJoined",
            1,
            vec![
                ("rep_id", id(), true),
                ("name", text(PERSON_NAME), true),
                ("role", text(ROLE), true),
                ("team_id", id(), true),
                ("start_date", date(), true),
            ],
        ),
        ("RepRenamed", 1, vec![("name", text(PERSON_NAME), true)]),
        (
            "RepMovedTeam",
            1,
            vec![
                ("from", id(), true),
                ("to", id(), true),
                ("on", date(), true),
            ],
        ),
        (
            "RepRoleChanged",
            1,
            vec![
                ("from", text(ROLE), true),
                ("to", text(ROLE), true),
                ("on", date(), true),
            ],
        ),
        (
            "RepDeparted",
            1,
            vec![("on", date(), true), ("reason", text(NOTE), true)],
        ),
        (
            "ExpectationsAcknowledged",
            1,
            vec![
                ("standard_id", id(), true),
                ("standard_version", whole(), true),
                ("on", date(), true),
            ],
        ),
        (
            "FeedbackGiven",
            2,
            vec![
                ("feedback_id", id(), true),
                ("leader_id", id(), true),
                ("competency_id", id(), true),
                ("kind", one_of(&["praise", "constructive"]), true),
                ("note", text(NOTE), true),
                ("visibility", one_of(&["shared", "private"]), true),
                ("given_on", date(), true),
            ],
        ),
        (
            "FeedbackAcknowledged",
            1,
            vec![("feedback_id", id(), true), ("on", date(), true)],
        ),
        (
            "SkillAssessed",
            1,
            vec![
                ("assessment_id", id(), true),
                ("leader_id", id(), true),
                ("competency_id", id(), true),
                (
                    "level",
                    json!({ "type": "integer", "minimum": 1, "maximum": 5 }),
                    true,
                ),
                ("evidence", text(NOTE), true),
                ("assessed_on", date(), true),
            ],
        ),
        (
            "CoachingSessionHeld",
            1,
            vec![
                ("session_id", id(), true),
                ("leader_id", id(), true),
                ("held_on", date(), true),
                ("duration_minutes", whole(), true),
                ("focus", list(id()), true),
                ("notes", text(NOTE), true),
                ("visibility", one_of(&["shared", "private"]), true),
                ("action_items", list(object(ACTION_ITEM)), true),
            ],
        ),
        (
            "ActionItemCompleted",
            1,
            vec![("action_item_id", id(), true), ("on", date(), true)],
        ),
        (
            "ActionItemDropped",
            1,
            vec![
                ("action_item_id", id(), true),
                ("on", date(), true),
                ("reason", text(NOTE), true),
            ],
        ),
        (
            "TrainingCompleted",
            1,
            vec![
                ("training_id", id(), true),
                ("title", text(NAME), true),
                ("competency_id", id(), false),
                ("completed_on", date(), true),
            ],
        ),
        (
            "PerformanceMeasured",
            1,
            vec![
                ("measurement_id", id(), true),
                ("metric", text(METRIC), true),
                ("period", text(PERIOD), true),
                ("value", json!({ "type": "number", "minimum": 0 }), true),
                ("source", one_of(&["manual", "crm_import"]), true),
            ],
        ),
        (
            "SupportRequested",
            1,
            vec![
                ("request_id", id(), true),
                (
                    "category",
                    one_of(&["leads", "tools", "training", "process", "other"]),
                    true,
                ),
                ("description", text(NOTE), true),
                ("raised_on", date(), true),
            ],
        ),
        (
            "SupportAcknowledged",
            1,
            vec![
                ("request_id", id(), true),
                ("leader_id", id(), true),
                ("on", date(), true),
            ],
        ),
        (
            "SupportResolved",
            1,
            vec![
                ("request_id", id(), true),
                ("leader_id", id(), true),
                ("resolution", text(NOTE), true),
                ("on", date(), true),
            ],
        ),
        (
            "ImprovementPlanStarted",
            1,
            vec![
                ("plan_id", id(), true),
                ("leader_id", id(), true),
                ("targets", list(object(PLAN_TARGET)), true),
                ("started_on", date(), true),
                ("review_on", date(), true),
            ],
        ),
        (
            "PlanCheckpointRecorded",
            1,
            vec![
                ("plan_id", id(), true),
                ("note", text(NOTE), true),
                ("on", date(), true),
            ],
        ),
        (
            "ImprovementPlanClosed",
            1,
            vec![
                ("plan_id", id(), true),
                ("outcome", one_of(&["met", "extended", "not_met"]), true),
                ("note", text(NOTE), true),
                ("on", date(), true),
            ],
        ),
        (
            "FactCorrected",
            1,
            vec![
                ("fact_id", id(), true),
                ("reason", text(NOTE), true),
                ("correction", object(CORRECTION), true),
            ],
        ),
        (
            "ReviewHeld",
            1,
            vec![
                ("review_id", id(), true),
                ("period_from", date(), true),
                ("period_to", date(), true),
                ("packet_sha256", text(SHA256), true),
                ("on", date(), true),
            ],
        ),
        (
            "PersonalDataErased",
            1,
            vec![("reason", text(NOTE), true), ("on", date(), true)],
        ),
        (
            "LeaderErased",
            1,
            vec![
                ("leader_id", id(), true),
                ("reason", text(NOTE), true),
                ("on", date(), true),
            ],
        ),
    ]
}

/// A competency as it is defined or revised (the same properties).
fn competency() -> Vec<Property> {
    vec![
        ("competency_id", id(), true),
        ("name", text(NAME), true),
        ("description", text(NOTE), true),
        (
            "rubric",
            json!({ "type": "array", "minItems": 5, "maxItems": 5, "items": text(NOTE) }),
            true,
        ),
    ]
}

fn id() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn date() -> Value {
    json!({ "type": "string", "format": "date" })
}

fn text(what: &str) -> Value {
    json!({ "type": "string", "description": what })
}

fn whole() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn one_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

fn object(what: &str) -> Value {
    json!({ "type": "object", "description": what })
}

fn list(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// The schema of one event type's payload.
pub fn payload_schema(event_type: &str, version: u16, properties: &[Property]) -> Value {
    let required: Vec<&str> = properties
        .iter()
        .filter(|(_, _, required)| *required)
        .map(|(name, _, _)| *name)
        .collect();
    let props: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema, _)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({
        "type": "object",
        "title": event_type,
        "description": format!("The payload of a `{event_type}` event (schema version {version})."),
        "properties": props,
        "required": required,
    })
}

/// Adds every payload schema to `doc` and describes the feed event's
/// `payload` as one of them (which one, its `event_type` says).
pub fn describe(doc: &mut utoipa::openapi::OpenApi) -> Result<(), serde_json::Error> {
    let mut json = serde_json::to_value(&*doc)?;
    let mut refs = Vec::new();
    for (event_type, version, properties) in payloads() {
        let name = format!("{event_type}Payload");
        json["components"]["schemas"][&name] = payload_schema(event_type, version, &properties);
        refs.push(json!({ "$ref": format!("#/components/schemas/{name}") }));
    }
    json["components"]["schemas"]["FeedEvent"]["properties"]["payload"] = json!({
        "description": "The event as stored: the payload of its `event_type`. These \
                        schemas describe each type at its current `schema_version`; an event \
                        recorded at an older one keeps the payload it was recorded with.",
        "oneOf": refs,
    });
    *doc = serde_json::from_value(json)?;
    Ok(())
}
