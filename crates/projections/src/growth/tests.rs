//! The fold, pure: events in, documents out.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;
use trellis_domain::rep::{
    Correction, FactCorrected, MeasurementSource, PerformanceMeasured, RepEvent, RepJoined,
    SkillAssessed,
};
use trellis_domain::standard::{StandardRevised, StandardSet};
use trellis_domain::{Direction, Event, PeriodKind, RepId, StandardKind};
use uuid::Uuid;

use super::*;
use crate::query;

fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(n))
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const REP: u128 = 7;
const STANDARD: u128 = 8;

fn envelope(stream: String, version: u64, event: impl Into<Event>) -> Envelope {
    Envelope {
        event: event.into(),
        event_id: Uuid::from_u128(u128::from(version) << 64),
        stream_id: stream,
        stream_version: version,
        actor: "test".into(),
        occurred_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        recorded_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    }
}

fn rep(version: u64, event: impl Into<RepEvent>) -> Envelope {
    envelope(
        RepId::from_uuid(Uuid::from_u128(REP)).stream_id(),
        version,
        Event::Rep(event.into()),
    )
}

fn standard_set(target: f64) -> Envelope {
    envelope(
        format!("standard-{}", Uuid::from_u128(STANDARD)),
        1,
        StandardSet {
            standard_id: id(STANDARD),
            name: "Discovery quality".try_into().unwrap(),
            metric: "discovery_score".try_into().unwrap(),
            kind: StandardKind::Quality,
            direction: Direction::AtLeast,
            unit: "points".try_into().unwrap(),
            period: PeriodKind::Month,
            target: target.try_into().unwrap(),
            roles: vec!["AE".try_into().unwrap()],
            effective_from: date("2026-01-01"),
            ramp: vec![],
            version: 1,
        },
    )
}

fn measured(version: u64, measurement: u128, month: &str, value: f64) -> Envelope {
    rep(
        version,
        PerformanceMeasured {
            measurement_id: id(measurement),
            metric: "discovery_score".try_into().unwrap(),
            period: month.parse().unwrap(),
            value: value.try_into().unwrap(),
            source: MeasurementSource::Manual,
        },
    )
}

/// A short history: a standard, a rep, three months of measurements, an
/// assessment corrected, a measurement retracted, a revision.
fn history() -> Vec<Envelope> {
    vec![
        standard_set(80.0),
        rep(
            1,
            RepJoined {
                rep_id: id(REP),
                name: "Ana Lopez".try_into().unwrap(),
                role: "AE".try_into().unwrap(),
                team_id: id(1),
                start_date: date("2025-12-01"),
            },
        ),
        measured(2, 100, "2026-01", 84.0),
        measured(3, 101, "2026-02", 88.0),
        measured(4, 102, "2026-03", 40.0),
        rep(
            5,
            SkillAssessed {
                assessment_id: id(200),
                leader_id: id(2),
                competency_id: id(3),
                level: 2u8.try_into().unwrap(),
                evidence: "first call".try_into().unwrap(),
                assessed_on: date("2026-01-10"),
            },
        ),
        rep(
            6,
            FactCorrected {
                fact_id: Uuid::from_u128(200),
                reason: "wrong level".try_into().unwrap(),
                correction: Correction::SkillLevel {
                    level: 4u8.try_into().unwrap(),
                    evidence: "re-rated".try_into().unwrap(),
                },
            },
        ),
        rep(
            7,
            FactCorrected {
                fact_id: Uuid::from_u128(102),
                reason: "wrong rep".try_into().unwrap(),
                correction: Correction::Retracted,
            },
        ),
        measured(8, 103, "2026-03", 81.0),
        envelope(
            format!("standard-{}", Uuid::from_u128(STANDARD)),
            2,
            StandardRevised {
                standard_id: id(STANDARD),
                version: 2,
                target: 85.0.try_into().unwrap(),
                effective_from: date("2026-03-01"),
                roles: None,
                ramp: None,
            },
        ),
    ]
}

/// Applies `events` in batches of `size`, returning the last document written per key.
fn fold_in_batches(
    projection: &mut Growth,
    events: &[Envelope],
    size: usize,
) -> BTreeMap<(String, String), Value> {
    let mut docs = BTreeMap::new();
    for batch in events.chunks(size) {
        for event in batch {
            projection.apply(event);
        }
        for change in projection.take_changes() {
            let doc = serde_json::from_str(&change.doc.unwrap()).unwrap();
            docs.insert((change.kind.to_owned(), change.key), doc);
        }
    }
    docs
}

fn settings(n: u32) -> GrowthSettings {
    GrowthSettings {
        quality_gate_periods: n,
    }
}

#[test]
fn the_documents_do_not_depend_on_how_the_log_is_cut_into_batches() {
    let events = history();
    let one_by_one = fold_in_batches(&mut Growth::new(settings(2)), &events, 1);
    let all_at_once = fold_in_batches(&mut Growth::new(settings(2)), &events, events.len());
    let threes = fold_in_batches(&mut Growth::new(settings(2)), &events, 3);
    assert_eq!(one_by_one, all_at_once);
    assert_eq!(one_by_one, threes);
}

#[test]
fn a_restored_state_folds_on_to_the_same_documents() {
    let events = history();
    let (before, after) = events.split_at(5);
    let mut first = Growth::new(settings(2));
    let stored = fold_in_batches(&mut first, before, 2);
    let mut restored = Growth::new(settings(2));
    for ((kind, key), doc) in &stored {
        if restored.state_kinds().contains(&kind.as_str()) {
            restored.restore(kind, key, doc.clone()).unwrap();
        }
    }
    let mut continuous = Growth::new(settings(2));
    let expected = fold_in_batches(&mut continuous, &events, 4);
    let mut resumed = stored;
    resumed.extend(fold_in_batches(&mut restored, after, 2));
    assert_eq!(resumed, expected);
}

#[test]
fn corrections_replace_what_they_correct_and_retractions_remove_it() {
    let mut growth = Growth::new(settings(2));
    for event in history() {
        growth.apply(&event);
    }
    let (profile, timeline) = growth.derive(id(REP)).unwrap();
    assert_eq!(profile.levels[&id(3)].level, 4, "the corrected level");
    let march = timeline.row("2026-03".parse().unwrap()).unwrap();
    let row = &march.standards[0];
    // The retracted 40 is gone; 81 is judged against version 2 (85).
    assert_eq!(
        (row.actual, row.target, row.version),
        (Some(81.0), Some(85.0), Some(2))
    );
    assert!(row.attainment.unwrap() < 1.0);
    let january = timeline.row("2026-01".parse().unwrap()).unwrap();
    assert_eq!(
        january.standards[0].target,
        Some(80.0),
        "the past keeps version 1"
    );
}

#[test]
fn the_quality_gate_needs_n_consecutive_met_periods() {
    let mut growth = Growth::new(settings(2));
    for event in &history()[..4] {
        growth.apply(event);
    }
    // 84 and 88 against 80: two met months in a row.
    let (profile, _) = growth.derive(id(REP)).unwrap();
    assert_eq!(profile.phase.phase, derive::Phase::Quantity);
    assert_eq!(
        profile.phase.quality_gate_passed_on,
        Some(date("2026-02-28"))
    );

    let mut stricter = Growth::new(settings(3));
    for event in &history()[..4] {
        stricter.apply(event);
    }
    let (profile, _) = stricter.derive(id(REP)).unwrap();
    assert_eq!(profile.phase.phase, derive::Phase::Quality);
    assert_eq!(profile.phase.standards[0].consecutive_met, 2);
}

#[test]
fn overdue_is_decided_at_query_time_from_today() {
    let mut growth = Growth::new(settings(3));
    for event in history() {
        growth.apply(&event);
    }
    let (mut profile, _) = growth.derive(id(REP)).unwrap();
    profile.open_action_items.push(derive::OpenActionItem {
        action_item_id: id(300),
        session_id: id(301),
        description: "call back".try_into().unwrap(),
        owner: trellis_domain::rep::Owner::Rep,
        due_on: date("2026-03-10"),
        visibility: trellis_domain::rep::Visibility::Shared,
    });
    let before = query::rep_profile(profile.clone(), date("2026-03-10"));
    assert_eq!(before.overdue_action_items, 0);
    let after = query::rep_profile(profile, date("2026-03-11"));
    assert_eq!(after.overdue_action_items, 1);
    assert_eq!(after.standing.standing, StandingKind::NeedsSupport);
}
