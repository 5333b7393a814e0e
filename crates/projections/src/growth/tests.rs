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
use crate::projection::Route;
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
            let key = (change.kind.to_owned(), change.key);
            match change.doc {
                Some(doc) => docs.insert(key, serde_json::from_str(&doc).unwrap()),
                None => docs.remove(&key),
            };
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
            restored.restore(kind, key, &doc.to_string()).unwrap();
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
    let feedback = growth.feedback(id(REP)).unwrap();
    let before = query::rep_profile(profile.clone(), feedback.clone(), date("2026-03-10"));
    assert_eq!(before.overdue_action_items, 0);
    let after = query::rep_profile(profile, feedback, date("2026-03-11"));
    assert_eq!(after.overdue_action_items, 1);
    assert_eq!(after.standing.standing, StandingKind::NeedsSupport);
}

/// An organisation that changes while its reps work: two teams, leaders
/// assigned late, reps moving between teams, coaching and feedback from both
/// leaders (the leaders' documents gather every rep's), a standard set and
/// revised midway, and a rep's stream that names another rep as joining.
fn organisation() -> Vec<Envelope> {
    use trellis_domain::rep::{
        ActionItem, CoachingSessionHeld, FeedbackGiven, FeedbackKind, Owner, RepMovedTeam,
        Visibility,
    };
    use trellis_domain::team::{LeaderAssigned, TeamEvent, TeamFormed, TeamRenamed};
    use trellis_domain::{PeriodKind, TeamId};

    let team = |n: u128, version: u64, event: TeamEvent| {
        envelope(
            TeamId::from_uuid(Uuid::from_u128(n)).stream_id(),
            version,
            event,
        )
    };
    let of = |rep: u128, version: u64, event: RepEvent| {
        envelope(
            RepId::from_uuid(Uuid::from_u128(rep)).stream_id(),
            version,
            Event::Rep(event),
        )
    };
    let formed = |n: u128, name: &str| {
        TeamEvent::Formed(TeamFormed {
            team_id: id(n),
            name: name.try_into().unwrap(),
        })
    };
    let mut log = vec![team(1, 1, formed(1, "East")), standard_set(80.0)];
    let mut versions: BTreeMap<u128, u64> = BTreeMap::new();
    let mut next = |rep: u128| {
        let version = versions.entry(rep).or_default();
        *version += 1;
        *version
    };
    for rep in 10..16u128 {
        let joined = RepJoined {
            rep_id: id(rep),
            name: "Generated Rep".try_into().unwrap(),
            role: "AE".try_into().unwrap(),
            team_id: id(if rep < 13 { 1 } else { 2 }),
            start_date: date("2025-11-03"),
        };
        log.push(of(rep, next(rep), RepEvent::Joined(joined)));
        if rep == 12 {
            // Team 2 is formed after some of its reps joined it.
            log.push(team(2, 1, formed(2, "West")));
        }
    }
    for step in 0..60u128 {
        let rep = 10 + step % 6;
        let leader = 20 + step % 2;
        let on = date("2026-01-05") + chrono::Days::new(u64::try_from(step).unwrap());
        let event = match step % 5 {
            0 => RepEvent::FeedbackGiven(FeedbackGiven {
                feedback_id: id(1_000 + step),
                leader_id: id(leader),
                competency_id: id(3),
                kind: FeedbackKind::Praise,
                note: "sharp questions".try_into().unwrap(),
                visibility: Visibility::Shared,
                given_on: on,
            }),
            1 => RepEvent::CoachingSessionHeld(CoachingSessionHeld {
                session_id: id(2_000 + step),
                leader_id: id(leader),
                held_on: on,
                duration_minutes: 30,
                focus: vec![id(3)],
                notes: "role play".try_into().unwrap(),
                visibility: Visibility::Shared,
                action_items: vec![ActionItem {
                    action_item_id: id(3_000 + step),
                    description: "follow up".try_into().unwrap(),
                    owner: Owner::Leader(id(leader)),
                    due_on: on,
                }],
            }),
            2 => RepEvent::PerformanceMeasured(PerformanceMeasured {
                measurement_id: id(4_000 + step),
                metric: "discovery_score".try_into().unwrap(),
                period: trellis_domain::Period::containing(PeriodKind::Month, on),
                value: (60.0 + (step % 7) as f64 * 5.0).try_into().unwrap(),
                source: MeasurementSource::Manual,
            }),
            3 => RepEvent::SkillAssessed(SkillAssessed {
                assessment_id: id(5_000 + step),
                leader_id: id(leader),
                competency_id: id(3),
                level: 3u8.try_into().unwrap(),
                evidence: "calls".try_into().unwrap(),
                assessed_on: on,
            }),
            _ => RepEvent::MovedTeam(RepMovedTeam {
                from: id(1),
                to: id(2),
                on,
            }),
        };
        log.push(of(rep, next(rep), event));
        match step {
            20 => log.push(team(
                1,
                2,
                TeamEvent::LeaderAssigned(LeaderAssigned {
                    team_id: id(1),
                    leader_id: id(20),
                    leader_name: "Lena Park".try_into().unwrap(),
                }),
            )),
            30 => log.push(envelope(
                format!("standard-{}", Uuid::from_u128(STANDARD)),
                2,
                StandardRevised {
                    standard_id: id(STANDARD),
                    version: 2,
                    target: 70.0.try_into().unwrap(),
                    effective_from: date("2026-02-01"),
                    roles: None,
                    ramp: None,
                },
            )),
            40 => log.push(team(
                2,
                2,
                TeamEvent::Renamed(TeamRenamed {
                    team_id: id(2),
                    name: "West Coast".try_into().unwrap(),
                }),
            )),
            _ => {}
        }
    }
    log
}

/// Every document, as text, in (kind, key) order.
/// A projection that has folded `events`, its documents still pending.
fn folded(events: &[Envelope]) -> Growth {
    let mut growth = Growth::new(settings(2));
    for event in events {
        growth.apply(event);
    }
    growth
}

fn texts(changes: Vec<DocChange>) -> Vec<(&'static str, String, String)> {
    let mut texts: Vec<_> = changes
        .into_iter()
        .map(|c| (c.kind, c.key, c.doc.expect("a document")))
        .collect();
    texts.sort();
    texts
}

/// Folds `events` in `count` shards as a rebuild does, taking each shard's
/// own documents `part` reps at a time, then the merged shared ones.
fn fold_in_shards(events: &[Envelope], count: usize, part: usize) -> Vec<DocChange> {
    let template = Growth::new(settings(2));
    let mut shards: Vec<Box<dyn Projection>> = (0..count).map(|_| template.fresh()).collect();
    for event in events {
        match template.route(event) {
            Route::Shard(hash) => {
                shards[usize::try_from(hash % count as u64).unwrap()].apply(event)
            }
            Route::Every => shards.iter_mut().for_each(|shard| shard.apply(event)),
            Route::Skip => {}
        }
    }
    let mut changes = Vec::new();
    for shard in &mut shards {
        loop {
            let (part_changes, more) = shard.take_own_part(part);
            changes.extend(part_changes);
            if !more {
                break;
            }
        }
    }
    let mut shards = shards.into_iter();
    let mut first = shards.next().expect("a shard");
    for shard in shards {
        first.merge(shard).unwrap();
    }
    changes.extend(first.take_changes());
    changes
}

#[test]
fn folding_in_shards_gives_the_documents_of_one_fold() {
    let events = organisation();
    let mut whole = Growth::new(settings(2));
    for event in &events {
        whole.apply(event);
    }
    let expected = texts(whole.take_changes());
    let kinds: std::collections::BTreeSet<&str> = expected.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(kinds.len(), 10, "every kind of document: {kinds:?}");
    for count in [1, 2, 3, 5] {
        for part in [1, 2, 100] {
            let sharded = texts(fold_in_shards(&events, count, part));
            assert_eq!(sharded, expected, "{count} shards, parts of {part}");
        }
    }
}

#[test]
fn a_shard_merges_only_once_its_reps_are_taken() {
    let events = organisation();
    let template = Growth::new(settings(2));
    let mut first = template.fresh();
    let mut second = template.fresh();
    for event in &events {
        first.apply(event);
        second.apply(event);
    }
    assert!(first.merge(second).is_err());
}

/// The team pages read each member's recent timeline: the last rows of
/// each bucket of the whole one, and it says when a period is older than
/// what it keeps.
#[test]
fn the_recent_and_current_timelines_are_tails_of_the_whole_one_and_know_what_they_lack() {
    // Half a year more, so that weeks and months are cut.
    let mut events = history();
    events.push(measured(9, 104, "2026-09", 90.0));
    let docs = fold_in_batches(&mut Growth::new(settings(2)), &events, 3);
    let key = Uuid::from_u128(REP).to_string();
    let doc = |kind: &str| -> GrowthTimeline {
        serde_json::from_value(docs[&(kind.to_owned(), key.clone())].clone()).unwrap()
    };
    let whole = doc(kinds::GROWTH_TIMELINE);
    assert!(
        whole.weeks.len() > derive::RECENT_WEEKS && whole.months.len() > derive::RECENT_MONTHS,
        "the fixture has more weeks and months than are kept"
    );
    for (tail_kind, tail) in [
        (kinds::RECENT_TIMELINE, Tail::RECENT),
        (kinds::CURRENT_TIMELINE, Tail::CURRENT),
    ] {
        let part = doc(tail_kind);
        assert_eq!(part, whole.tail(tail), "{tail_kind}");
        for (kind, kept) in [
            (PeriodKind::Week, tail.weeks),
            (PeriodKind::Month, tail.months),
            (PeriodKind::Quarter, tail.quarters),
        ] {
            let rows = whole.rows(kind);
            assert_eq!(part.rows(kind), &rows[rows.len().saturating_sub(kept)..]);
            let first_kept = part.rows(kind)[0].start;
            assert!(
                part.tail_covers(tail, kind, first_kept),
                "{tail_kind} {kind:?}"
            );
            assert!(whole.tail_covers(tail, kind, rows[0].start), "{kind:?}");
            assert_eq!(
                part.tail_covers(tail, kind, rows[0].start),
                rows.len() <= kept,
                "{tail_kind} {kind:?}: an older period is covered only when nothing was cut"
            );
        }
    }
    assert_eq!(doc(kinds::CURRENT_TIMELINE).months.len(), 1);
}

/// The next version of `rep`'s stream after `events`.
fn next_version(events: &[Envelope], rep: u128) -> u64 {
    let stream = RepId::from_uuid(Uuid::from_u128(rep)).stream_id();
    events
        .iter()
        .filter(|e| e.stream_id == stream)
        .map(|e| e.stream_version)
        .max()
        .unwrap_or(0)
        + 1
}

fn feedback(rep: u128, version: u64, feedback: u128, leader: u128) -> Envelope {
    use trellis_domain::rep::{FeedbackGiven, FeedbackKind, Visibility};
    envelope(
        RepId::from_uuid(Uuid::from_u128(rep)).stream_id(),
        version,
        Event::Rep(RepEvent::FeedbackGiven(FeedbackGiven {
            feedback_id: id(feedback),
            leader_id: id(leader),
            competency_id: id(3),
            kind: FeedbackKind::Praise,
            note: "sharp questions".try_into().unwrap(),
            visibility: Visibility::Shared,
            given_on: date("2026-03-20"),
        })),
    )
}

/// The documents about leaders among `changes`: (kind, key, written or removed).
fn leader_changes(changes: &[DocChange]) -> Vec<(&'static str, String, bool)> {
    changes
        .iter()
        .filter(|c| c.kind == kinds::LEADER || c.kind == kinds::LEADER_REP)
        .map(|c| (c.kind, c.key.clone(), c.doc.is_some()))
        .collect()
}

/// A leader's history is stored per rep, so that recording for one rep
/// rewrites that rep's share and not everything the leader ever did.
#[test]
fn feedback_for_one_rep_rewrites_only_that_reps_share_of_its_leader() {
    let mut events = organisation();
    let mut growth = folded(&events);
    let everything = growth.take_changes();
    let shares_of_20 = everything
        .iter()
        .filter(|c| {
            c.kind == kinds::LEADER_REP && c.key.starts_with(&id::<LeaderId>(20).to_string())
        })
        .count();
    assert!(shares_of_20 > 1, "leader 20 worked with several reps");

    let version = next_version(&events, 10);
    events.push(feedback(10, version, 9_000, 20));
    growth.apply(events.last().unwrap());
    let changes = growth.take_changes();
    assert_eq!(
        leader_changes(&changes),
        vec![(kinds::LEADER_REP, leader_share_key(id(20), id(10)), true)],
        "one share, and not the leader's header"
    );
    let share: LeaderShare = serde_json::from_str(
        changes
            .iter()
            .find(|c| c.kind == kinds::LEADER_REP)
            .unwrap()
            .doc
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert!(
        share
            .activity
            .feedback
            .iter()
            .any(|f| f.feedback_id == id(9_000)),
        "the share holds the new feedback"
    );

    // A leader's first act for a rep lists the rep in the header too.
    let version = next_version(&events, 15);
    events.push(feedback(15, version, 9_001, 22));
    growth.apply(events.last().unwrap());
    let changes = growth.take_changes();
    assert_eq!(
        leader_changes(&changes),
        vec![
            (kinds::LEADER, id::<LeaderId>(22).to_string(), true),
            (kinds::LEADER_REP, leader_share_key(id(22), id(15)), true),
        ]
    );
    let header: LeaderHeader = serde_json::from_str(
        changes
            .iter()
            .find(|c| c.kind == kinds::LEADER)
            .and_then(|c| c.doc.as_deref())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header.reps, [id(15)].into(), "the header lists the rep");
}

/// A share that no longer holds anything (its only record retracted) is
/// removed, and the header no longer lists the rep; a leader no team
/// names, with nothing left, loses the header too, as a fold of the whole
/// log would never have written it.
#[test]
fn a_share_whose_records_are_all_retracted_is_removed() {
    use trellis_domain::rep::{Correction, FactCorrected};
    let retracted = |version: u64, fact: u128| {
        rep(
            version,
            FactCorrected {
                fact_id: Uuid::from_u128(fact),
                reason: "wrong rep".try_into().unwrap(),
                correction: Correction::Retracted,
            },
        )
    };
    // Leader 2 gives feedback twice; leader 30, whom no team names, once.
    let mut events = history();
    events.push(feedback(REP, 9, 300, 30));
    events.push(feedback(REP, 10, 301, 2));
    events.push(feedback(REP, 11, 302, 2));
    let mut growth = folded(&events);
    growth.take_changes();

    // Leader 2 keeps one: the share is rewritten, the header stays.
    events.push(retracted(12, 301));
    growth.apply(events.last().unwrap());
    assert_eq!(
        leader_changes(&growth.take_changes()),
        vec![(kinds::LEADER_REP, leader_share_key(id(2), id(REP)), true)]
    );

    // Leader 30 has nothing left: share and header go.
    events.push(retracted(13, 300));
    growth.apply(events.last().unwrap());
    assert_eq!(
        leader_changes(&growth.take_changes()),
        vec![
            (kinds::LEADER, id::<LeaderId>(30).to_string(), false),
            (kinds::LEADER_REP, leader_share_key(id(30), id(REP)), false),
        ]
    );
    assert!(!growth.leaders.contains_key(&id(30)));

    // What is left is what a fold of the whole log writes.
    let live = fold_in_batches(&mut Growth::new(settings(2)), &events, 1);
    let whole = fold_in_batches(&mut Growth::new(settings(2)), &events, events.len());
    assert_eq!(live, whole);
    assert!(!live.contains_key(&(kinds::LEADER.to_owned(), id::<LeaderId>(30).to_string())));
}

/// A leader restored from its header and shares is the leader that was
/// folded, whichever comes first.
#[test]
fn a_leader_restored_from_its_header_and_shares_is_the_one_folded() {
    let events = organisation();
    let mut growth = folded(&events);
    let changes = growth.take_changes();
    for reversed in [false, true] {
        let mut restored = Growth::new(settings(2));
        let mut order: Vec<&DocChange> = changes.iter().collect();
        if reversed {
            order.reverse();
        }
        for c in order {
            if restored.state_kinds().contains(&c.kind) {
                restored
                    .restore(c.kind, &c.key, c.doc.as_deref().unwrap())
                    .unwrap();
            }
        }
        assert_eq!(restored.leaders, growth.leaders, "reversed: {reversed}");
        assert!(
            restored.take_changes().is_empty(),
            "restoring changes nothing"
        );
    }
}

/// Measurements are most of what the fold keeps in memory: folded or
/// restored, every measurement of a metric shares one copy of its name.
#[test]
fn measurements_share_one_copy_of_their_metrics_name_folded_and_restored() {
    let shares_one_name = |growth: &Growth| {
        let facts = growth.rep(id(REP)).expect("the rep");
        let names: Vec<&MetricName> = facts.measurements.values().map(|m| &m.metric).collect();
        assert!(names.len() >= 3, "the history measures the rep");
        names.iter().all(|name| name.same_as(names[0]))
    };
    let mut folded = Growth::new(settings(2));
    for event in &history() {
        folded.apply(event);
    }
    assert!(shares_one_name(&folded), "folded");

    let mut restored = Growth::new(settings(2));
    for c in folded.take_changes() {
        if c.kind == kinds::REP_FACTS {
            restored
                .restore(c.kind, &c.key, c.doc.as_deref().unwrap())
                .unwrap();
        }
    }
    assert!(shares_one_name(&restored), "restored");
}

/// What waits for `take_changes` is counted in reps, which is what bounds
/// a commit's memory: each rep folded into, or every rep once a standard
/// changes (it judges them all).
#[test]
fn pending_counts_the_reps_whose_documents_wait() {
    let mut growth = Growth::new(settings(2));
    assert_eq!(growth.pending(), 0);
    for event in organisation() {
        growth.apply(&event);
    }
    let reps = growth.reps.len();
    assert!(reps > 1, "the organisation has several reps");
    assert_eq!(growth.pending(), reps, "every rep folded into");
    growth.take_changes();
    assert_eq!(growth.pending(), 0, "taken");
    growth.apply(&feedback(15, 100, 9_100, 22));
    assert_eq!(growth.pending(), 1, "one rep");
    growth.apply(&standard_set(90.0));
    assert_eq!(growth.pending(), reps, "a standard: every rep");
}

/// A rep's feedback grows with every piece, and the views that read a
/// whole team's profiles never show it: it is its own document, and the
/// profile holds none of it.
#[test]
fn a_reps_feedback_is_its_own_document_and_not_in_the_profile() {
    let mut events = organisation();
    let mut growth = folded(&events);
    growth.take_changes();
    let version = next_version(&events, 10);
    events.push(feedback(10, version, 9_000, 20));
    growth.apply(events.last().unwrap());
    let changes = texts(growth.take_changes());
    let doc = |kind: &str| {
        changes
            .iter()
            .find(|(k, key, _)| *k == kind && *key == id::<RepId>(10).to_string())
            .map(|(_, _, text)| serde_json::from_str::<Value>(text).unwrap())
            .unwrap_or_else(|| panic!("a {kind} document of rep 10"))
    };
    let profile = doc(kinds::REP_PROFILE);
    assert!(
        profile.get("feedback").is_none(),
        "the profile holds no feedback: {profile}"
    );
    let feedback = doc(kinds::REP_FEEDBACK);
    let ids: Vec<&str> = feedback["feedback"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|f| f["feedback_id"].as_str())
        .collect();
    assert!(
        ids.contains(&id::<trellis_domain::FeedbackId>(9_000).to_string().as_str()),
        "the new piece is in the rep's feedback document: {feedback}"
    );
}

#[test]
fn a_rep_who_started_decades_ago_keeps_the_latest_periods_of_their_timeline() {
    // A veteran entered with their real start date: the timeline is longer
    // than it keeps, and it keeps the end, where the measurements are.
    let mut growth = Growth::new(settings(2));
    growth.apply(&standard_set(80.0));
    growth.apply(&rep(
        1,
        RepJoined {
            rep_id: id(REP),
            name: "Ana Lopez".try_into().unwrap(),
            role: "AE".try_into().unwrap(),
            team_id: id(1),
            start_date: date("1999-06-01"),
        },
    ));
    growth.apply(&measured(2, 100, "2026-01", 84.0));
    growth.apply(&measured(3, 101, "2026-02", 88.0));
    let (profile, timeline) = growth.derive(id(REP)).unwrap();
    let months = timeline.rows(PeriodKind::Month);
    assert_eq!(months[0].period.to_string(), "1999-06", "months fit whole");
    let last = months.last().unwrap();
    assert_eq!(last.period.to_string(), "2026-02");
    assert_eq!(last.standards[0].actual, Some(88.0));
    let weeks = timeline.rows(PeriodKind::Week);
    assert_eq!(
        weeks.len(),
        20 * 53,
        "weeks capped at the longest timeline kept"
    );
    assert_eq!(weeks.last().unwrap().period.to_string(), "2026-W05");
    // Each period keeps its place since the start, the first kept included.
    let first_kept = weeks[0].period;
    assert_eq!(
        weeks[0].period_index,
        first_kept.ordinal_since(date("1999-06-01")).unwrap()
    );
    assert_eq!(
        weeks[0].period_index + 20 * 53 - 1,
        weeks.last().unwrap().period_index,
        "numbered on from the first kept, which is not the first"
    );
    assert!(weeks[0].period_index > 1, "{}", weeks[0].period_index);
    assert_eq!(months[0].period_index, 1);
    // Periods follow on from one another, with none left out.
    for rows in [months, weeks] {
        for pair in rows.windows(2) {
            assert_eq!(pair[0].period.next(), pair[1].period);
        }
    }
    assert_eq!(profile.phase.phase, derive::Phase::Quantity);
}
