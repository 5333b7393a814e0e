use std::collections::BTreeSet;

use serde_json::json;
use trellis_domain::alert::{AlertDetails, AlertEvent};
use trellis_domain::competency::{CompetencyDefined, CompetencyRetired, CompetencyRevised};
use trellis_domain::leader::{LeaderErased, LeaderEvent};
use trellis_domain::rep::*;
use trellis_domain::standard::{RampStep, StandardRetired, StandardRevised, StandardSet};
use trellis_domain::team::{LeaderAssigned, TeamFormed, TeamRenamed};
use trellis_domain::{
    CompetencyEvent, DecodeError, Direction, Event, PeriodKind, Rubric, StandardEvent,
    StandardKind, TeamEvent,
};
use uuid::Uuid;

use crate::support::{date, id, parse, text};

/// One event of every variant. Adding a variant without adding it here fails
/// to compile (see [`variant_name`]) or fails [`every_event_type_has_a_sample`].
fn one_of_each() -> Vec<Event> {
    let rubric = Rubric::new(["1", "2", "3", "4", "5"].map(|l| text(&format!("level {l}"))));
    vec![
        TeamFormed {
            team_id: id(1),
            name: parse("West"),
        }
        .into(),
        LeaderAssigned {
            team_id: id(1),
            leader_id: id(20),
            leader_name: parse("Grace Hopper"),
        }
        .into(),
        TeamRenamed {
            team_id: id(1),
            name: parse("West Coast"),
        }
        .into(),
        CompetencyDefined {
            competency_id: id(2),
            name: parse("Discovery"),
            description: text("Finds the real problem."),
            rubric: rubric.clone(),
        }
        .into(),
        CompetencyRevised {
            competency_id: id(2),
            name: parse("Discovery"),
            description: text("Finds the problem and its impact."),
            rubric,
        }
        .into(),
        CompetencyRetired {
            competency_id: id(2),
            reason: text("Merged."),
        }
        .into(),
        StandardSet {
            standard_id: id(3),
            name: parse("Discovery calls"),
            metric: parse("discovery_calls"),
            kind: StandardKind::Quality,
            direction: Direction::AtLeast,
            unit: parse("calls"),
            period: PeriodKind::Week,
            target: 10.0.try_into().expect("target"),
            roles: vec![parse("SDR")],
            effective_from: date("2026-01-05"),
            ramp: vec![RampStep {
                period_index: 1,
                percent_of_target: 50,
            }],
            version: 1,
        }
        .into(),
        StandardRevised {
            standard_id: id(3),
            version: 2,
            target: 12.5.try_into().expect("target"),
            effective_from: date("2026-04-06"),
            roles: Some(vec![parse("SDR"), parse("AE")]),
            ramp: None,
        }
        .into(),
        StandardRetired {
            standard_id: id(3),
            effective_from: date("2026-10-05"),
            reason: text("Replaced."),
        }
        .into(),
        RepJoined {
            rep_id: id(10),
            name: parse("Ada"),
            role: parse("SDR"),
            team_id: id(1),
            start_date: date("2026-01-05"),
        }
        .into(),
        RepMovedTeam {
            from: id(1),
            to: id(11),
            on: date("2026-02-01"),
        }
        .into(),
        RepRoleChanged {
            from: parse("SDR"),
            to: parse("AE"),
            on: date("2026-02-01"),
        }
        .into(),
        RepRenamed {
            name: parse("Ada King"),
        }
        .into(),
        RepDeparted {
            on: date("2026-06-30"),
            reason: text("Moved away."),
        }
        .into(),
        ExpectationsAcknowledged {
            standard_id: id(3),
            standard_version: 2,
            on: date("2026-01-06"),
        }
        .into(),
        FeedbackGiven {
            feedback_id: id(100),
            leader_id: id(20),
            competency_id: id(2),
            kind: FeedbackKind::Constructive,
            note: text("Let the buyer finish."),
            visibility: Visibility::Private,
            given_on: date("2026-02-10"),
        }
        .into(),
        FeedbackAcknowledged {
            feedback_id: id(100),
            on: date("2026-02-11"),
        }
        .into(),
        SkillAssessed {
            assessment_id: id(200),
            leader_id: id(20),
            competency_id: id(2),
            level: parse("4"),
            evidence: text("Consistent."),
            assessed_on: date("2026-02-11"),
        }
        .into(),
        CoachingSessionHeld {
            session_id: id(300),
            leader_id: id(20),
            held_on: date("2026-02-12"),
            duration_minutes: 45,
            focus: vec![id(2)],
            notes: text("Role-played objections."),
            visibility: Visibility::Shared,
            action_items: vec![
                ActionItem {
                    action_item_id: id(301),
                    description: text("Review two calls."),
                    owner: Owner::Rep,
                    due_on: date("2026-02-19"),
                },
                ActionItem {
                    action_item_id: id(302),
                    description: text("Share the objection guide."),
                    owner: Owner::Leader(id(20)),
                    due_on: date("2026-02-14"),
                },
            ],
        }
        .into(),
        ActionItemCompleted {
            action_item_id: id(301),
            on: date("2026-02-18"),
        }
        .into(),
        ActionItemDropped {
            action_item_id: id(302),
            on: date("2026-02-18"),
            reason: text("Guide retired."),
        }
        .into(),
        TrainingCompleted {
            training_id: id(400),
            title: parse("MEDDIC"),
            competency_id: None,
            completed_on: date("2026-02-13"),
        }
        .into(),
        PerformanceMeasured {
            measurement_id: id(500),
            metric: parse("calls_made"),
            period: parse("2026-W10"),
            value: 42.5.try_into().expect("value"),
            source: MeasurementSource::CrmImport,
        }
        .into(),
        SupportRequested {
            request_id: id(600),
            category: SupportCategory::Tools,
            description: text("Dialer drops calls."),
            raised_on: date("2026-02-15"),
        }
        .into(),
        SupportAcknowledged {
            request_id: id(600),
            leader_id: id(20),
            on: date("2026-02-16"),
        }
        .into(),
        SupportResolved {
            request_id: id(600),
            leader_id: id(20),
            resolution: text("New headset."),
            on: date("2026-02-17"),
        }
        .into(),
        ImprovementPlanStarted {
            plan_id: id(700),
            leader_id: id(20),
            targets: vec![
                PlanTarget {
                    description: text("Ten calls a week."),
                    standard_id: Some(id(3)),
                },
                PlanTarget {
                    description: text("Update CRM daily."),
                    standard_id: None,
                },
            ],
            started_on: date("2026-03-02"),
            review_on: date("2026-04-13"),
        }
        .into(),
        PlanCheckpointRecorded {
            plan_id: id(700),
            note: text("On track."),
            on: date("2026-03-09"),
        }
        .into(),
        ImprovementPlanClosed {
            plan_id: id(700),
            outcome: PlanOutcome::NotMet,
            note: text("Missed."),
            on: date("2026-04-13"),
        }
        .into(),
        FactCorrected {
            fact_id: Uuid::from_u128(200),
            reason: text("Wrong rep."),
            correction: Correction::SkillLevel {
                level: parse("2"),
                evidence: text("Re-scored."),
            },
        }
        .into(),
        FactCorrected {
            fact_id: Uuid::from_u128(500),
            reason: text("re-imported"),
            correction: Correction::MeasuredValue {
                value: 40.0.try_into().expect("value"),
            },
        }
        .into(),
        FactCorrected {
            fact_id: Uuid::from_u128(100),
            reason: text("Duplicate."),
            correction: Correction::Retracted,
        }
        .into(),
        ReviewHeld {
            review_id: id(800),
            period_from: date("2026-01-01"),
            period_to: date("2026-03-31"),
            packet_sha256: "0f".repeat(32).as_str().try_into().expect("digest"),
            on: date("2026-04-02"),
        }
        .into(),
        PersonalDataErased {
            reason: text("Asked to be forgotten under GDPR article 17"),
            on: date("2026-05-01"),
        }
        .into(),
        LeaderErased {
            leader_id: id(9),
            reason: text("Left the company and asked to be forgotten"),
            on: date("2026-05-02"),
        }
        .into(),
        crate::alert::raised(
            "standard_missed/1/2",
            AlertDetails::StandardMissed {
                standard_id: id(5),
                periods: vec![parse("2026-W05"), parse("2026-W06")],
            },
        )
        .into(),
    ]
}

/// Exhaustive on purpose: a new variant makes this fail to compile until it is
/// named here, which is the reminder to add a sample to [`one_of_each`].
fn variant_name(event: &Event) -> &'static str {
    match event {
        Event::Team(e) => match e {
            TeamEvent::Formed(_) => "TeamFormed",
            TeamEvent::LeaderAssigned(_) => "LeaderAssigned",
            TeamEvent::Renamed(_) => "TeamRenamed",
        },
        Event::Competency(e) => match e {
            CompetencyEvent::Defined(_) => "CompetencyDefined",
            CompetencyEvent::Revised(_) => "CompetencyRevised",
            CompetencyEvent::Retired(_) => "CompetencyRetired",
        },
        Event::Standard(e) => match e {
            StandardEvent::Set(_) => "StandardSet",
            StandardEvent::Revised(_) => "StandardRevised",
            StandardEvent::Retired(_) => "StandardRetired",
        },
        Event::Rep(e) => match e {
            RepEvent::Joined(_) => "RepJoined",
            RepEvent::MovedTeam(_) => "RepMovedTeam",
            RepEvent::RoleChanged(_) => "RepRoleChanged",
            RepEvent::Departed(_) => "RepDeparted",
            RepEvent::Renamed(_) => "RepRenamed",
            RepEvent::ExpectationsAcknowledged(_) => "ExpectationsAcknowledged",
            RepEvent::FeedbackGiven(_) => "FeedbackGiven",
            RepEvent::FeedbackAcknowledged(_) => "FeedbackAcknowledged",
            RepEvent::SkillAssessed(_) => "SkillAssessed",
            RepEvent::CoachingSessionHeld(_) => "CoachingSessionHeld",
            RepEvent::ActionItemCompleted(_) => "ActionItemCompleted",
            RepEvent::ActionItemDropped(_) => "ActionItemDropped",
            RepEvent::TrainingCompleted(_) => "TrainingCompleted",
            RepEvent::PerformanceMeasured(_) => "PerformanceMeasured",
            RepEvent::SupportRequested(_) => "SupportRequested",
            RepEvent::SupportAcknowledged(_) => "SupportAcknowledged",
            RepEvent::SupportResolved(_) => "SupportResolved",
            RepEvent::ImprovementPlanStarted(_) => "ImprovementPlanStarted",
            RepEvent::PlanCheckpointRecorded(_) => "PlanCheckpointRecorded",
            RepEvent::ImprovementPlanClosed(_) => "ImprovementPlanClosed",
            RepEvent::FactCorrected(_) => "FactCorrected",
            RepEvent::ReviewHeld(_) => "ReviewHeld",
            RepEvent::PersonalDataErased(_) => "PersonalDataErased",
        },
        Event::Alert(e) => match e {
            AlertEvent::Raised(_) => "AlertRaised",
        },
        Event::Leader(e) => match e {
            LeaderEvent::Erased(_) => "LeaderErased",
        },
    }
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<&str> = one_of_each().iter().map(variant_name).collect();
    let catalogue: BTreeSet<&str> = Event::types().map(|(name, _)| name).collect();
    assert_eq!(sampled, catalogue);
}

#[test]
fn event_type_is_the_stable_name_of_the_variant() {
    for event in one_of_each() {
        assert_eq!(event.event_type(), variant_name(&event));
    }
}

#[test]
fn every_event_round_trips_through_its_stored_form() {
    for event in one_of_each() {
        let decoded = Event::from_stored(
            event.event_type(),
            event.schema_version(),
            event.to_payload(),
        );
        assert_eq!(decoded, Ok(event.clone()), "{}", event.event_type());
    }
}

#[test]
fn every_event_decodes_from_its_json_text_as_from_its_parsed_form() {
    for event in one_of_each() {
        let text = event.to_payload().to_string();
        let decoded = Event::from_stored_json(event.event_type(), event.schema_version(), &text);
        assert_eq!(decoded, Ok(event.clone()), "{}", event.event_type());
    }
}

#[test]
fn every_event_decodes_from_a_borrowed_payload_as_from_an_owned_one() {
    for event in one_of_each() {
        let payload = event.to_payload();
        let decoded = Event::from_stored_ref(event.event_type(), event.schema_version(), &payload);
        assert_eq!(decoded, Ok(event.clone()), "{}", event.event_type());
    }
    // An old schema version is upcast; a payload that is not the event is
    // refused as from an owned one.
    let v1 = v1_feedback("negative");
    let upcast = Event::from_stored_ref("FeedbackGiven", 1, &v1);
    assert_eq!(upcast, Event::from_stored("FeedbackGiven", 1, v1.clone()));
    assert!(
        matches!(
            upcast,
            Ok(Event::Rep(RepEvent::FeedbackGiven(FeedbackGiven {
                kind: FeedbackKind::Constructive,
                ..
            })))
        ),
        "{upcast:?}"
    );
    let bad = serde_json::json!({ "level": 9 });
    assert!(matches!(
        Event::from_stored_ref("SkillAssessed", 1, &bad),
        Err(DecodeError::Malformed { version: 1, .. })
    ));
}

#[test]
fn an_old_schema_version_in_json_text_is_upcast() {
    let text = v1_feedback("negative").to_string();
    assert_eq!(
        Event::from_stored_json("FeedbackGiven", 1, &text),
        Event::from_stored("FeedbackGiven", 1, v1_feedback("negative"))
    );
    assert!(matches!(
        Event::from_stored_json("FeedbackGiven", 1, &text),
        Ok(Event::Rep(RepEvent::FeedbackGiven(FeedbackGiven {
            kind: FeedbackKind::Constructive,
            ..
        })))
    ));
}

#[test]
fn json_text_that_is_not_the_event_is_a_malformed_decode_error() {
    for text in ["{\"level\": 9}", "not json", ""] {
        assert!(
            matches!(
                Event::from_stored_json("SkillAssessed", 1, text),
                Err(DecodeError::Malformed { version: 1, .. })
            ),
            "{text:?}"
        );
    }
    assert_eq!(
        Event::from_stored_json("RepPromotedToCeo", 1, "{}"),
        Err(DecodeError::UnknownType {
            event_type: "RepPromotedToCeo".into()
        })
    );
}

#[test]
fn event_type_names_are_unique_pascal_case() {
    let names: Vec<&str> = Event::types().map(|(name, _)| name).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len());
    for name in names {
        assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
    }
}

#[test]
fn each_event_belongs_to_its_aggregates_category() {
    for event in one_of_each() {
        let expected = match &event {
            Event::Team(_) => "team",
            Event::Competency(_) => "competency",
            Event::Standard(_) => "standard",
            Event::Rep(_) => "rep",
            Event::Alert(_) => "alert",
            Event::Leader(_) => "leader",
        };
        assert_eq!(event.category(), expected);
    }
}

#[test]
fn feedback_given_is_at_schema_version_2_and_everything_else_at_1() {
    for (name, version) in Event::types() {
        assert_eq!(
            version,
            if name == "FeedbackGiven" { 2 } else { 1 },
            "{name}"
        );
    }
}

#[test]
fn the_payload_holds_only_the_events_own_fields_in_snake_case() {
    let event: Event = FeedbackGiven {
        feedback_id: id(100),
        leader_id: id(20),
        competency_id: id(2),
        kind: FeedbackKind::Praise,
        note: text("Nice close."),
        visibility: Visibility::Shared,
        given_on: date("2026-02-10"),
    }
    .into();
    assert_eq!(
        event.to_payload(),
        json!({
            "feedback_id": Uuid::from_u128(100),
            "leader_id": Uuid::from_u128(20),
            "competency_id": Uuid::from_u128(2),
            "kind": "praise",
            "note": "Nice close.",
            "visibility": "shared",
            "given_on": "2026-02-10",
        })
    );
}

#[test]
fn owners_and_corrections_serialize_with_a_kind_tag() {
    assert_eq!(
        serde_json::to_value(Owner::Rep).ok(),
        Some(json!({"kind": "rep"}))
    );
    assert_eq!(
        serde_json::to_value(Owner::Leader(id(20))).ok(),
        Some(json!({"kind": "leader", "leader_id": Uuid::from_u128(20)}))
    );
    assert_eq!(
        serde_json::to_value(Correction::Retracted).ok(),
        Some(json!({"kind": "retracted"}))
    );
    let value = Correction::MeasuredValue {
        value: 3.0.try_into().expect("value"),
    };
    assert_eq!(
        serde_json::to_value(value).ok(),
        Some(json!({"kind": "measured_value", "value": 3.0}))
    );
}

fn v1_feedback(sentiment: &str) -> serde_json::Value {
    json!({
        "feedback_id": Uuid::from_u128(100),
        "leader_id": Uuid::from_u128(20),
        "competency_id": Uuid::from_u128(2),
        "sentiment": sentiment,
        "text": "Strong opener.",
        "given_on": "2026-02-10",
    })
}

#[test]
fn feedback_given_v1_is_upcast_to_the_current_shape_and_shared() {
    let expected: Event = FeedbackGiven {
        feedback_id: id(100),
        leader_id: id(20),
        competency_id: id(2),
        kind: FeedbackKind::Praise,
        note: text("Strong opener."),
        visibility: Visibility::Shared,
        given_on: date("2026-02-10"),
    }
    .into();
    assert_eq!(
        Event::from_stored("FeedbackGiven", 1, v1_feedback("positive")),
        Ok(expected)
    );
}

#[test]
fn feedback_given_v1_negative_sentiment_becomes_constructive() {
    let decoded = Event::from_stored("FeedbackGiven", 1, v1_feedback("negative"));
    assert!(matches!(
        decoded,
        Ok(Event::Rep(RepEvent::FeedbackGiven(FeedbackGiven {
            kind: FeedbackKind::Constructive,
            ..
        })))
    ));
}

#[test]
fn feedback_given_v1_with_an_unknown_sentiment_is_malformed() {
    assert_eq!(
        Event::from_stored("FeedbackGiven", 1, v1_feedback("meh")),
        Err(DecodeError::Malformed {
            event_type: "FeedbackGiven".into(),
            version: 1,
            reason: "`sentiment` must be \"positive\" or \"negative\"".into(),
        })
    );
}

#[test]
fn an_unknown_event_type_is_a_decode_error() {
    assert_eq!(
        Event::from_stored("RepPromotedToCeo", 1, json!({})),
        Err(DecodeError::UnknownType {
            event_type: "RepPromotedToCeo".into()
        })
    );
}

#[test]
fn a_schema_version_newer_than_known_is_a_decode_error() {
    let error = Event::from_stored("FeedbackGiven", 3, json!({})).unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnsupportedVersion {
            event_type: "FeedbackGiven".into(),
            version: 3,
            latest: 2
        }
    );
    assert_eq!(
        error.to_string(),
        "FeedbackGiven schema version 3 is not supported; this build reads versions 1 to 2 (is it older than the data?)"
    );
}

#[test]
fn schema_version_zero_is_a_decode_error() {
    assert_eq!(
        Event::from_stored("TeamFormed", 0, json!({})),
        Err(DecodeError::UnsupportedVersion {
            event_type: "TeamFormed".into(),
            version: 0,
            latest: 1
        })
    );
}

#[test]
fn a_payload_with_an_invalid_value_is_a_decode_error() {
    let mut payload = one_of_each()
        .into_iter()
        .find(|e| e.event_type() == "SkillAssessed")
        .expect("a SkillAssessed sample")
        .to_payload();
    payload["level"] = json!(9);
    assert!(matches!(
        Event::from_stored("SkillAssessed", 1, payload),
        Err(DecodeError::Malformed { version: 1, .. })
    ));
}

/// Every string of a payload that `personal::visit` leaves alone, as
/// `(event type, path)`, when it reads as words (a space or a capital letter
/// outside a period such as `2026-W05`).
fn prose_left_alone(event: &Event) -> BTreeSet<(String, String)> {
    fn walk(
        value: &serde_json::Value,
        path: String,
        event_type: &str,
        out: &mut BTreeSet<(String, String)>,
    ) {
        match value {
            serde_json::Value::String(s)
                if (s.contains(' ') || s.chars().any(|c| c.is_ascii_uppercase()))
                    && s.parse::<trellis_domain::Period>().is_err() =>
            {
                out.insert((event_type.to_owned(), path));
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, format!("{path}[]"), event_type, out);
                }
            }
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    walk(inner, format!("{path}.{key}"), event_type, out);
                }
            }
            _ => {}
        }
    }
    let mut payload = event.to_payload();
    trellis_domain::personal::visit(event.event_type(), &mut payload, &mut |_, v| {
        *v = json!("visited");
    });
    let mut out = BTreeSet::new();
    walk(&payload, String::new(), event.event_type(), &mut out);
    out
}

/// Adding a free-text field to an event without saying whether it is
/// personal data fails here: it must be encrypted with its person's key
/// (`personal::visit`) or listed below as about the organisation, not a person.
#[test]
fn every_free_text_is_either_personal_data_or_known_to_be_about_the_organisation() {
    let left: BTreeSet<(String, String)> =
        one_of_each().iter().flat_map(prose_left_alone).collect();
    let organisational: BTreeSet<(String, String)> = [
        ("CompetencyDefined", ".name"),
        ("CompetencyDefined", ".description"),
        ("CompetencyDefined", ".rubric[]"),
        ("CompetencyRevised", ".name"),
        ("CompetencyRevised", ".description"),
        ("CompetencyRevised", ".rubric[]"),
        ("CompetencyRetired", ".reason"),
        ("StandardSet", ".name"),
        ("StandardSet", ".roles[]"),
        ("StandardRevised", ".roles[]"),
        ("StandardRetired", ".reason"),
        ("TeamFormed", ".name"),
        ("TeamRenamed", ".name"),
        ("RepJoined", ".role"),
        ("RepRoleChanged", ".from"),
        ("RepRoleChanged", ".to"),
        ("TrainingCompleted", ".title"),
        ("PersonalDataErased", ".reason"),
        ("LeaderErased", ".reason"),
    ]
    .into_iter()
    .map(|(t, p)| (t.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(
        left, organisational,
        "free text neither encrypted nor known to be organisational"
    );
}
