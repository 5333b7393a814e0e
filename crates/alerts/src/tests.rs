//! The rules over read models folded in memory from the scripted scenario.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use trellis_domain::alert::{AlertDetails, Recipient};
use trellis_domain::{AlertKind, Event, RepId};
use trellis_projections::growth::derive::{GrowthTimeline, RepProfile};
use trellis_projections::growth::{Growth, GrowthSettings, kinds};
use trellis_projections::projection::{Envelope, Projection};
use uuid::Uuid;

use crate::rules::{self, Occurrence, Thresholds};
use crate::testing::{self, REP_A, REP_B, REP_C, REP_D, REP_E, date, leader, rep, today};

/// Every rep's profile and timeline, folded from the scenario (plus `extra`).
fn read_models(extra: Vec<(String, Event)>) -> BTreeMap<RepId, (RepProfile, GrowthTimeline)> {
    let mut growth = Growth::new(GrowthSettings::default());
    let mut n = 0u128;
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let events = testing::streams()
        .into_iter()
        .flat_map(|(stream, events)| events.into_iter().map(move |e| (stream.clone(), e)))
        .chain(extra);
    for (stream, event) in events {
        n += 1;
        let version = versions.entry(stream.clone()).or_default();
        *version += 1;
        growth.apply(&Envelope {
            event,
            event_id: Uuid::from_u128(n),
            stream_id: stream,
            stream_version: *version,
            actor: "test".into(),
            occurred_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            recorded_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        });
    }
    let mut profiles: BTreeMap<RepId, RepProfile> = BTreeMap::new();
    let mut timelines: BTreeMap<RepId, GrowthTimeline> = BTreeMap::new();
    for change in growth.take_changes() {
        let Some(doc) = change.doc else { continue };
        match change.kind {
            kinds::REP_PROFILE => {
                let p: RepProfile = serde_json::from_str(&doc).unwrap();
                profiles.insert(p.rep_id, p);
            }
            kinds::GROWTH_TIMELINE => {
                let t: GrowthTimeline = serde_json::from_str(&doc).unwrap();
                timelines.insert(t.rep_id, t);
            }
            _ => {}
        }
    }
    profiles
        .into_iter()
        .map(|(id, p)| {
            let t = timelines.remove(&id).expect("a timeline");
            (id, (p, t))
        })
        .collect()
}

fn all(
    models: &BTreeMap<RepId, (RepProfile, GrowthTimeline)>,
    on: NaiveDate,
    thresholds: &Thresholds,
) -> Vec<Occurrence> {
    models
        .values()
        .flat_map(|(p, t)| rules::evaluate(p, t, &[leader()], on, thresholds))
        .collect()
}

fn kinds_of(occurrences: &[Occurrence]) -> Vec<(RepId, AlertKind)> {
    let mut k: Vec<_> = occurrences.iter().map(|o| (o.rep_id, o.kind())).collect();
    k.sort();
    k
}

#[test]
fn each_situation_of_the_scenario_raises_its_alert_and_nothing_else() {
    let models = read_models(vec![]);
    let found = all(&models, today(), &Thresholds::default());
    assert_eq!(kinds_of(&found), testing::expected());
}

#[test]
fn occurrences_name_the_facts_and_the_person_who_must_act() {
    let models = read_models(vec![]);
    let found = all(&models, today(), &Thresholds::default());
    let by_kind = |k: AlertKind| found.iter().find(|o| o.kind() == k).unwrap();

    let missed = by_kind(AlertKind::StandardMissed);
    assert_eq!(
        missed.details,
        AlertDetails::StandardMissed {
            standard_id: testing::standard(),
            periods: vec!["2026-01".parse().unwrap(), "2026-02".parse().unwrap()],
        }
    );
    assert_eq!(missed.recipients, vec![Recipient::Leader(leader())]);
    assert_eq!(
        missed.key.as_str(),
        format!(
            "standard_missed/{}/{}/2026-01",
            rep(REP_A),
            testing::standard()
        )
    );

    assert_eq!(
        by_kind(AlertKind::NotCoached).details,
        AlertDetails::NotCoached {
            last_coached_on: Some(date("2026-02-28")),
            days: 20
        }
    );
    let overdue = by_kind(AlertKind::ActionItemOverdue);
    assert_eq!(overdue.recipients, vec![Recipient::Rep(rep(REP_C))]);
    assert!(matches!(
        overdue.details,
        AlertDetails::ActionItemOverdue {
            days_overdue: 2,
            ..
        }
    ));
    assert!(matches!(
        by_kind(AlertKind::SupportRequestUnresolved).details,
        AlertDetails::SupportRequestUnresolved { days_open: 8, .. }
    ));
    let gate = by_kind(AlertKind::QualityGatePassed);
    assert_eq!(
        gate.recipients,
        vec![Recipient::Leader(leader()), Recipient::Rep(rep(REP_D))]
    );
    assert_eq!(
        gate.details,
        AlertDetails::QualityGatePassed {
            passed_on: date("2026-02-28")
        }
    );
    assert!(matches!(
        by_kind(AlertKind::PlanReviewNear).details,
        AlertDetails::PlanReviewNear { days_until: 5, .. }
    ));
}

#[test]
fn the_same_situation_a_day_later_has_the_same_keys() {
    let models = read_models(vec![]);
    let keys = |on| {
        let mut k: Vec<String> = all(&models, on, &Thresholds::default())
            .iter()
            .map(|o| o.key.to_string())
            .collect();
        k.sort();
        k
    };
    let first = keys(today());
    assert_eq!(
        first.len(),
        testing::expected().len(),
        "every alert of the scenario"
    );
    assert_eq!(first, keys(today() + Days::new(1)));
}

#[test]
fn thresholds_move_when_rules_fire() {
    let models = read_models(vec![]);
    let strict = Thresholds {
        missed_periods: 3,
        not_coached_days: 21,
        support_sla_days: 8,
        plan_review_days: 4,
        quality_gate_recent_days: 19,
    };
    let found = all(&models, today(), &strict);
    assert_eq!(
        kinds_of(&found),
        vec![(rep(REP_C), AlertKind::ActionItemOverdue)]
    );
    let loose = Thresholds {
        not_coached_days: 3,
        ..Thresholds::default()
    };
    let found = all(&models, today(), &loose);
    // Now every rep but E (coached two days ago) is "not coached".
    let not_coached: Vec<RepId> = found
        .iter()
        .filter(|o| o.kind() == AlertKind::NotCoached)
        .map(|o| o.rep_id)
        .collect();
    assert_eq!(
        not_coached,
        vec![rep(REP_A), rep(REP_B), rep(REP_C), rep(REP_D)]
    );
}

#[test]
fn a_run_of_misses_that_ended_raises_nothing_and_a_run_that_goes_on_keeps_its_key() {
    let met_in_march = |value: f64| {
        vec![(
            rep(REP_A).stream_id(),
            trellis_domain::rep::PerformanceMeasured {
                measurement_id: testing::id(REP_A + 50),
                metric: "discovery_score".try_into().unwrap(),
                period: "2026-03".parse().unwrap(),
                value: value.try_into().unwrap(),
                source: trellis_domain::rep::MeasurementSource::Manual,
            }
            .into(),
        )]
    };
    let models = read_models(met_in_march(95.0));
    let found = all(&models, today(), &Thresholds::default());
    assert!(found.iter().all(|o| o.kind() != AlertKind::StandardMissed));

    // Missed in March too: the same run goes on, under the same key.
    let models = read_models(met_in_march(10.0));
    let found = all(&models, today(), &Thresholds::default());
    let missed: Vec<&Occurrence> = found
        .iter()
        .filter(|o| o.kind() == AlertKind::StandardMissed)
        .collect();
    assert_eq!(missed.len(), 1);
    assert!(missed[0].key.as_str().ends_with("/2026-01"));
}

#[test]
fn a_team_without_leaders_or_a_departed_rep_raises_nothing_for_leaders() {
    let models = read_models(vec![]);
    let found: Vec<Occurrence> = models
        .values()
        .flat_map(|(p, t)| rules::evaluate(p, t, &[], today(), &Thresholds::default()))
        .collect();
    // Only what the rep owns, or is told as well (plan review goes to the plan's leader).
    assert_eq!(
        kinds_of(&found),
        vec![
            (rep(REP_C), AlertKind::ActionItemOverdue),
            (rep(REP_D), AlertKind::QualityGatePassed),
            (rep(REP_E), AlertKind::PlanReviewNear),
        ]
    );
    let departed = read_models(vec![(
        rep(REP_B).stream_id(),
        trellis_domain::rep::RepDeparted {
            on: date("2026-03-05"),
            reason: "Moved on.".try_into().unwrap(),
        }
        .into(),
    )]);
    let (p, t) = &departed[&rep(REP_B)];
    assert!(rules::evaluate(p, t, &[leader()], today(), &Thresholds::default()).is_empty());
}

#[test]
fn a_plan_review_in_the_past_or_far_ahead_is_not_near() {
    let models = read_models(vec![]);
    let (p, _) = &models[&rep(REP_E)];
    let t = Thresholds::default();
    assert!(rules::plan_review_near(p, &[leader()], date("2026-03-17"), &t).is_empty());
    assert_eq!(
        rules::plan_review_near(p, &[leader()], date("2026-03-18"), &t).len(),
        1
    );
    assert_eq!(
        rules::plan_review_near(p, &[leader()], date("2026-03-25"), &t).len(),
        1
    );
    assert!(rules::plan_review_near(p, &[leader()], date("2026-03-26"), &t).is_empty());
}

#[test]
fn the_commands_are_accepted_by_the_domain() {
    use trellis_domain::{Aggregate, AlertAggregate, AlertState};
    let models = read_models(vec![]);
    let occurrences = all(&models, today(), &Thresholds::default());
    assert_eq!(
        occurrences.len(),
        testing::expected().len(),
        "every alert of the scenario"
    );
    for o in occurrences {
        let events = AlertAggregate::decide(&AlertState::NotRaised, o.command(today())).unwrap();
        assert_eq!(events.len(), 1);
    }
}
