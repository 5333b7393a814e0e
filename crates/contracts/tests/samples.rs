//! At least one sample of every domain event type, with every optional part
//! both present and absent and every variant of every enum-like field.

use chrono::NaiveDate;
use trellis_domain::alert::{AlertDetails, AlertRaised, OccurrenceKey, Recipient};
use trellis_domain::competency::{CompetencyDefined, CompetencyRetired, CompetencyRevised};
use trellis_domain::leader::LeaderErased;
use trellis_domain::rep::{
    ActionItem, ActionItemCompleted, ActionItemDropped, CoachingSessionHeld, Correction,
    ExpectationsAcknowledged, FactCorrected, FeedbackAcknowledged, FeedbackGiven, FeedbackKind,
    ImprovementPlanClosed, ImprovementPlanStarted, MeasurementSource, Owner, PerformanceMeasured,
    PersonalDataErased, PlanCheckpointRecorded, PlanOutcome, PlanTarget, RepDeparted, RepJoined,
    RepMovedTeam, RepRenamed, RepRoleChanged, ReviewHeld, SkillAssessed, SupportAcknowledged,
    SupportCategory, SupportRequested, SupportResolved, TrainingCompleted, Visibility,
};
use trellis_domain::standard::{RampStep, StandardRetired, StandardRevised, StandardSet};
use trellis_domain::team::{LeaderAssigned, TeamFormed, TeamRenamed};
use trellis_domain::{
    AlertId, Direction, Event, MetricValue, PeriodKind, Rubric, SkillLevel, StandardKind, Target,
    ValueError,
};
use uuid::Uuid;

/// A deterministic id of any kind.
pub fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(
        0x0190_a5b2_7c3e_7d41_9a2b_0000_0000_0000 + n,
    ))
}

/// A checked text of any kind.
pub fn text<T>(value: &str) -> T
where
    T: for<'a> TryFrom<&'a str, Error = ValueError>,
{
    T::try_from(value).expect("sample text is valid")
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("sample date is valid")
}

fn level(n: u8) -> SkillLevel {
    SkillLevel::try_from(n).expect("sample level is valid")
}

fn rubric() -> Rubric {
    Rubric::new([
        text("Does not ask discovery questions"),
        text("Asks scripted questions"),
        text("Asks follow-up questions"),
        text("Uncovers pain and impact"),
        text("Coaches others on discovery\nwith examples"),
    ])
}

fn ramp() -> Vec<RampStep> {
    vec![
        RampStep {
            period_index: 1,
            percent_of_target: 25,
        },
        RampStep {
            period_index: 2,
            percent_of_target: 60,
        },
    ]
}

/// Samples of every event type (several for types with optional parts or variants).
pub fn samples() -> Vec<Event> {
    let mut events: Vec<Event> = vec![
        TeamFormed {
            team_id: id(1),
            name: text("Enterprise East"),
        }
        .into(),
        LeaderAssigned {
            team_id: id(1),
            leader_id: id(2),
            leader_name: text("Ada Lovelace"),
        }
        .into(),
        TeamRenamed {
            team_id: id(1),
            name: text("Enterprise North-East"),
        }
        .into(),
        CompetencyDefined {
            competency_id: id(3),
            name: text("Discovery"),
            description: text("Finding the customer's real problem."),
            rubric: rubric(),
        }
        .into(),
        CompetencyRevised {
            competency_id: id(3),
            name: text("Discovery & qualification"),
            description: text("Finding — and qualifying — the customer's real problem."),
            rubric: rubric(),
        }
        .into(),
        CompetencyRetired {
            competency_id: id(3),
            reason: text("Merged into Qualification"),
        }
        .into(),
    ];

    for (n, (kind, direction, period)) in [
        (StandardKind::Quality, Direction::AtLeast, PeriodKind::Week),
        (StandardKind::Quantity, Direction::AtMost, PeriodKind::Month),
        (
            StandardKind::Behaviour,
            Direction::AtLeast,
            PeriodKind::Quarter,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(
            StandardSet {
                standard_id: id(10 + n as u128),
                name: text("Calls per week"),
                metric: text("calls_made"),
                kind,
                direction,
                unit: text("calls"),
                period,
                target: Target::try_from(42.5).unwrap(),
                roles: vec![text("SDR"), text("AE")],
                effective_from: day(2026, 1, 5),
                ramp: if n == 0 { ramp() } else { vec![] },
                version: 1,
            }
            .into(),
        );
    }
    for (roles, ramp) in [
        (None, None),
        (Some(vec![text("AE")]), Some(ramp())),
        (Some(vec![]), Some(vec![])),
    ] {
        events.push(
            StandardRevised {
                standard_id: id(10),
                version: 2,
                target: Target::try_from(0.1).unwrap(),
                effective_from: day(2026, 2, 2),
                roles,
                ramp,
            }
            .into(),
        );
    }
    events.push(
        StandardRetired {
            standard_id: id(10),
            effective_from: day(2026, 6, 29),
            reason: text("Replaced by meetings booked"),
        }
        .into(),
    );

    let rep: Vec<Event> = vec![
        RepJoined {
            rep_id: id(20),
            name: text("Grace Hopper"),
            role: text("SDR"),
            team_id: id(1),
            start_date: day(2024, 2, 29),
        }
        .into(),
        RepMovedTeam {
            from: id(1),
            to: id(4),
            on: day(2026, 3, 2),
        }
        .into(),
        RepRoleChanged {
            from: text("SDR"),
            to: text("AE"),
            on: day(2026, 4, 1),
        }
        .into(),
        RepRenamed {
            name: text("Ada Lovelace-King"),
        }
        .into(),
        RepDeparted {
            on: day(2026, 12, 31),
            reason: text("Moved abroad"),
        }
        .into(),
        PersonalDataErased {
            reason: text("Asked to be forgotten"),
            on: day(2027, 1, 5),
        }
        .into(),
        LeaderErased {
            leader_id: id(3),
            reason: text("Left and asked to be forgotten"),
            on: day(2027, 1, 6),
        }
        .into(),
        ExpectationsAcknowledged {
            standard_id: id(10),
            standard_version: 2,
            on: day(2026, 2, 3),
        }
        .into(),
        FeedbackGiven {
            feedback_id: id(30),
            leader_id: id(2),
            competency_id: id(3),
            kind: FeedbackKind::Praise,
            note: text("Great discovery on the Acme call."),
            visibility: Visibility::Shared,
            given_on: day(2026, 1, 15),
        }
        .into(),
        FeedbackGiven {
            feedback_id: id(31),
            leader_id: id(2),
            competency_id: id(3),
            kind: FeedbackKind::Constructive,
            note: text("Let the customer finish.\nThen ask why."),
            visibility: Visibility::Private,
            given_on: day(2026, 1, 16),
        }
        .into(),
        FeedbackAcknowledged {
            feedback_id: id(30),
            on: day(2026, 1, 16),
        }
        .into(),
        SkillAssessed {
            assessment_id: id(40),
            leader_id: id(2),
            competency_id: id(3),
            level: level(4),
            evidence: text("Three calls reviewed"),
            assessed_on: day(2026, 1, 31),
        }
        .into(),
        CoachingSessionHeld {
            session_id: id(50),
            leader_id: id(2),
            held_on: day(2026, 2, 10),
            duration_minutes: 45,
            focus: vec![id(3), id(5)],
            notes: text("Worked on objection handling."),
            visibility: Visibility::Private,
            action_items: vec![
                ActionItem {
                    action_item_id: id(51),
                    description: text("Role-play pricing objections"),
                    owner: Owner::Rep,
                    due_on: day(2026, 2, 17),
                },
                ActionItem {
                    action_item_id: id(52),
                    description: text("Share the pricing battlecard"),
                    owner: Owner::Leader(id(2)),
                    due_on: day(2026, 2, 12),
                },
            ],
        }
        .into(),
        CoachingSessionHeld {
            session_id: id(53),
            leader_id: id(2),
            held_on: day(2026, 3, 10),
            duration_minutes: 0,
            focus: vec![],
            notes: text("Short check-in"),
            visibility: Visibility::Shared,
            action_items: vec![],
        }
        .into(),
        ActionItemCompleted {
            action_item_id: id(51),
            on: day(2026, 2, 16),
        }
        .into(),
        ActionItemDropped {
            action_item_id: id(52),
            on: day(2026, 2, 20),
            reason: text("Battlecard retired"),
        }
        .into(),
        TrainingCompleted {
            training_id: id(60),
            title: text("MEDDICC fundamentals"),
            competency_id: Some(id(3)),
            completed_on: day(2026, 2, 1),
        }
        .into(),
        TrainingCompleted {
            training_id: id(61),
            title: text("Security awareness"),
            competency_id: None,
            completed_on: day(2026, 2, 2),
        }
        .into(),
        PerformanceMeasured {
            measurement_id: id(70),
            metric: text("calls_made"),
            period: text("2026-W05"),
            value: MetricValue::try_from(38.25).unwrap(),
            source: MeasurementSource::Manual,
        }
        .into(),
        PerformanceMeasured {
            measurement_id: id(71),
            metric: text("pipeline_created"),
            period: text("2026-03"),
            value: MetricValue::try_from(0.0).unwrap(),
            source: MeasurementSource::CrmImport,
        }
        .into(),
        PerformanceMeasured {
            measurement_id: id(72),
            metric: text("revenue"),
            period: text("2026-Q1"),
            value: MetricValue::try_from(1.0e12 + 0.5).unwrap(),
            source: MeasurementSource::CrmImport,
        }
        .into(),
    ];
    events.extend(rep);

    for (n, category) in [
        SupportCategory::Leads,
        SupportCategory::Tools,
        SupportCategory::Training,
        SupportCategory::Process,
        SupportCategory::Other,
    ]
    .into_iter()
    .enumerate()
    {
        events.push(
            SupportRequested {
                request_id: id(80 + n as u128),
                category,
                description: text("The dialer drops calls"),
                raised_on: day(2026, 2, 3),
            }
            .into(),
        );
    }
    events.extend::<[Event; 3]>([
        SupportAcknowledged {
            request_id: id(80),
            leader_id: id(2),
            on: day(2026, 2, 4),
        }
        .into(),
        SupportResolved {
            request_id: id(80),
            leader_id: id(2),
            resolution: text("New dialer licence"),
            on: day(2026, 2, 6),
        }
        .into(),
        ImprovementPlanStarted {
            plan_id: id(90),
            leader_id: id(2),
            targets: vec![
                PlanTarget {
                    description: text("Reach the calls standard"),
                    standard_id: Some(id(10)),
                },
                PlanTarget {
                    description: text("Log every call in the CRM"),
                    standard_id: None,
                },
            ],
            started_on: day(2026, 4, 6),
            review_on: day(2026, 5, 4),
        }
        .into(),
    ]);
    events.push(
        PlanCheckpointRecorded {
            plan_id: id(90),
            note: text("Halfway: calls up 20%"),
            on: day(2026, 4, 20),
        }
        .into(),
    );
    for outcome in [PlanOutcome::Met, PlanOutcome::Extended, PlanOutcome::NotMet] {
        events.push(
            ImprovementPlanClosed {
                plan_id: id(90),
                outcome,
                note: text("Reviewed with HR"),
                on: day(2026, 5, 4),
            }
            .into(),
        );
    }
    for correction in [
        Correction::SkillLevel {
            level: level(2),
            evidence: text("Scored the wrong rep"),
        },
        Correction::MeasuredValue {
            value: MetricValue::try_from(12.0).unwrap(),
        },
        Correction::Retracted,
    ] {
        events.push(
            FactCorrected {
                fact_id: Uuid::from_u128(0xdead_beef),
                reason: text("Entered wrongly"),
                correction,
            }
            .into(),
        );
    }
    events.push(
        ReviewHeld {
            review_id: id(100),
            period_from: day(2026, 1, 1),
            period_to: day(2026, 6, 30),
            packet_sha256: text(&"ab01".repeat(16)),
            on: day(2026, 7, 3),
        }
        .into(),
    );
    events.extend(alerts());
    events
}

/// One alert of every kind, with leader and rep recipients and an optional date both ways.
fn alerts() -> Vec<Event> {
    let details = [
        AlertDetails::StandardMissed {
            standard_id: id(10),
            periods: vec![text("2026-W05"), text("2026-W06")],
        },
        AlertDetails::NotCoached {
            last_coached_on: None,
            days: 20,
        },
        AlertDetails::NotCoached {
            last_coached_on: Some(day(2026, 2, 1)),
            days: 14,
        },
        AlertDetails::ActionItemOverdue {
            action_item_id: id(60),
            due_on: day(2026, 2, 20),
            days_overdue: 3,
        },
        AlertDetails::SupportRequestUnresolved {
            request_id: id(70),
            raised_on: day(2026, 2, 10),
            days_open: 5,
        },
        AlertDetails::QualityGatePassed {
            passed_on: day(2026, 2, 28),
        },
        AlertDetails::PlanReviewNear {
            plan_id: id(80),
            review_on: day(2026, 3, 6),
            days_until: 0,
        },
    ];
    details
        .into_iter()
        .enumerate()
        .map(|(n, details)| {
            let key: OccurrenceKey = text(&format!("{}/sample-{n}", details.kind()));
            AlertRaised {
                alert_id: AlertId::for_occurrence(&key),
                occurrence_key: key,
                team_id: id(1),
                rep_id: id(4),
                recipients: if n % 2 == 0 {
                    vec![Recipient::Leader(id(2)), Recipient::Rep(id(4))]
                } else {
                    vec![Recipient::Leader(id(2))]
                },
                details,
                raised_on: day(2026, 3, 2),
            }
            .into()
        })
        .collect()
}
