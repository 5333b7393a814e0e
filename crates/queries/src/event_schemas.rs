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

/// Each event type, its current schema version, and its payload's properties.
pub fn payloads() -> Vec<(&'static str, u16, Vec<Property>)> {
    vec![
        (
            "TeamFormed",
            1,
            vec![
                (
                    "team_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "name",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
            ],
        ),
        (
            "LeaderAssigned",
            1,
            vec![
                (
                    "team_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_name",
                    json!({ "type": "string", "description": "a person's name: one line, at most 200 characters" }),
                    true,
                ),
            ],
        ),
        (
            "TeamRenamed",
            1,
            vec![
                (
                    "team_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "name",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
            ],
        ),
        (
            "CompetencyDefined",
            1,
            vec![
                (
                    "competency_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "name",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
                (
                    "description",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "rubric",
                    json!({ "type": "array", "minItems": 5, "maxItems": 5, "items": { "type": "string" }, "description": "what levels 1 to 5 look like, level 1 first" }),
                    true,
                ),
            ],
        ),
        (
            "CompetencyRevised",
            1,
            vec![
                (
                    "competency_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "name",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
                (
                    "description",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "rubric",
                    json!({ "type": "array", "minItems": 5, "maxItems": 5, "items": { "type": "string" }, "description": "what levels 1 to 5 look like, level 1 first" }),
                    true,
                ),
            ],
        ),
        (
            "CompetencyRetired",
            1,
            vec![
                (
                    "competency_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "reason",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
            ],
        ),
        (
            "StandardSet",
            1,
            vec![
                (
                    "standard_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "name",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
                (
                    "metric",
                    json!({ "type": "string", "description": "a metric, a lowercase slug like calls_made" }),
                    true,
                ),
                (
                    "kind",
                    json!({ "type": "string", "enum": ["quality", "quantity", "behaviour"] }),
                    true,
                ),
                (
                    "direction",
                    json!({ "type": "string", "enum": ["at_least", "at_most"] }),
                    true,
                ),
                (
                    "unit",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
                (
                    "period",
                    json!({ "type": "string", "enum": ["week", "month", "quarter"] }),
                    true,
                ),
                (
                    "target",
                    json!({ "type": "number", "exclusiveMinimum": 0 }),
                    true,
                ),
                (
                    "roles",
                    json!({ "type": "array", "items": json!({ "type": "string", "description": "a role, e.g. SDR: one line, at most 50 characters" }) }),
                    true,
                ),
                (
                    "effective_from",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "ramp",
                    json!({ "type": "array", "items": json!({ "type": "object", "description": "`period_index` (the rep's Nth period, from 1) and `percent_of_target`" }) }),
                    true,
                ),
                ("version", json!({ "type": "integer", "minimum": 0 }), true),
            ],
        ),
        (
            "StandardRevised",
            1,
            vec![
                (
                    "standard_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                ("version", json!({ "type": "integer", "minimum": 0 }), true),
                (
                    "target",
                    json!({ "type": "number", "exclusiveMinimum": 0 }),
                    true,
                ),
                (
                    "effective_from",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "roles",
                    json!({ "type": "array", "items": json!({ "type": "string", "description": "a role, e.g. SDR: one line, at most 50 characters" }) }),
                    false,
                ),
                (
                    "ramp",
                    json!({ "type": "array", "items": json!({ "type": "object", "description": "`period_index` (the rep's Nth period, from 1) and `percent_of_target`" }) }),
                    false,
                ),
            ],
        ),
        (
            "StandardRetired",
            1,
            vec![
                (
                    "standard_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "effective_from",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "reason",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
            ],
        ),
        (
            "AlertRaised",
            1,
            vec![
                (
                    "alert_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "occurrence_key",
                    json!({ "type": "string", "description": "what makes an alert one occurrence" }),
                    true,
                ),
                (
                    "team_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "rep_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "recipients",
                    json!({ "type": "array", "items": json!({ "type": "object", "description": "who is told: `{\"kind\": \"leader\", \"id\": …}` or `{\"kind\": \"rep\", \"id\": …}`" }) }),
                    true,
                ),
                (
                    "details",
                    json!({ "type": "object", "description": "what the alert is about, tagged by `kind` (standard_missed, not_coached, action_item_overdue, support_request_unresolved, quality_gate_passed, plan_review_near)" }),
                    true,
                ),
                (
                    "raised_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "RepJoined",
            1,
            vec![
                (
                    "rep_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "name",
                    json!({ "type": "string", "description": "a person's name: one line, at most 200 characters" }),
                    true,
                ),
                (
                    "role",
                    json!({ "type": "string", "description": "a role, e.g. SDR: one line, at most 50 characters" }),
                    true,
                ),
                (
                    "team_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "start_date",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "RepMovedTeam",
            1,
            vec![
                ("from", json!({ "type": "string", "format": "uuid" }), true),
                ("to", json!({ "type": "string", "format": "uuid" }), true),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "RepRoleChanged",
            1,
            vec![
                (
                    "from",
                    json!({ "type": "string", "description": "a role, e.g. SDR: one line, at most 50 characters" }),
                    true,
                ),
                (
                    "to",
                    json!({ "type": "string", "description": "a role, e.g. SDR: one line, at most 50 characters" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "RepDeparted",
            1,
            vec![
                ("on", json!({ "type": "string", "format": "date" }), true),
                (
                    "reason",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
            ],
        ),
        (
            "ExpectationsAcknowledged",
            1,
            vec![
                (
                    "standard_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "standard_version",
                    json!({ "type": "integer", "minimum": 0 }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "FeedbackGiven",
            2,
            vec![
                (
                    "feedback_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "competency_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "kind",
                    json!({ "type": "string", "enum": ["praise", "constructive"] }),
                    true,
                ),
                (
                    "note",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "visibility",
                    json!({ "type": "string", "enum": ["shared", "private"] }),
                    true,
                ),
                (
                    "given_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "FeedbackAcknowledged",
            1,
            vec![
                (
                    "feedback_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "SkillAssessed",
            1,
            vec![
                (
                    "assessment_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "competency_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "level",
                    json!({ "type": "integer", "minimum": 1, "maximum": 5 }),
                    true,
                ),
                (
                    "evidence",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "assessed_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "CoachingSessionHeld",
            1,
            vec![
                (
                    "session_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "held_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "duration_minutes",
                    json!({ "type": "integer", "minimum": 0 }),
                    true,
                ),
                (
                    "focus",
                    json!({ "type": "array", "items": json!({ "type": "string", "format": "uuid" }) }),
                    true,
                ),
                (
                    "notes",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "visibility",
                    json!({ "type": "string", "enum": ["shared", "private"] }),
                    true,
                ),
                (
                    "action_items",
                    json!({ "type": "array", "items": json!({ "type": "object", "description": "an action item: `action_item_id`, `description`, `owner` (`{\"kind\": \"rep\"}` or `{\"kind\": \"leader\", \"leader_id\": …}`) and `due_on`" }) }),
                    true,
                ),
            ],
        ),
        (
            "ActionItemCompleted",
            1,
            vec![
                (
                    "action_item_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "ActionItemDropped",
            1,
            vec![
                (
                    "action_item_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
                (
                    "reason",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
            ],
        ),
        (
            "TrainingCompleted",
            1,
            vec![
                (
                    "training_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "title",
                    json!({ "type": "string", "description": "a name: one line, at most 200 characters" }),
                    true,
                ),
                (
                    "competency_id",
                    json!({ "type": "string", "format": "uuid" }),
                    false,
                ),
                (
                    "completed_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "PerformanceMeasured",
            1,
            vec![
                (
                    "measurement_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "metric",
                    json!({ "type": "string", "description": "a metric, a lowercase slug like calls_made" }),
                    true,
                ),
                (
                    "period",
                    json!({ "type": "string", "description": "a period: 2026-W05, 2026-03 or 2026-Q1" }),
                    true,
                ),
                ("value", json!({ "type": "number", "minimum": 0 }), true),
                (
                    "source",
                    json!({ "type": "string", "enum": ["manual", "crm_import"] }),
                    true,
                ),
            ],
        ),
        (
            "SupportRequested",
            1,
            vec![
                (
                    "request_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "category",
                    json!({ "type": "string", "enum": ["leads", "tools", "training", "process", "other"] }),
                    true,
                ),
                (
                    "description",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "raised_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "SupportAcknowledged",
            1,
            vec![
                (
                    "request_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "SupportResolved",
            1,
            vec![
                (
                    "request_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "resolution",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "ImprovementPlanStarted",
            1,
            vec![
                (
                    "plan_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "leader_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "targets",
                    json!({ "type": "array", "items": json!({ "type": "object", "description": "a target: `description`, and the `standard_id` it is measured by (or null)" }) }),
                    true,
                ),
                (
                    "started_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "review_on",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
            ],
        ),
        (
            "PlanCheckpointRecorded",
            1,
            vec![
                (
                    "plan_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "note",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "ImprovementPlanClosed",
            1,
            vec![
                (
                    "plan_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "outcome",
                    json!({ "type": "string", "enum": ["met", "extended", "not_met"] }),
                    true,
                ),
                (
                    "note",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
        (
            "FactCorrected",
            1,
            vec![
                (
                    "fact_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "reason",
                    json!({ "type": "string", "description": "text: at most 10,000 characters" }),
                    true,
                ),
                (
                    "correction",
                    json!({ "type": "object", "description": "how the fact is superseded, tagged by `kind`: `{\"kind\": \"retracted\"}`, `{\"kind\": \"skill_level\", \"level\", \"evidence\"}` or `{\"kind\": \"measured_value\", \"value\"}`" }),
                    true,
                ),
            ],
        ),
        (
            "ReviewHeld",
            1,
            vec![
                (
                    "review_id",
                    json!({ "type": "string", "format": "uuid" }),
                    true,
                ),
                (
                    "period_from",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "period_to",
                    json!({ "type": "string", "format": "date" }),
                    true,
                ),
                (
                    "packet_sha256",
                    json!({ "type": "string", "description": "a SHA-256, 64 lowercase hex digits" }),
                    true,
                ),
                ("on", json!({ "type": "string", "format": "date" }), true),
            ],
        ),
    ]
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
