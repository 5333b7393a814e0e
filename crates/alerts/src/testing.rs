//! A scripted scenario for tests (this crate's and the workspace's): one team
//! with one leader, one monthly quality standard, and five reps, each in one
//! situation that raises exactly one kind of alert on [`today`] (rep C two:
//! an overdue action item and an unresolved support request).

use chrono::NaiveDate;
use trellis_domain::rep::{
    ActionItem, CoachingSessionHeld, ImprovementPlanStarted, MeasurementSource,
    PerformanceMeasured, PlanTarget, RepJoined, SupportCategory, SupportRequested, Visibility,
};
use trellis_domain::standard::StandardSet;
use trellis_domain::team::{LeaderAssigned, TeamFormed};
use trellis_domain::{
    AlertKind, Direction, Event, LeaderId, PeriodKind, RepId, StandardId, StandardKind, TeamId,
};
use uuid::Uuid;

pub fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn date(iso: &str) -> NaiveDate {
    iso.parse().expect("a valid date")
}

fn text<T>(s: &str) -> T
where
    T: for<'a> TryFrom<&'a str>,
    for<'a> <T as TryFrom<&'a str>>::Error: std::fmt::Debug,
{
    T::try_from(s).expect("valid text")
}

/// The day the scenario is evaluated on.
pub fn today() -> NaiveDate {
    date("2026-03-20")
}

pub fn team() -> TeamId {
    id(1)
}

pub fn leader() -> LeaderId {
    id(2)
}

pub fn standard() -> StandardId {
    id(10)
}

/// Rep A missed the standard in January and February.
pub const REP_A: u128 = 100;
/// Rep B was last coached 20 days ago.
pub const REP_B: u128 = 200;
/// Rep C has an action item due two days ago and a support request open 8 days.
pub const REP_C: u128 = 300;
/// Rep D met the standard three months in a row: the quality gate.
pub const REP_D: u128 = 400;
/// Rep E's improvement plan is reviewed in 5 days.
pub const REP_E: u128 = 500;

pub fn rep(n: u128) -> RepId {
    id(n)
}

/// The alerts the scenario raises on [`today`]: (rep, kind).
pub fn expected() -> Vec<(RepId, AlertKind)> {
    let mut expected = vec![
        (rep(REP_A), AlertKind::StandardMissed),
        (rep(REP_B), AlertKind::NotCoached),
        (rep(REP_C), AlertKind::ActionItemOverdue),
        (rep(REP_C), AlertKind::SupportRequestUnresolved),
        (rep(REP_D), AlertKind::QualityGatePassed),
        (rep(REP_E), AlertKind::PlanReviewNear),
    ];
    expected.sort();
    expected
}

fn coached(rep_n: u128, n: u128, on: &str, items: Vec<ActionItem>) -> Event {
    CoachingSessionHeld {
        session_id: id(rep_n + n),
        leader_id: leader(),
        held_on: date(on),
        duration_minutes: 30,
        focus: vec![],
        notes: text("Pipeline review."),
        visibility: Visibility::Shared,
        action_items: items,
    }
    .into()
}

fn measured(rep_n: u128, n: u128, month: &str, value: f64) -> Event {
    PerformanceMeasured {
        measurement_id: id(rep_n + n),
        metric: text("discovery_score"),
        period: month.parse().expect("a period"),
        value: value.try_into().expect("a value"),
        source: MeasurementSource::Manual,
    }
    .into()
}

fn joined(rep_n: u128, name: &str) -> Event {
    RepJoined {
        rep_id: rep(rep_n),
        name: text(name),
        role: text("AE"),
        team_id: team(),
        start_date: date("2025-12-01"),
    }
    .into()
}

/// The scenario as streams, each with its events in order.
pub fn streams() -> Vec<(String, Vec<Event>)> {
    let a = REP_A;
    let b = REP_B;
    let c = REP_C;
    let d = REP_D;
    let e = REP_E;
    vec![
        (
            team().stream_id(),
            vec![
                TeamFormed {
                    team_id: team(),
                    name: text("Enterprise East"),
                }
                .into(),
                LeaderAssigned {
                    team_id: team(),
                    leader_id: leader(),
                    leader_name: text("Ada Lovelace"),
                }
                .into(),
            ],
        ),
        (
            format!("standard-{}", standard()),
            vec![
                StandardSet {
                    standard_id: standard(),
                    name: text("Discovery quality"),
                    metric: text("discovery_score"),
                    kind: StandardKind::Quality,
                    direction: Direction::AtLeast,
                    unit: text("points"),
                    period: PeriodKind::Month,
                    target: 80.0.try_into().expect("a target"),
                    roles: vec![text("AE")],
                    effective_from: date("2025-12-01"),
                    ramp: vec![],
                    version: 1,
                }
                .into(),
            ],
        ),
        (
            rep(a).stream_id(),
            vec![
                joined(a, "Ann Able"),
                measured(a, 1, "2026-01", 50.0),
                measured(a, 2, "2026-02", 60.0),
                coached(a, 3, "2026-03-15", vec![]),
            ],
        ),
        (
            rep(b).stream_id(),
            vec![joined(b, "Bo Baker"), coached(b, 1, "2026-02-28", vec![])],
        ),
        (
            rep(c).stream_id(),
            vec![
                joined(c, "Cy Carter"),
                coached(
                    c,
                    1,
                    "2026-03-16",
                    vec![ActionItem {
                        action_item_id: id(c + 2),
                        description: text("Send the proposal."),
                        owner: trellis_domain::rep::Owner::Rep,
                        due_on: date("2026-03-18"),
                    }],
                ),
                SupportRequested {
                    request_id: id(c + 3),
                    category: SupportCategory::Tools,
                    description: text("The dialer drops calls."),
                    raised_on: date("2026-03-12"),
                }
                .into(),
            ],
        ),
        (
            rep(d).stream_id(),
            vec![
                joined(d, "Di Dorsey"),
                measured(d, 1, "2025-12", 85.0),
                measured(d, 2, "2026-01", 90.0),
                measured(d, 3, "2026-02", 81.0),
                coached(d, 4, "2026-03-10", vec![]),
            ],
        ),
        (
            rep(e).stream_id(),
            vec![
                joined(e, "Ed Evans"),
                coached(e, 1, "2026-03-18", vec![]),
                ImprovementPlanStarted {
                    plan_id: id(e + 2),
                    leader_id: leader(),
                    targets: vec![PlanTarget {
                        description: text("Discovery score of 80."),
                        standard_id: Some(standard()),
                    }],
                    started_on: date("2026-03-01"),
                    review_on: date("2026-03-25"),
                }
                .into(),
            ],
        ),
    ]
}
