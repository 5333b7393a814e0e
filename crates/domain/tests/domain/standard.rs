use trellis_domain::standard::{RampStep, StandardRetired, StandardRevised, StandardSet};
use trellis_domain::{
    Aggregate, Direction, MAX_AT_MOST_ATTAINMENT, MetricValue, PeriodKind, Rejection, Role,
    StandardAggregate, StandardCommand, StandardEvent, StandardId, StandardKind, StandardState,
    StandardStatus, Target, attainment, ramp_adjusted_target,
};

use crate::support::{date, id, parse, text};

fn check(
    given: Vec<StandardEvent>,
    when: StandardCommand,
    then: Result<Vec<StandardEvent>, Rejection>,
) {
    crate::support::check::<StandardAggregate>(given, when, then);
}

fn standard() -> StandardId {
    id(3)
}

fn target(n: f64) -> Target {
    Target::try_from(n).expect("positive target")
}

fn value(n: f64) -> MetricValue {
    MetricValue::try_from(n).expect("non-negative value")
}

fn roles(names: &[&str]) -> Vec<Role> {
    names.iter().map(|r| parse(r)).collect()
}

fn ramp(percents: &[(u32, u16)]) -> Vec<RampStep> {
    percents
        .iter()
        .map(|&(period_index, percent_of_target)| RampStep {
            period_index,
            percent_of_target,
        })
        .collect()
}

fn set() -> StandardSet {
    StandardSet {
        standard_id: standard(),
        name: parse("Discovery calls"),
        metric: parse("discovery_calls"),
        kind: StandardKind::Quality,
        direction: Direction::AtLeast,
        unit: parse("calls"),
        period: PeriodKind::Week,
        target: target(10.0),
        roles: roles(&["SDR"]),
        effective_from: date("2026-01-05"),
        ramp: ramp(&[(1, 25), (2, 50), (3, 75)]),
        version: 1,
    }
}

fn set_command(roles: Vec<Role>, ramp: Vec<RampStep>) -> StandardCommand {
    let s = set();
    StandardCommand::SetStandard {
        standard_id: s.standard_id,
        name: s.name,
        metric: s.metric,
        kind: s.kind,
        direction: s.direction,
        unit: s.unit,
        period: s.period,
        target: s.target,
        roles,
        effective_from: s.effective_from,
        ramp,
        others: vec![],
    }
}

fn revised(version: u32, effective_from: &str, target_value: f64) -> StandardRevised {
    StandardRevised {
        standard_id: standard(),
        version,
        target: target(target_value),
        effective_from: date(effective_from),
        roles: None,
        ramp: None,
    }
}

fn revise(effective_from: &str, target_value: f64) -> StandardCommand {
    StandardCommand::ReviseStandard {
        target: target(target_value),
        effective_from: date(effective_from),
        roles: None,
        ramp: None,
        others: vec![],
    }
}

fn retired(effective_from: &str) -> StandardRetired {
    StandardRetired {
        standard_id: standard(),
        effective_from: date(effective_from),
        reason: text("Replaced."),
    }
}

fn retire(effective_from: &str) -> StandardCommand {
    StandardCommand::RetireStandard {
        effective_from: date(effective_from),
        reason: text("Replaced."),
    }
}

#[test]
fn setting_a_standard_records_version_1() {
    check(
        vec![],
        set_command(roles(&["SDR"]), set().ramp),
        Ok(vec![set().into()]),
    );
}

#[test]
fn setting_a_standard_twice_is_rejected() {
    check(
        vec![set().into()],
        set_command(roles(&["SDR"]), vec![]),
        Err(Rejection::StandardAlreadySet),
    );
}

#[test]
fn a_standard_without_roles_is_rejected() {
    check(vec![], set_command(vec![], vec![]), Err(Rejection::NoRoles));
}

#[test]
fn a_ramp_with_a_gap_is_rejected() {
    check(
        vec![],
        set_command(roles(&["SDR"]), ramp(&[(1, 25), (3, 75)])),
        Err(Rejection::RampOutOfOrder {
            position: 2,
            expected: 2,
            found: 3,
        }),
    );
}

#[test]
fn a_ramp_not_starting_at_period_1_is_rejected() {
    check(
        vec![],
        set_command(roles(&["SDR"]), ramp(&[(2, 50)])),
        Err(Rejection::RampOutOfOrder {
            position: 1,
            expected: 1,
            found: 2,
        }),
    );
}

#[test]
fn a_ramp_step_of_zero_percent_is_rejected() {
    check(
        vec![],
        set_command(roles(&["SDR"]), ramp(&[(1, 0)])),
        Err(Rejection::RampPercentZero { period_index: 1 }),
    );
}

#[test]
fn a_ramp_step_above_the_full_target_is_rejected_and_the_full_target_is_not() {
    check(
        vec![],
        set_command(roles(&["SDR"]), ramp(&[(1, 50), (2, 250)])),
        Err(Rejection::RampPercentAboveFull {
            period_index: 2,
            percent: 250,
        }),
    );
    let full = set_command(roles(&["SDR"]), ramp(&[(1, 50), (2, 100)]));
    assert!(
        trellis_domain::standard::decide(&Default::default(), full).is_ok(),
        "100% is the full target"
    );
}

#[test]
fn a_non_positive_target_cannot_be_set_because_it_cannot_be_parsed() {
    assert!(Target::try_from(0.0).is_err());
    assert!(Target::try_from(-10.0).is_err());
}

#[test]
fn revising_a_standard_records_the_next_version() {
    check(
        vec![set().into()],
        revise("2026-04-06", 12.0),
        Ok(vec![revised(2, "2026-04-06", 12.0).into()]),
    );
}

#[test]
fn a_third_version_follows_the_second() {
    check(
        vec![set().into(), revised(2, "2026-04-06", 12.0).into()],
        revise("2026-07-06", 14.0),
        Ok(vec![revised(3, "2026-07-06", 14.0).into()]),
    );
}

#[test]
fn a_revision_can_replace_roles_and_ramp() {
    let command = StandardCommand::ReviseStandard {
        target: target(12.0),
        effective_from: date("2026-04-06"),
        roles: Some(roles(&["SDR", "AE"])),
        ramp: Some(ramp(&[(1, 50)])),
        others: vec![],
    };
    let expected = StandardRevised {
        roles: Some(roles(&["SDR", "AE"])),
        ramp: Some(ramp(&[(1, 50)])),
        ..revised(2, "2026-04-06", 12.0)
    };
    check(vec![set().into()], command, Ok(vec![expected.into()]));
}

#[test]
fn a_revision_with_an_empty_role_list_is_rejected() {
    let command = StandardCommand::ReviseStandard {
        target: target(12.0),
        effective_from: date("2026-04-06"),
        roles: Some(vec![]),
        ramp: None,
        others: vec![],
    };
    check(vec![set().into()], command, Err(Rejection::NoRoles));
}

#[test]
fn a_revision_taking_effect_on_the_latest_versions_date_is_rejected() {
    check(
        vec![set().into()],
        revise("2026-01-05", 12.0),
        Err(Rejection::RevisionNotAfterLatest {
            given: date("2026-01-05"),
            latest: date("2026-01-05"),
        }),
    );
}

#[test]
fn a_revision_taking_effect_before_the_latest_version_is_rejected() {
    check(
        vec![set().into(), revised(2, "2026-04-06", 12.0).into()],
        revise("2026-03-02", 11.0),
        Err(Rejection::RevisionNotAfterLatest {
            given: date("2026-03-02"),
            latest: date("2026-04-06"),
        }),
    );
}

#[test]
fn revising_a_standard_that_does_not_exist_is_rejected() {
    check(
        vec![],
        revise("2026-04-06", 12.0),
        Err(Rejection::StandardNotFound),
    );
}

#[test]
fn revising_a_retired_standard_is_rejected() {
    check(
        vec![set().into(), retired("2026-06-01").into()],
        revise("2026-07-06", 12.0),
        Err(Rejection::StandardRetired {
            on: date("2026-06-01"),
        }),
    );
}

#[test]
fn retiring_a_standard_records_standard_retired() {
    check(
        vec![set().into()],
        retire("2026-06-01"),
        Ok(vec![retired("2026-06-01").into()]),
    );
}

#[test]
fn retiring_a_standard_before_its_latest_version_takes_effect_is_rejected() {
    check(
        vec![set().into(), revised(2, "2026-04-06", 12.0).into()],
        retire("2026-04-01"),
        Err(Rejection::RetirementBeforeLatest {
            given: date("2026-04-01"),
            latest: date("2026-04-06"),
        }),
    );
}

#[test]
fn retiring_a_standard_twice_is_rejected() {
    check(
        vec![set().into(), retired("2026-06-01").into()],
        retire("2026-07-01"),
        Err(Rejection::StandardRetired {
            on: date("2026-06-01"),
        }),
    );
}

#[test]
fn retiring_a_standard_that_does_not_exist_is_rejected() {
    check(
        vec![],
        retire("2026-06-01"),
        Err(Rejection::StandardNotFound),
    );
}

fn history() -> StandardState {
    StandardAggregate::replay(&[
        set().into(),
        revised(2, "2026-04-06", 12.0).into(),
        revised(3, "2026-07-06", 14.0).into(),
        retired("2026-10-05").into(),
    ])
}

#[test]
fn version_in_force_is_the_latest_that_took_effect_on_or_before_the_date() {
    let state = history();
    let version_on = |d: &str| {
        state
            .version_in_force(date(d))
            .map(|v| (v.version, v.target.get()))
    };
    assert_eq!(version_on("2026-01-04"), None);
    assert_eq!(version_on("2026-01-05"), Some((1, 10.0)));
    assert_eq!(version_on("2026-04-05"), Some((1, 10.0)));
    assert_eq!(version_on("2026-04-06"), Some((2, 12.0)));
    assert_eq!(version_on("2026-09-30"), Some((3, 14.0)));
}

#[test]
fn no_version_is_in_force_from_the_day_the_standard_is_retired() {
    let state = history();
    assert_eq!(
        state
            .version_in_force(date("2026-10-04"))
            .map(|v| v.version),
        Some(3)
    );
    assert_eq!(
        state
            .version_in_force(date("2026-10-05"))
            .map(|v| v.version),
        None
    );
}

#[test]
fn a_revision_without_roles_or_ramp_keeps_the_previous_ones() {
    let state = history();
    let v3 = state
        .version_in_force(date("2026-08-01"))
        .expect("version 3 in force");
    assert_eq!(v3.roles, roles(&["SDR"]));
    assert_eq!(v3.ramp, set().ramp);
}

#[test]
fn status_reports_unknown_active_with_latest_version_or_retired() {
    assert_eq!(
        StandardAggregate::replay(&[]).status(),
        StandardStatus::Unknown
    );
    let active = StandardAggregate::replay(&[set().into(), revised(2, "2026-04-06", 12.0).into()]);
    assert_eq!(
        active.status(),
        StandardStatus::Active { latest_version: 2 }
    );
    assert_eq!(
        history().status(),
        StandardStatus::Retired {
            on: date("2026-10-05")
        }
    );
}

#[test]
fn attainment_of_an_at_least_standard_is_actual_over_target() {
    assert_eq!(
        attainment(Direction::AtLeast, value(8.0), target(10.0)),
        Some(0.8)
    );
    assert_eq!(
        attainment(Direction::AtLeast, value(0.0), target(10.0)),
        Some(0.0)
    );
}

#[test]
fn attainment_of_an_at_most_standard_is_target_over_actual() {
    assert_eq!(
        attainment(Direction::AtMost, value(4.0), target(2.0)),
        Some(0.5)
    );
    assert_eq!(
        attainment(Direction::AtMost, value(1.0), target(2.0)),
        Some(2.0)
    );
}

/// A ceiling kept with nothing over it (no incomplete CRM record at all) is
/// the best period there is: met, at the highest attainment an at-most
/// standard shows, never "not measured".
#[test]
fn attainment_of_an_at_most_standard_with_an_actual_of_zero_is_met_at_the_most_there_is() {
    let perfect = attainment(Direction::AtMost, value(0.0), target(2.0));
    assert_eq!(perfect, Some(MAX_AT_MOST_ATTAINMENT));
    assert!(perfect.is_some_and(|a| a >= 1.0), "a perfect period is met");
    // No actual does better than none.
    for actual in [0.01, 0.1, 0.5, 1.0, 2.0, 4.0] {
        let a = attainment(Direction::AtMost, value(actual), target(2.0)).expect("a figure");
        assert!(a <= MAX_AT_MOST_ATTAINMENT, "{actual}: {a}");
    }
    // Under a tenth of the ceiling it is as good as none.
    assert_eq!(
        attainment(Direction::AtMost, value(0.1), target(2.0)),
        Some(MAX_AT_MOST_ATTAINMENT)
    );
}

#[test]
fn ramp_adjusted_target_scales_the_target_for_periods_in_the_ramp() {
    let steps = ramp(&[(1, 25), (2, 50), (3, 75)]);
    let adjusted = |n| ramp_adjusted_target(target(40.0), &steps, n).get();
    assert_eq!(adjusted(1), 10.0);
    assert_eq!(adjusted(2), 20.0);
    assert_eq!(adjusted(3), 30.0);
}

#[test]
fn ramp_adjusted_target_is_the_full_target_past_the_ramp_or_without_one() {
    let steps = ramp(&[(1, 25), (2, 50)]);
    assert_eq!(ramp_adjusted_target(target(40.0), &steps, 3).get(), 40.0);
    assert_eq!(ramp_adjusted_target(target(40.0), &[], 1).get(), 40.0);
}

#[test]
fn a_reps_period_is_on_the_ramp_up_to_its_last_step_only() {
    let mut version = history()
        .version_in_force(date("2026-01-05"))
        .expect("a version")
        .clone();
    version.ramp = ramp(&[(1, 25), (3, 75)]);
    assert_eq!(
        [1, 2, 3, 4].map(|n| version.ramps(n)),
        [true, true, true, false]
    );
    version.ramp = vec![];
    assert!(!version.ramps(1), "without a ramp no period is on it");
}

#[test]
fn a_version_gives_the_ramp_adjusted_target_for_a_reps_nth_period() {
    let state = history();
    let v1 = state
        .version_in_force(date("2026-02-01"))
        .expect("version 1 in force");
    assert_eq!(v1.target_for(2).get(), 5.0);
    assert_eq!(v1.target_for(4).get(), 10.0);
}

/// Another standard of the same metric and kind of period: "Discovery
/// calls (AE)", for `roles_then`, from 2026-01-05; its second version
/// (`revision`: from when, for which roles), and its retirement, if any.
fn other(
    roles_then: &[&str],
    revision: Option<(&str, &[&str])>,
    retired_on: Option<&str>,
) -> trellis_domain::standard::Standard {
    let mut state = StandardState::default();
    let mut events: Vec<StandardEvent> = vec![
        StandardSet {
            standard_id: id(4),
            name: parse("Discovery calls (AE)"),
            roles: roles(roles_then),
            ..set()
        }
        .into(),
    ];
    if let Some((on, then)) = revision {
        events.push(
            StandardRevised {
                standard_id: id(4),
                roles: Some(roles(then)),
                ..revised(2, on, 10.0)
            }
            .into(),
        );
    }
    if let Some(on) = retired_on {
        events.push(
            StandardRetired {
                standard_id: id(4),
                ..retired(on)
            }
            .into(),
        );
    }
    for event in &events {
        state = StandardAggregate::evolve(state, event);
    }
    match state {
        StandardState::Set(standard) => standard,
        StandardState::NotSet => unreachable!("set above"),
    }
}

#[test]
fn a_standard_on_a_metric_another_holds_the_same_role_to_is_refused_beside_the_metric() {
    let mut command = set_command(roles(&["SDR", "AE"]), vec![]);
    if let StandardCommand::SetStandard { others, .. } = &mut command {
        *others = vec![other(&["AE"], None, None)];
    }
    let rejection = Rejection::StandardOverlaps {
        other: "Discovery calls (AE)".into(),
        metric: parse("discovery_calls"),
        period: PeriodKind::Week,
        role: parse("AE"),
    };
    check(vec![], command, Err(rejection.clone()));
    assert_eq!(rejection.concerns().as_deref(), Some("metric"));
    assert!(
        rejection.to_string().starts_with(
            "The standard “Discovery calls (AE)” already holds AE reps to discovery_calls, weekly,"
        ),
        "{rejection}"
    );
}

#[test]
fn a_standard_may_share_a_metric_with_one_for_other_roles_or_one_retired_before_it_starts() {
    for others in [
        vec![other(&["AE"], None, None)],
        // Held AE and SDR, but only AE since 2026-01-05 (this one's start).
        vec![other(&["SDR", "AE"], Some(("2026-01-05", &["AE"])), None)],
        // Retired from the day this one takes effect.
        vec![other(&["SDR"], None, Some("2026-01-05"))],
    ] {
        let mut command = set_command(roles(&["SDR"]), vec![]);
        if let StandardCommand::SetStandard { others: o, .. } = &mut command {
            *o = others;
        }
        check(
            vec![],
            command,
            Ok(vec![
                StandardSet {
                    ramp: vec![],
                    ..set()
                }
                .into(),
            ]),
        );
    }
}

#[test]
fn a_standard_that_holds_a_role_only_later_or_until_after_the_start_still_overlaps() {
    for others in [
        // AE only, until it takes SDR on from 2026-06-01.
        other(&["AE"], Some(("2026-06-01", &["SDR"])), None),
        // SDR, retired a day after this one starts.
        other(&["SDR"], None, Some("2026-01-06")),
    ] {
        let mut command = set_command(roles(&["SDR"]), vec![]);
        if let StandardCommand::SetStandard { others: o, .. } = &mut command {
            *o = vec![others];
        }
        assert!(
            matches!(
                StandardAggregate::decide(&StandardState::default(), command),
                Err(Rejection::StandardOverlaps { .. })
            ),
            "overlaps"
        );
    }
}

#[test]
fn a_revision_giving_a_role_another_standard_holds_is_refused_beside_the_roles() {
    let command = StandardCommand::ReviseStandard {
        target: target(12.0),
        effective_from: date("2026-04-06"),
        roles: Some(roles(&["SDR", "AE"])),
        ramp: None,
        others: vec![other(&["AE"], None, None)],
    };
    let rejection = Rejection::RevisionOverlapsStandard {
        other: "Discovery calls (AE)".into(),
        metric: parse("discovery_calls"),
        period: PeriodKind::Week,
        role: parse("AE"),
    };
    check(vec![set().into()], command, Err(rejection.clone()));
    assert_eq!(rejection.concerns().as_deref(), Some("roles"));
    // Once the other is retired from the revision's day, it may.
    let command = StandardCommand::ReviseStandard {
        target: target(12.0),
        effective_from: date("2026-04-06"),
        roles: Some(roles(&["SDR", "AE"])),
        ramp: None,
        others: vec![other(&["AE"], None, Some("2026-04-06"))],
    };
    let expected = StandardRevised {
        roles: Some(roles(&["SDR", "AE"])),
        ..revised(2, "2026-04-06", 12.0)
    };
    check(vec![set().into()], command, Ok(vec![expected.into()]));
}

/// The caller may hand every standard it read: only another standard of
/// the same metric and kind of period competes, never the standard itself.
#[test]
fn standards_of_another_metric_or_period_kind_and_the_standard_itself_never_overlap() {
    let mut of_another_metric = other(&["SDR"], None, None);
    of_another_metric.metric = parse("demos_booked");
    let mut monthly = other(&["SDR"], None, None);
    monthly.period = PeriodKind::Month;
    let mut itself = other(&["SDR", "AE"], None, None);
    itself.standard_id = standard();
    let everything = vec![of_another_metric, monthly, itself];

    let mut command = set_command(roles(&["SDR"]), vec![]);
    if let StandardCommand::SetStandard { others, .. } = &mut command {
        others.clone_from(&everything);
    }
    check(
        vec![],
        command,
        Ok(vec![
            StandardSet {
                ramp: vec![],
                ..set()
            }
            .into(),
        ]),
    );
    let command = StandardCommand::ReviseStandard {
        target: target(12.0),
        effective_from: date("2026-04-06"),
        roles: Some(roles(&["SDR", "AE"])),
        ramp: None,
        others: everything,
    };
    let expected = StandardRevised {
        roles: Some(roles(&["SDR", "AE"])),
        ..revised(2, "2026-04-06", 12.0)
    };
    check(vec![set().into()], command, Ok(vec![expected.into()]));
}
