use chrono::NaiveDate;
use trellis_domain::rep::*;
use trellis_domain::{
    Aggregate, CompetencyId, CompetencyStatus, LeaderId, MetricName, MetricValue, Period,
    PeriodKind, PlanId, Rejection, RepAggregate, RepId, StandardStatus, TeamId,
};
use uuid::Uuid;

use crate::support::{date, id, now, parse, text, today};

fn check(given: Vec<RepEvent>, when: RepCommand, then: Result<Vec<RepEvent>, Rejection>) {
    crate::support::check::<RepAggregate>(given, when, then);
}

// ---------------------------------------------------------------------------
// Fixtures. The rep starts on 2026-01-05; "now" is 2026-03-16.

fn rep_id() -> RepId {
    id(10)
}
fn team() -> TeamId {
    id(1)
}
fn other_team() -> TeamId {
    id(11)
}
fn leader() -> LeaderId {
    id(20)
}
fn competency() -> CompetencyId {
    id(2)
}
fn start() -> NaiveDate {
    date("2026-01-05")
}
fn tomorrow() -> NaiveDate {
    date("2026-03-17")
}
fn before_start() -> NaiveDate {
    date("2026-01-04")
}

fn joined() -> RepJoined {
    RepJoined {
        rep_id: rep_id(),
        name: parse("Ada Lovelace"),
        role: parse("SDR"),
        team_id: team(),
        start_date: start(),
    }
}

fn departed(on: &str) -> RepDeparted {
    RepDeparted {
        on: date(on),
        reason: text("Moved to another company."),
    }
}

fn feedback(n: u128) -> FeedbackGiven {
    FeedbackGiven {
        feedback_id: id(n),
        leader_id: leader(),
        competency_id: competency(),
        kind: FeedbackKind::Praise,
        note: text("Great follow-up questions on the Acme call."),
        visibility: Visibility::Shared,
        given_on: date("2026-02-10"),
    }
}

fn assessed(n: u128) -> SkillAssessed {
    SkillAssessed {
        assessment_id: id(n),
        leader_id: leader(),
        competency_id: competency(),
        level: parse("3"),
        evidence: text("Asked about impact on three of five calls."),
        assessed_on: date("2026-02-11"),
    }
}

fn item(n: u128, due_on: &str) -> ActionItem {
    ActionItem {
        action_item_id: id(n),
        description: text("Listen back to two calls."),
        owner: Owner::Rep,
        due_on: date(due_on),
    }
}

fn session(n: u128, action_items: Vec<ActionItem>) -> CoachingSessionHeld {
    CoachingSessionHeld {
        session_id: id(n),
        leader_id: leader(),
        held_on: date("2026-02-12"),
        duration_minutes: 30,
        focus: vec![competency()],
        notes: text("Worked on discovery questions."),
        visibility: Visibility::Private,
        action_items,
    }
}

fn training(n: u128) -> TrainingCompleted {
    TrainingCompleted {
        training_id: id(n),
        title: parse("Discovery fundamentals"),
        competency_id: Some(competency()),
        completed_on: date("2026-02-13"),
    }
}

fn value(n: f64) -> MetricValue {
    MetricValue::try_from(n).expect("non-negative value")
}

fn measured(n: u128, period: &str, v: f64, source: MeasurementSource) -> PerformanceMeasured {
    PerformanceMeasured {
        measurement_id: id(n),
        metric: parse("calls_made"),
        period: parse(period),
        value: value(v),
        source,
    }
}

fn support(n: u128) -> SupportRequested {
    SupportRequested {
        request_id: id(n),
        category: SupportCategory::Leads,
        description: text("Not enough leads in my territory."),
        raised_on: date("2026-02-15"),
    }
}

fn support_acknowledged(n: u128) -> SupportAcknowledged {
    SupportAcknowledged {
        request_id: id(n),
        leader_id: leader(),
        on: date("2026-02-16"),
    }
}

fn support_resolved(n: u128) -> SupportResolved {
    SupportResolved {
        request_id: id(n),
        leader_id: leader(),
        resolution: text("Added 200 accounts from the west list."),
        on: date("2026-02-20"),
    }
}

fn plan(n: u128) -> ImprovementPlanStarted {
    ImprovementPlanStarted {
        plan_id: id(n),
        leader_id: leader(),
        targets: vec![PlanTarget {
            description: text("Ten discovery calls a week."),
            standard_id: Some(id(3)),
        }],
        started_on: date("2026-03-02"),
        review_on: date("2026-04-13"),
    }
}

fn checkpoint(n: u128) -> PlanCheckpointRecorded {
    PlanCheckpointRecorded {
        plan_id: id(n),
        note: text("Eight calls last week; improving."),
        on: date("2026-03-09"),
    }
}

fn plan_closed(n: u128, outcome: PlanOutcome) -> ImprovementPlanClosed {
    ImprovementPlanClosed {
        plan_id: id(n),
        outcome,
        note: text("Targets reached."),
        on: date("2026-03-13"),
    }
}

fn correction(fact: u128, correction: Correction) -> FactCorrected {
    FactCorrected {
        fact_id: Uuid::from_u128(fact),
        reason: text("Entered on the wrong rep."),
        correction,
    }
}

fn review(n: u128) -> ReviewHeld {
    ReviewHeld {
        review_id: id(n),
        period_from: date("2026-01-01"),
        period_to: date("2026-03-31"),
        packet_sha256: "ab".repeat(32).as_str().try_into().expect("a digest"),
        on: date("2026-03-16"),
    }
}

// Commands, with "now" and other streams' facts filled in as usual.

fn give(feedback: FeedbackGiven) -> RepCommand {
    RepCommand::GiveFeedback {
        feedback,
        competency: CompetencyStatus::Active,
        now: now(),
    }
}
fn assess(assessment: SkillAssessed) -> RepCommand {
    RepCommand::AssessSkill {
        assessment,
        competency: CompetencyStatus::Active,
        now: now(),
    }
}
fn hold(session: CoachingSessionHeld) -> RepCommand {
    RepCommand::HoldCoachingSession {
        session,
        now: now(),
    }
}
/// A measurement of a metric the standards measure in periods of its kind.
fn measure(measurement: PerformanceMeasured) -> RepCommand {
    let standard_periods = vec![measurement.period.kind()];
    RepCommand::MeasurePerformance {
        measurement,
        now: now(),
        standard_periods,
        largest_target: 50.0,
    }
}
fn complete(n: u128) -> RepCommand {
    RepCommand::CompleteActionItem {
        completed: completed(n),
        now: now(),
    }
}
fn completed(n: u128) -> ActionItemCompleted {
    ActionItemCompleted {
        action_item_id: id(n),
        on: date("2026-02-20"),
    }
}
fn drop_item(n: u128) -> RepCommand {
    RepCommand::DropActionItem {
        dropped: dropped(n),
        now: now(),
    }
}
fn dropped(n: u128) -> ActionItemDropped {
    ActionItemDropped {
        action_item_id: id(n),
        on: date("2026-02-21"),
        reason: text("No longer relevant."),
    }
}
fn correct(corrected: FactCorrected) -> RepCommand {
    RepCommand::CorrectFact {
        correction: corrected,
        largest_target: None,
    }
}

/// A rep who joined and then departed on 2026-03-01.
fn gone() -> Vec<RepEvent> {
    vec![joined().into(), departed("2026-03-01").into()]
}

fn was_departed() -> Result<Vec<RepEvent>, Rejection> {
    Err(Rejection::RepDeparted {
        on: date("2026-03-01"),
    })
}

// ---------------------------------------------------------------------------
// Joining, moving, role, departure.

#[test]
fn joining_records_rep_joined() {
    check(
        vec![],
        RepCommand::JoinRep {
            joined: joined(),
            team_exists: true,
            now: now(),
        },
        Ok(vec![joined().into()]),
    );
}

#[test]
fn joining_ahead_of_the_start_date_is_allowed() {
    let later = RepJoined {
        start_date: date("2026-06-01"),
        ..joined()
    };
    check(
        vec![],
        RepCommand::JoinRep {
            joined: later.clone(),
            team_exists: true,
            now: now(),
        },
        Ok(vec![later.into()]),
    );
}

/// The rep joining with the start date `day`.
fn starting(day: &str) -> RepJoined {
    RepJoined {
        start_date: date(day),
        ..joined()
    }
}

/// The command that records `joined` ("now" is 2026-03-16).
fn join(joined: RepJoined) -> RepCommand {
    RepCommand::JoinRep {
        joined,
        team_exists: true,
        now: now(),
    }
}

#[test]
fn a_start_date_more_than_a_year_ahead_is_rejected_and_a_year_ahead_is_not() {
    let at = starting;
    check(
        vec![],
        join(at("2027-03-16")),
        Ok(vec![at("2027-03-16").into()]),
    );
    check(
        vec![],
        join(at("2099-03-16")),
        Err(Rejection::StartDateTooFarAhead {
            start_date: date("2099-03-16"),
            today: date("2026-03-16"),
            latest: date("2027-03-16"),
        }),
    );
}

#[test]
fn a_start_date_more_than_sixty_years_ago_is_rejected_as_a_mistyped_year() {
    let at = starting;
    check(
        vec![],
        join(at("1966-03-16")),
        Ok(vec![at("1966-03-16").into()]),
    );
    let refused = Rejection::StartDateTooFarBack {
        start_date: date("1899-01-01"),
        earliest: date("1966-03-16"),
    };
    check(vec![], join(at("1899-01-01")), Err(refused.clone()));
    // The day before the earliest is the first refused.
    check(
        vec![],
        join(at("1966-03-15")),
        Err(Rejection::StartDateTooFarBack {
            start_date: date("1966-03-15"),
            earliest: date("1966-03-16"),
        }),
    );
    assert_eq!(refused.concerns().as_deref(), Some("start_date"));
    assert_eq!(
        refused.to_string(),
        "The start date 1899-01-01 is more than 60 years ago. Check the year: pick a date on \
         or after 1966-03-16."
    );
}

#[test]
fn joining_twice_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::JoinRep {
            joined: joined(),
            team_exists: true,
            now: now(),
        },
        Err(Rejection::RepAlreadyExists),
    );
}

#[test]
fn joining_a_team_that_does_not_exist_is_rejected() {
    check(
        vec![],
        RepCommand::JoinRep {
            joined: joined(),
            team_exists: false,
            now: now(),
        },
        Err(Rejection::TeamNotFound),
    );
}

#[test]
fn a_command_for_a_rep_who_has_not_joined_is_rejected() {
    check(vec![], give(feedback(100)), Err(Rejection::RepNotFound));
}

#[test]
fn moving_team_records_both_teams() {
    check(
        vec![joined().into()],
        RepCommand::MoveTeam {
            to: other_team(),
            on: date("2026-03-02"),
            team_exists: true,
            now: now(),
        },
        Ok(vec![
            RepMovedTeam {
                from: team(),
                to: other_team(),
                on: date("2026-03-02"),
            }
            .into(),
        ]),
    );
}

#[test]
fn moving_to_the_current_team_records_nothing() {
    check(
        vec![joined().into()],
        RepCommand::MoveTeam {
            to: team(),
            on: date("2026-03-02"),
            team_exists: true,
            now: now(),
        },
        Ok(vec![]),
    );
}

#[test]
fn moving_to_a_team_that_does_not_exist_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::MoveTeam {
            to: other_team(),
            on: date("2026-03-02"),
            team_exists: false,
            now: now(),
        },
        Err(Rejection::TeamNotFound),
    );
}

#[test]
fn moving_a_departed_rep_is_rejected() {
    check(
        gone(),
        RepCommand::MoveTeam {
            to: other_team(),
            on: date("2026-03-02"),
            team_exists: true,
            now: now(),
        },
        was_departed(),
    );
}

#[test]
fn changing_role_records_old_and_new_role() {
    check(
        vec![joined().into()],
        RepCommand::ChangeRole {
            to: parse("AE"),
            on: date("2026-03-02"),
            now: now(),
        },
        Ok(vec![
            RepRoleChanged {
                from: parse("SDR"),
                to: parse("AE"),
                on: date("2026-03-02"),
            }
            .into(),
        ]),
    );
}

#[test]
fn changing_to_the_current_role_records_nothing() {
    check(
        vec![joined().into()],
        RepCommand::ChangeRole {
            to: parse("SDR"),
            on: date("2026-03-02"),
            now: now(),
        },
        Ok(vec![]),
    );
}

#[test]
fn renaming_a_rep_records_the_new_name_and_the_state_carries_it() {
    let renamed = RepRenamed {
        name: parse("Ada King"),
    };
    check(
        vec![joined().into()],
        RepCommand::Rename {
            name: parse("Ada King"),
        },
        Ok(vec![renamed.clone().into()]),
    );
    // A departed rep's name may still be corrected.
    check(
        gone(),
        RepCommand::Rename {
            name: parse("Ada King"),
        },
        Ok(vec![renamed.clone().into()]),
    );
    let state = [joined().into(), renamed.into()]
        .iter()
        .fold(RepState::default(), RepAggregate::evolve);
    let RepState::Joined(rep) = state.clone() else {
        panic!("the rep joined")
    };
    assert_eq!(rep.name.as_str(), "Ada King");
    assert_eq!(rep.former_names, vec![parse("Ada Lovelace")]);
    // An erasure leaves no name, former ones included.
    let erased_state = RepAggregate::evolve(state, &erased("2026-03-01").into());
    let RepState::Joined(rep) = erased_state else {
        panic!("the rep joined")
    };
    assert!(rep.former_names.is_empty(), "{:?}", rep.former_names);
}

#[test]
fn renaming_a_rep_to_their_name_records_nothing_and_an_erased_rep_is_not_renamed() {
    check(
        vec![joined().into()],
        RepCommand::Rename {
            name: parse("Ada Lovelace"),
        },
        Ok(vec![]),
    );
    check(
        vec![joined().into(), erased("2026-03-01").into()],
        RepCommand::Rename {
            name: parse("Ada King"),
        },
        Err(Rejection::PersonalDataErased {
            on: date("2026-03-01"),
        }),
    );
}

#[test]
fn an_erasure_reason_may_not_name_a_name_the_rep_had_before() {
    // Ada Lovelace, then Ada King, now Ada Byron: neither earlier name.
    let renamed = vec![
        joined().into(),
        RepRenamed {
            name: parse("Ada King"),
        }
        .into(),
        RepRenamed {
            name: parse("Ada Byron"),
        }
        .into(),
    ];
    for reason in [
        "Lovelace asked to be forgotten",
        "King asked to be forgotten",
    ] {
        check(
            renamed.clone(),
            RepCommand::ErasePersonalData {
                erased: PersonalDataErased {
                    reason: text(reason),
                    on: date("2026-03-01"),
                },
                now: now(),
            },
            Err(Rejection::ErasureReasonNamesPerson),
        );
    }
}

#[test]
fn departing_records_rep_departed() {
    check(
        vec![joined().into()],
        RepCommand::Depart {
            departure: departed("2026-03-01"),
            now: now(),
        },
        Ok(vec![departed("2026-03-01").into()]),
    );
}

#[test]
fn departing_twice_is_rejected() {
    check(
        gone(),
        RepCommand::Depart {
            departure: departed("2026-03-10"),
            now: now(),
        },
        Err(Rejection::RepAlreadyDeparted {
            on: date("2026-03-01"),
        }),
    );
}

#[test]
fn departing_in_the_future_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::Depart {
            departure: departed("2026-03-17"),
            now: now(),
        },
        Err(Rejection::DateInFuture {
            date: tomorrow(),
            today: today(),
        }),
    );
}

// ---------------------------------------------------------------------------
// Expectations.

fn acknowledgement(version: u32) -> ExpectationsAcknowledged {
    ExpectationsAcknowledged {
        standard_id: id(3),
        standard_version: version,
        on: date("2026-01-06"),
    }
}

fn acknowledge(version: u32, standard: StandardStatus) -> RepCommand {
    RepCommand::AcknowledgeExpectations {
        acknowledged: acknowledgement(version),
        standard,
        now: now(),
    }
}

#[test]
fn acknowledging_expectations_records_the_standard_version() {
    check(
        vec![joined().into()],
        acknowledge(2, StandardStatus::Active { latest_version: 2 }),
        Ok(vec![acknowledgement(2).into()]),
    );
}

#[test]
fn acknowledging_the_same_expectations_twice_records_nothing() {
    check(
        vec![joined().into(), acknowledgement(1).into()],
        acknowledge(1, StandardStatus::Active { latest_version: 1 }),
        Ok(vec![]),
    );
}

#[test]
fn acknowledging_an_unknown_standard_is_rejected() {
    check(
        vec![joined().into()],
        acknowledge(1, StandardStatus::Unknown),
        Err(Rejection::StandardNotFound),
    );
}

#[test]
fn acknowledging_a_retired_standard_is_rejected() {
    check(
        vec![joined().into()],
        acknowledge(
            1,
            StandardStatus::Retired {
                on: date("2026-01-01"),
            },
        ),
        Err(Rejection::StandardRetired {
            on: date("2026-01-01"),
        }),
    );
}

#[test]
fn acknowledging_a_version_that_does_not_exist_is_rejected() {
    check(
        vec![joined().into()],
        acknowledge(3, StandardStatus::Active { latest_version: 2 }),
        Err(Rejection::StandardVersionNotFound {
            standard_id: id(3),
            version: 3,
            latest: 2,
        }),
    );
}

#[test]
fn acknowledging_expectations_for_a_departed_rep_is_rejected() {
    check(
        gone(),
        acknowledge(1, StandardStatus::Active { latest_version: 1 }),
        was_departed(),
    );
}

// ---------------------------------------------------------------------------
// Feedback.

#[test]
fn giving_feedback_records_feedback_given() {
    check(
        vec![joined().into()],
        give(feedback(100)),
        Ok(vec![feedback(100).into()]),
    );
}

#[test]
fn feedback_for_a_departed_rep_is_rejected() {
    check(gone(), give(feedback(100)), was_departed());
}

#[test]
fn feedback_dated_in_the_future_is_rejected() {
    check(
        vec![joined().into()],
        give(FeedbackGiven {
            given_on: tomorrow(),
            ..feedback(100)
        }),
        Err(Rejection::DateInFuture {
            date: tomorrow(),
            today: today(),
        }),
    );
}

#[test]
fn feedback_dated_before_the_rep_joined_is_rejected() {
    check(
        vec![joined().into()],
        give(FeedbackGiven {
            given_on: before_start(),
            ..feedback(100)
        }),
        Err(Rejection::DateBeforeJoined {
            date: before_start(),
            joined: start(),
        }),
    );
}

#[test]
fn feedback_on_a_retired_competency_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::GiveFeedback {
            feedback: feedback(100),
            competency: CompetencyStatus::Retired,
            now: now(),
        },
        Err(Rejection::CompetencyRetired),
    );
}

#[test]
fn feedback_on_an_unknown_competency_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::GiveFeedback {
            feedback: feedback(100),
            competency: CompetencyStatus::Unknown,
            now: now(),
        },
        Err(Rejection::CompetencyNotFound),
    );
}

#[test]
fn feedback_reusing_an_id_is_rejected() {
    check(
        vec![joined().into(), feedback(100).into()],
        give(feedback(100)),
        Err(Rejection::IdAlreadyUsed {
            id: Uuid::from_u128(100),
        }),
    );
}

fn acknowledge_feedback(n: u128) -> RepCommand {
    RepCommand::AcknowledgeFeedback {
        acknowledged: feedback_acknowledged(n),
        now: now(),
    }
}
fn feedback_acknowledged(n: u128) -> FeedbackAcknowledged {
    FeedbackAcknowledged {
        feedback_id: id(n),
        on: date("2026-02-11"),
    }
}

#[test]
fn acknowledging_shared_feedback_records_feedback_acknowledged() {
    check(
        vec![joined().into(), feedback(100).into()],
        acknowledge_feedback(100),
        Ok(vec![feedback_acknowledged(100).into()]),
    );
}

#[test]
fn acknowledging_feedback_twice_records_nothing() {
    check(
        vec![
            joined().into(),
            feedback(100).into(),
            feedback_acknowledged(100).into(),
        ],
        acknowledge_feedback(100),
        Ok(vec![]),
    );
}

#[test]
fn acknowledging_feedback_that_does_not_exist_is_rejected() {
    check(
        vec![joined().into()],
        acknowledge_feedback(100),
        Err(Rejection::FeedbackNotFound {
            feedback_id: id(100),
        }),
    );
}

#[test]
fn acknowledging_private_feedback_is_rejected_as_if_it_did_not_exist() {
    let private = FeedbackGiven {
        visibility: Visibility::Private,
        ..feedback(100)
    };
    check(
        vec![joined().into(), private.into()],
        acknowledge_feedback(100),
        Err(Rejection::FeedbackNotFound {
            feedback_id: id(100),
        }),
    );
}

#[test]
fn acknowledging_retracted_feedback_is_rejected() {
    check(
        vec![
            joined().into(),
            feedback(100).into(),
            correction(100, Correction::Retracted).into(),
        ],
        acknowledge_feedback(100),
        Err(Rejection::FeedbackNotFound {
            feedback_id: id(100),
        }),
    );
}

// ---------------------------------------------------------------------------
// Skill assessments.

#[test]
fn assessing_a_skill_records_skill_assessed() {
    check(
        vec![joined().into()],
        assess(assessed(200)),
        Ok(vec![assessed(200).into()]),
    );
}

#[test]
fn assessing_a_departed_rep_is_rejected() {
    check(gone(), assess(assessed(200)), was_departed());
}

#[test]
fn assessing_a_retired_competency_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::AssessSkill {
            assessment: assessed(200),
            competency: CompetencyStatus::Retired,
            now: now(),
        },
        Err(Rejection::CompetencyRetired),
    );
}

#[test]
fn an_assessment_dated_in_the_future_is_rejected() {
    check(
        vec![joined().into()],
        assess(SkillAssessed {
            assessed_on: tomorrow(),
            ..assessed(200)
        }),
        Err(Rejection::DateInFuture {
            date: tomorrow(),
            today: today(),
        }),
    );
}

// ---------------------------------------------------------------------------
// Coaching sessions and action items.

#[test]
fn holding_a_coaching_session_records_it_with_its_action_items() {
    let held = session(
        300,
        vec![
            item(301, "2026-02-19"),
            ActionItem {
                owner: Owner::Leader(leader()),
                ..item(302, "2026-02-19")
            },
        ],
    );
    check(
        vec![joined().into()],
        hold(held.clone()),
        Ok(vec![held.into()]),
    );
}

#[test]
fn coaching_a_departed_rep_is_rejected() {
    check(gone(), hold(session(300, vec![])), was_departed());
}

#[test]
fn a_coaching_session_before_the_rep_joined_is_rejected() {
    check(
        vec![joined().into()],
        hold(CoachingSessionHeld {
            held_on: before_start(),
            ..session(300, vec![])
        }),
        Err(Rejection::DateBeforeJoined {
            date: before_start(),
            joined: start(),
        }),
    );
}

#[test]
fn a_coaching_session_of_zero_minutes_is_rejected() {
    check(
        vec![joined().into()],
        hold(CoachingSessionHeld {
            duration_minutes: 0,
            ..session(300, vec![])
        }),
        Err(Rejection::SessionDurationOutOfRange {
            minutes: 0,
            max: MAX_SESSION_MINUTES,
        }),
    );
}

#[test]
fn a_coaching_session_longer_than_a_working_day_is_rejected() {
    check(
        vec![joined().into()],
        hold(CoachingSessionHeld {
            duration_minutes: 481,
            ..session(300, vec![])
        }),
        Err(Rejection::SessionDurationOutOfRange {
            minutes: 481,
            max: MAX_SESSION_MINUTES,
        }),
    );
}

#[test]
fn an_action_item_due_before_its_session_is_rejected() {
    check(
        vec![joined().into()],
        hold(session(300, vec![item(301, "2026-02-11")])),
        Err(Rejection::ActionItemDueBeforeSession {
            action_item_id: id(301),
            number: 1,
            due_on: date("2026-02-11"),
            held_on: date("2026-02-12"),
        }),
    );
}

#[test]
fn an_action_item_due_more_than_a_year_after_its_session_is_rejected() {
    check(
        vec![joined().into()],
        hold(session(
            300,
            vec![item(301, "2026-03-01"), item(302, "2099-02-12")],
        )),
        Err(Rejection::ActionItemDueTooFar {
            number: 2,
            due_on: date("2099-02-12"),
            latest: date("2027-02-12"),
        }),
    );
}

#[test]
fn two_action_items_with_the_same_id_are_rejected() {
    check(
        vec![joined().into()],
        hold(session(
            300,
            vec![item(301, "2026-02-19"), item(301, "2026-02-20")],
        )),
        Err(Rejection::IdAlreadyUsed {
            id: Uuid::from_u128(301),
        }),
    );
}

fn coached() -> Vec<RepEvent> {
    vec![
        joined().into(),
        session(300, vec![item(301, "2026-02-19")]).into(),
    ]
}

fn with(mut events: Vec<RepEvent>, more: impl Into<RepEvent>) -> Vec<RepEvent> {
    events.push(more.into());
    events
}

#[test]
fn completing_an_action_item_records_action_item_completed() {
    check(coached(), complete(301), Ok(vec![completed(301).into()]));
}

#[test]
fn completing_an_unknown_action_item_is_rejected() {
    check(
        coached(),
        complete(999),
        Err(Rejection::ActionItemNotFound {
            action_item_id: id(999),
        }),
    );
}

#[test]
fn completing_an_action_item_twice_is_rejected() {
    check(
        with(coached(), completed(301)),
        complete(301),
        Err(Rejection::ActionItemClosed {
            action_item_id: id(301),
            status: ActionItemStatus::Completed,
        }),
    );
}

#[test]
fn completing_a_dropped_action_item_is_rejected() {
    check(
        with(coached(), dropped(301)),
        complete(301),
        Err(Rejection::ActionItemClosed {
            action_item_id: id(301),
            status: ActionItemStatus::Dropped,
        }),
    );
}

#[test]
fn dropping_an_action_item_records_action_item_dropped() {
    check(coached(), drop_item(301), Ok(vec![dropped(301).into()]));
}

#[test]
fn dropping_an_unknown_action_item_is_rejected() {
    check(
        coached(),
        drop_item(999),
        Err(Rejection::ActionItemNotFound {
            action_item_id: id(999),
        }),
    );
}

#[test]
fn an_action_item_of_a_retracted_session_can_be_neither_completed_nor_dropped() {
    let retracted = with(coached(), correction(300, Correction::Retracted));
    let withdrawn = Err(Rejection::ActionItemWithdrawn {
        action_item_id: id(301),
        session_id: id(300),
    });
    check(retracted.clone(), complete(301), withdrawn.clone());
    check(retracted, drop_item(301), withdrawn);
}

#[test]
fn an_item_completed_before_its_session_was_retracted_is_withdrawn_not_closed() {
    let events = with(
        with(coached(), completed(301)),
        correction(300, Correction::Retracted),
    );
    // Neither dropped nor completed again: withdrawn, not "already completed".
    for command in [drop_item(301), complete(301)] {
        check(
            events.clone(),
            command,
            Err(Rejection::ActionItemWithdrawn {
                action_item_id: id(301),
                session_id: id(300),
            }),
        );
    }
}

#[test]
fn an_action_item_of_another_session_still_counts_after_a_retraction() {
    let events = with(
        with(coached(), session(400, vec![item(401, "2026-02-26")])),
        correction(300, Correction::Retracted),
    );
    check(events, complete(401), Ok(vec![completed(401).into()]));
}

#[test]
fn dropping_a_completed_action_item_is_rejected() {
    check(
        with(coached(), completed(301)),
        drop_item(301),
        Err(Rejection::ActionItemClosed {
            action_item_id: id(301),
            status: ActionItemStatus::Completed,
        }),
    );
}

#[test]
fn an_action_item_can_still_be_closed_after_the_rep_departed() {
    check(
        with(coached(), departed("2026-03-01")),
        drop_item(301),
        Ok(vec![dropped(301).into()]),
    );
}

// ---------------------------------------------------------------------------
// Training.

#[test]
fn recording_training_records_training_completed() {
    check(
        vec![joined().into()],
        RepCommand::RecordTraining {
            training: training(400),
            now: now(),
        },
        Ok(vec![training(400).into()]),
    );
}

#[test]
fn training_for_a_departed_rep_is_rejected() {
    check(
        gone(),
        RepCommand::RecordTraining {
            training: training(400),
            now: now(),
        },
        was_departed(),
    );
}

// ---------------------------------------------------------------------------
// Measurements.

#[test]
fn measuring_performance_records_performance_measured() {
    let m = measured(500, "2026-W10", 42.0, MeasurementSource::CrmImport);
    check(
        vec![joined().into()],
        measure(m.clone()),
        Ok(vec![m.into()]),
    );
}

#[test]
fn re_recording_the_same_value_for_a_metric_and_period_records_nothing() {
    let m = measured(500, "2026-W10", 42.0, MeasurementSource::CrmImport);
    check(
        vec![joined().into(), m.into()],
        measure(measured(
            501,
            "2026-W10",
            42.0,
            MeasurementSource::CrmImport,
        )),
        Ok(vec![]),
    );
}

#[test]
fn re_importing_a_different_value_corrects_the_earlier_measurement() {
    let m = measured(500, "2026-W10", 42.0, MeasurementSource::CrmImport);
    check(
        vec![joined().into(), m.into()],
        measure(measured(
            501,
            "2026-W10",
            45.0,
            MeasurementSource::CrmImport,
        )),
        Ok(vec![
            FactCorrected {
                fact_id: Uuid::from_u128(500),
                reason: text("re-imported"),
                correction: Correction::MeasuredValue { value: value(45.0) },
            }
            .into(),
        ]),
    );
}

#[test]
fn re_entering_a_different_value_by_hand_corrects_it_as_re_entered() {
    let m = measured(500, "2026-03", 42.0, MeasurementSource::Manual);
    check(
        vec![joined().into(), m.into()],
        measure(measured(501, "2026-03", 40.0, MeasurementSource::Manual)),
        Ok(vec![
            FactCorrected {
                fact_id: Uuid::from_u128(500),
                reason: text("re-entered"),
                correction: Correction::MeasuredValue { value: value(40.0) },
            }
            .into(),
        ]),
    );
}

#[test]
fn re_importing_the_corrected_value_again_records_nothing() {
    let given = vec![
        joined().into(),
        measured(500, "2026-W10", 42.0, MeasurementSource::CrmImport).into(),
        FactCorrected {
            fact_id: Uuid::from_u128(500),
            reason: text("re-imported"),
            correction: Correction::MeasuredValue { value: value(45.0) },
        }
        .into(),
    ];
    check(
        given,
        measure(measured(
            502,
            "2026-W10",
            45.0,
            MeasurementSource::CrmImport,
        )),
        Ok(vec![]),
    );
}

#[test]
fn measuring_after_the_earlier_measurement_was_retracted_records_a_new_one() {
    let m = measured(501, "2026-W10", 45.0, MeasurementSource::Manual);
    check(
        vec![
            joined().into(),
            measured(500, "2026-W10", 42.0, MeasurementSource::Manual).into(),
            correction(500, Correction::Retracted).into(),
        ],
        measure(m.clone()),
        Ok(vec![m.into()]),
    );
}

#[test]
fn measuring_a_metric_no_standard_measures_is_rejected() {
    let m = measured(500, "2026-W10", 45.0, MeasurementSource::Manual);
    let rejection = Rejection::MetricNotMeasured {
        metric: parse("calls_made"),
    };
    check(
        vec![joined().into()],
        RepCommand::MeasurePerformance {
            measurement: m,
            now: now(),
            standard_periods: vec![],
            largest_target: 0.0,
        },
        Err(rejection.clone()),
    );
    assert_eq!(rejection.concerns().as_deref(), Some("metric"));
}

#[test]
fn measuring_a_period_of_another_kind_than_the_standards_is_rejected_naming_theirs() {
    let m = measured(500, "2026-03", 45.0, MeasurementSource::Manual);
    let rejection = Rejection::PeriodNotMeasured {
        metric: parse("calls_made"),
        period: parse("2026-03"),
        kinds: vec![PeriodKind::Week, PeriodKind::Quarter],
    };
    check(
        vec![joined().into()],
        RepCommand::MeasurePerformance {
            measurement: m,
            now: now(),
            standard_periods: vec![PeriodKind::Quarter, PeriodKind::Week, PeriodKind::Quarter],
            largest_target: 50.0,
        },
        Err(rejection.clone()),
    );
    assert_eq!(rejection.concerns().as_deref(), Some("period"));
    assert_eq!(
        rejection.to_string(),
        "“calls_made” is measured weekly or quarterly, so 2026-03 is not one of its periods. \
         Give a period like 2026-W05 or 2026-Q1."
    );
}

/// A value a hundred times the largest target its standards have had is
/// taken for a typo and refused beside the value; up to that, recorded.
/// Targets below 1 (a rate) allow values up to a hundred.
#[test]
fn a_measurement_far_above_every_target_is_refused_as_a_likely_typo() {
    let command = |value: f64, largest_target: f64| RepCommand::MeasurePerformance {
        measurement: measured(500, "2026-W10", value, MeasurementSource::Manual),
        now: now(),
        standard_periods: vec![PeriodKind::Week],
        largest_target,
    };
    let refused = Rejection::MeasurementImplausible {
        metric: parse("calls_made"),
        value: 999_999_999.0,
        largest_target: 60.0,
    };
    check(
        vec![joined().into()],
        command(999_999_999.0, 60.0),
        Err(refused.clone()),
    );
    assert_eq!(refused.concerns().as_deref(), Some("value"));
    assert!(
        refused
            .to_string()
            .starts_with("999999999 is more than 100 times the largest target"),
        "{refused}"
    );
    check(
        vec![joined().into()],
        command(6_000.0, 60.0),
        Ok(vec![
            measured(500, "2026-W10", 6_000.0, MeasurementSource::Manual).into(),
        ]),
    );
    check(
        vec![joined().into()],
        command(6_000.5, 60.0),
        Err(Rejection::MeasurementImplausible {
            metric: parse("calls_made"),
            value: 6_000.5,
            largest_target: 60.0,
        }),
    );
    check(
        vec![joined().into()],
        command(100.0, 0.25),
        Ok(vec![
            measured(500, "2026-W10", 100.0, MeasurementSource::Manual).into(),
        ]),
    );
}

/// A correction of a measured value meets the same rule: a typed value
/// far above every target is refused, and no correction gets round it.
#[test]
fn a_correction_far_above_every_target_is_refused_as_a_likely_typo() {
    let given = || {
        vec![
            joined().into(),
            measured(500, "2026-W10", 42.0, MeasurementSource::Manual).into(),
        ]
    };
    let corrected = |v: f64| FactCorrected {
        fact_id: Uuid::from_u128(500),
        reason: text("typed the wrong number"),
        correction: Correction::MeasuredValue { value: value(v) },
    };
    let command = |v: f64| RepCommand::CorrectFact {
        correction: corrected(v),
        largest_target: Some(60.0),
    };
    check(
        given(),
        command(420_000.0),
        Err(Rejection::MeasurementImplausible {
            metric: parse("calls_made"),
            value: 420_000.0,
            largest_target: 60.0,
        }),
    );
    check(given(), command(45.0), Ok(vec![corrected(45.0).into()]));
}

#[test]
fn measuring_a_period_that_has_not_started_is_rejected() {
    check(
        vec![joined().into()],
        measure(measured(500, "2026-04", 1.0, MeasurementSource::Manual)),
        Err(Rejection::PeriodNotStarted {
            period: parse("2026-04"),
            today: today(),
        }),
    );
}

#[test]
fn measuring_a_period_that_ended_before_the_rep_joined_is_rejected() {
    check(
        vec![joined().into()],
        measure(measured(500, "2025-12", 1.0, MeasurementSource::Manual)),
        Err(Rejection::PeriodBeforeJoined {
            period: parse("2025-12"),
            joined: start(),
        }),
    );
}

#[test]
fn measuring_a_period_that_started_after_the_rep_departed_is_rejected() {
    check(
        gone(),
        measure(measured(500, "2026-W11", 1.0, MeasurementSource::CrmImport)),
        Err(Rejection::PeriodAfterDeparture {
            period: parse("2026-W11"),
            departed: date("2026-03-01"),
        }),
    );
}

#[test]
fn a_late_measurement_for_the_period_of_departure_is_accepted() {
    let m = measured(500, "2026-03", 12.0, MeasurementSource::CrmImport);
    check(gone(), measure(m.clone()), Ok(vec![m.into()]));
}

// ---------------------------------------------------------------------------
// Support requests.

#[test]
fn raising_a_support_request_records_support_requested() {
    check(
        vec![joined().into()],
        RepCommand::RaiseSupportRequest {
            request: support(600),
            now: now(),
        },
        Ok(vec![support(600).into()]),
    );
}

#[test]
fn a_departed_rep_cannot_raise_a_support_request() {
    check(
        gone(),
        RepCommand::RaiseSupportRequest {
            request: support(600),
            now: now(),
        },
        was_departed(),
    );
}

fn ack_support(n: u128) -> RepCommand {
    RepCommand::AcknowledgeSupportRequest {
        acknowledged: support_acknowledged(n),
        now: now(),
    }
}
fn resolve_support(n: u128) -> RepCommand {
    RepCommand::ResolveSupportRequest {
        resolved: support_resolved(n),
        now: now(),
    }
}
fn raised() -> Vec<RepEvent> {
    vec![joined().into(), support(600).into()]
}

#[test]
fn acknowledging_a_support_request_records_support_acknowledged() {
    check(
        raised(),
        ack_support(600),
        Ok(vec![support_acknowledged(600).into()]),
    );
}

#[test]
fn acknowledging_a_support_request_twice_records_nothing() {
    check(
        with(raised(), support_acknowledged(600)),
        ack_support(600),
        Ok(vec![]),
    );
}

#[test]
fn acknowledging_an_unknown_support_request_is_rejected() {
    check(
        raised(),
        ack_support(999),
        Err(Rejection::SupportRequestNotFound {
            request_id: id(999),
        }),
    );
}

#[test]
fn acknowledging_a_resolved_support_request_is_rejected() {
    check(
        with(raised(), support_resolved(600)),
        ack_support(600),
        Err(Rejection::SupportRequestResolved {
            request_id: id(600),
            on: date("2026-02-20"),
        }),
    );
}

#[test]
fn resolving_a_support_request_records_support_resolved() {
    check(
        with(raised(), support_acknowledged(600)),
        resolve_support(600),
        Ok(vec![support_resolved(600).into()]),
    );
}

#[test]
fn resolving_an_unacknowledged_support_request_is_allowed() {
    check(
        raised(),
        resolve_support(600),
        Ok(vec![support_resolved(600).into()]),
    );
}

#[test]
fn resolving_an_unknown_support_request_is_rejected() {
    check(
        raised(),
        resolve_support(999),
        Err(Rejection::SupportRequestNotFound {
            request_id: id(999),
        }),
    );
}

#[test]
fn resolving_a_support_request_twice_is_rejected() {
    check(
        with(raised(), support_resolved(600)),
        resolve_support(600),
        Err(Rejection::SupportRequestResolved {
            request_id: id(600),
            on: date("2026-02-20"),
        }),
    );
}

// ---------------------------------------------------------------------------
// Improvement plans.

fn start_plan(p: ImprovementPlanStarted) -> RepCommand {
    RepCommand::StartImprovementPlan {
        plan: p,
        now: now(),
    }
}
fn record_checkpoint(n: u128) -> RepCommand {
    RepCommand::RecordPlanCheckpoint {
        checkpoint: checkpoint(n),
        now: now(),
    }
}
fn close_plan(n: u128, outcome: PlanOutcome) -> RepCommand {
    RepCommand::CloseImprovementPlan {
        closed: plan_closed(n, outcome),
        now: now(),
    }
}
fn on_plan() -> Vec<RepEvent> {
    vec![joined().into(), plan(700).into()]
}

#[test]
fn starting_an_improvement_plan_records_it() {
    check(
        vec![joined().into()],
        start_plan(plan(700)),
        Ok(vec![plan(700).into()]),
    );
}

#[test]
fn starting_a_second_plan_while_one_is_open_is_rejected() {
    check(
        on_plan(),
        start_plan(plan(701)),
        Err(Rejection::ImprovementPlanAlreadyOpen { plan_id: id(700) }),
    );
}

#[test]
fn a_plan_without_targets_is_rejected() {
    check(
        vec![joined().into()],
        start_plan(ImprovementPlanStarted {
            targets: vec![],
            ..plan(700)
        }),
        Err(Rejection::ImprovementPlanWithoutTargets),
    );
}

#[test]
fn acknowledging_or_resolving_a_support_request_before_it_was_raised_is_rejected() {
    let before = date("2026-02-14");
    let refused = Err(Rejection::DateBeforeRaised {
        date: before,
        raised_on: date("2026-02-15"),
    });
    check(
        raised(),
        RepCommand::AcknowledgeSupportRequest {
            acknowledged: SupportAcknowledged {
                on: before,
                ..support_acknowledged(600)
            },
            now: now(),
        },
        refused.clone(),
    );
    check(
        raised(),
        RepCommand::ResolveSupportRequest {
            resolved: SupportResolved {
                on: before,
                ..support_resolved(600)
            },
            now: now(),
        },
        refused,
    );
    // The day it was raised is fine.
    let same_day = SupportResolved {
        on: date("2026-02-15"),
        ..support_resolved(600)
    };
    check(
        raised(),
        RepCommand::ResolveSupportRequest {
            resolved: same_day.clone(),
            now: now(),
        },
        Ok(vec![same_day.into()]),
    );
}

#[test]
fn a_checkpoint_or_closing_before_the_plan_started_is_rejected() {
    let before = date("2026-03-01");
    let refused = Err(Rejection::DateBeforePlanStart {
        date: before,
        started_on: date("2026-03-02"),
    });
    check(
        on_plan(),
        RepCommand::RecordPlanCheckpoint {
            checkpoint: PlanCheckpointRecorded {
                on: before,
                ..checkpoint(700)
            },
            now: now(),
        },
        refused.clone(),
    );
    check(
        on_plan(),
        RepCommand::CloseImprovementPlan {
            closed: ImprovementPlanClosed {
                on: before,
                ..plan_closed(700, PlanOutcome::Met)
            },
            now: now(),
        },
        refused,
    );
    // A plan started after an earlier one closed is dated from its own start.
    let second = ImprovementPlanStarted {
        started_on: date("2026-03-15"),
        review_on: date("2026-04-20"),
        ..plan(701)
    };
    let history = vec![
        joined().into(),
        plan(700).into(),
        plan_closed(700, PlanOutcome::Met).into(),
        second.into(),
    ];
    check(
        history,
        RepCommand::RecordPlanCheckpoint {
            checkpoint: PlanCheckpointRecorded {
                on: date("2026-03-14"),
                ..checkpoint(701)
            },
            now: now(),
        },
        Err(Rejection::DateBeforePlanStart {
            date: date("2026-03-14"),
            started_on: date("2026-03-15"),
        }),
    );
}

#[test]
fn a_plan_reviewed_on_or_before_its_start_is_rejected() {
    check(
        vec![joined().into()],
        start_plan(ImprovementPlanStarted {
            review_on: date("2026-03-02"),
            ..plan(700)
        }),
        Err(Rejection::ReviewDateNotAfterStart {
            started_on: date("2026-03-02"),
            review_on: date("2026-03-02"),
        }),
    );
}

#[test]
fn a_plan_reviewed_more_than_a_year_after_its_start_is_rejected() {
    check(
        vec![joined().into()],
        start_plan(ImprovementPlanStarted {
            review_on: date("2099-03-02"),
            ..plan(700)
        }),
        Err(Rejection::ReviewDateTooFar {
            started_on: date("2026-03-02"),
            review_on: date("2099-03-02"),
            latest: date("2027-03-02"),
        }),
    );
    let a_year = ImprovementPlanStarted {
        review_on: date("2027-03-02"),
        ..plan(700)
    };
    check(
        vec![joined().into()],
        start_plan(a_year.clone()),
        Ok(vec![a_year.into()]),
    );
}

#[test]
fn a_plan_for_a_departed_rep_is_rejected() {
    check(gone(), start_plan(plan(700)), was_departed());
}

#[test]
fn a_new_plan_can_start_after_the_previous_one_closed() {
    let extension = ImprovementPlanStarted {
        started_on: date("2026-03-14"),
        review_on: date("2026-04-30"),
        ..plan(701)
    };
    check(
        with(on_plan(), plan_closed(700, PlanOutcome::Extended)),
        start_plan(extension.clone()),
        Ok(vec![extension.into()]),
    );
}

#[test]
fn recording_a_checkpoint_on_the_open_plan_records_it() {
    check(
        on_plan(),
        record_checkpoint(700),
        Ok(vec![checkpoint(700).into()]),
    );
}

#[test]
fn a_checkpoint_on_a_plan_that_is_not_open_is_rejected() {
    check(
        on_plan(),
        record_checkpoint(999),
        Err(Rejection::ImprovementPlanNotOpen { plan_id: id(999) }),
    );
    check(
        with(on_plan(), plan_closed(700, PlanOutcome::Met)),
        record_checkpoint(700),
        Err(Rejection::ImprovementPlanNotOpen { plan_id: id(700) }),
    );
}

#[test]
fn closing_the_open_plan_records_its_outcome() {
    for outcome in [PlanOutcome::Met, PlanOutcome::Extended, PlanOutcome::NotMet] {
        check(
            on_plan(),
            close_plan(700, outcome),
            Ok(vec![plan_closed(700, outcome).into()]),
        );
    }
}

#[test]
fn closing_a_plan_that_is_not_open_is_rejected() {
    check(
        with(on_plan(), plan_closed(700, PlanOutcome::Met)),
        close_plan(700, PlanOutcome::Met),
        Err(Rejection::ImprovementPlanNotOpen { plan_id: id(700) }),
    );
    check(
        vec![joined().into()],
        close_plan(700, PlanOutcome::Met),
        Err(Rejection::ImprovementPlanNotOpen { plan_id: id(700) }),
    );
}

#[test]
fn the_open_plan_can_be_closed_after_the_rep_departed() {
    check(
        with(on_plan(), departed("2026-03-10")),
        close_plan(700, PlanOutcome::NotMet),
        Ok(vec![plan_closed(700, PlanOutcome::NotMet).into()]),
    );
}

// ---------------------------------------------------------------------------
// Corrections.

fn recorded() -> Vec<RepEvent> {
    vec![
        joined().into(),
        feedback(100).into(),
        assessed(200).into(),
        session(300, vec![]).into(),
        training(400).into(),
        measured(500, "2026-W10", 42.0, MeasurementSource::CrmImport).into(),
    ]
}

fn skill_level(level: &str) -> Correction {
    Correction::SkillLevel {
        level: parse(level),
        evidence: text("Re-scored after listening again."),
    }
}

#[test]
fn correcting_an_assessments_level_records_fact_corrected() {
    let c = correction(200, skill_level("4"));
    check(recorded(), correct(c.clone()), Ok(vec![c.into()]));
}

#[test]
fn correcting_a_measured_value_records_fact_corrected() {
    let c = correction(500, Correction::MeasuredValue { value: value(40.0) });
    check(recorded(), correct(c.clone()), Ok(vec![c.into()]));
}

#[test]
fn correcting_a_measurement_to_its_current_value_records_nothing() {
    check(
        recorded(),
        correct(correction(
            500,
            Correction::MeasuredValue { value: value(42.0) },
        )),
        Ok(vec![]),
    );
}

#[test]
fn any_correctable_record_can_be_retracted() {
    for fact in [100, 200, 300, 400, 500] {
        let c = correction(fact, Correction::Retracted);
        check(recorded(), correct(c.clone()), Ok(vec![c.into()]));
    }
}

#[test]
fn correcting_an_unknown_fact_is_rejected() {
    check(
        recorded(),
        correct(correction(999, Correction::Retracted)),
        Err(Rejection::FactNotFound {
            fact_id: Uuid::from_u128(999),
        }),
    );
}

#[test]
fn correcting_a_measurement_with_a_skill_level_is_rejected() {
    check(
        recorded(),
        correct(correction(500, skill_level("4"))),
        Err(Rejection::CorrectionDoesNotFit {
            fact_id: Uuid::from_u128(500),
            fact: FactKind::Measurement,
            correction: "skill level",
        }),
    );
}

#[test]
fn correcting_an_assessment_with_a_measured_value_is_rejected() {
    check(
        recorded(),
        correct(correction(
            200,
            Correction::MeasuredValue { value: value(4.0) },
        )),
        Err(Rejection::CorrectionDoesNotFit {
            fact_id: Uuid::from_u128(200),
            fact: FactKind::Assessment,
            correction: "measured value",
        }),
    );
}

#[test]
fn correcting_feedback_with_a_skill_level_is_rejected() {
    check(
        recorded(),
        correct(correction(100, skill_level("2"))),
        Err(Rejection::CorrectionDoesNotFit {
            fact_id: Uuid::from_u128(100),
            fact: FactKind::Feedback,
            correction: "skill level",
        }),
    );
}

#[test]
fn correcting_a_retracted_record_is_rejected() {
    check(
        with(recorded(), correction(200, Correction::Retracted)),
        correct(correction(200, skill_level("4"))),
        Err(Rejection::FactAlreadyRetracted {
            fact_id: Uuid::from_u128(200),
        }),
    );
}

#[test]
fn a_departed_reps_records_can_still_be_corrected() {
    let c = correction(200, skill_level("2"));
    check(
        with(recorded(), departed("2026-03-01")),
        correct(c.clone()),
        Ok(vec![c.into()]),
    );
}

// ---------------------------------------------------------------------------
// Reviews.

#[test]
fn holding_a_review_records_review_held() {
    check(
        vec![joined().into()],
        RepCommand::HoldReview {
            review: review(800),
            now: now(),
        },
        Ok(vec![review(800).into()]),
    );
}

#[test]
fn a_review_can_be_held_after_the_rep_departed() {
    check(
        gone(),
        RepCommand::HoldReview {
            review: review(800),
            now: now(),
        },
        Ok(vec![review(800).into()]),
    );
}

#[test]
fn a_review_period_that_ends_before_it_starts_is_rejected() {
    let backwards = ReviewHeld {
        period_from: date("2026-03-31"),
        period_to: date("2026-01-01"),
        ..review(800)
    };
    check(
        vec![joined().into()],
        RepCommand::HoldReview {
            review: backwards,
            now: now(),
        },
        Err(Rejection::ReviewPeriodBackwards {
            from: date("2026-03-31"),
            to: date("2026-01-01"),
        }),
    );
}

#[test]
fn a_review_held_before_the_period_it_looks_back_on_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::HoldReview {
            review: ReviewHeld {
                period_from: date("2026-03-01"),
                on: date("2026-02-15"),
                ..review(800)
            },
            now: now(),
        },
        Err(Rejection::ReviewBeforePeriod {
            date: date("2026-02-15"),
            from: date("2026-03-01"),
            to: date("2026-03-31"),
        }),
    );
}

#[test]
fn an_action_item_closed_before_the_session_it_was_agreed_in_is_rejected() {
    // The session is on 2026-02-12.
    let given = vec![
        joined().into(),
        session(300, vec![item(301, "2026-02-20")]).into(),
    ];
    let before = date("2026-02-11");
    check(
        given.clone(),
        RepCommand::CompleteActionItem {
            completed: ActionItemCompleted {
                on: before,
                ..completed(301)
            },
            now: now(),
        },
        Err(Rejection::DateBeforeAgreed {
            date: before,
            agreed_on: date("2026-02-12"),
        }),
    );
    check(
        given,
        RepCommand::DropActionItem {
            dropped: ActionItemDropped {
                on: before,
                ..dropped(301)
            },
            now: now(),
        },
        Err(Rejection::DateBeforeAgreed {
            date: before,
            agreed_on: date("2026-02-12"),
        }),
    );
}

#[test]
fn a_review_dated_in_the_future_is_rejected() {
    check(
        vec![joined().into()],
        RepCommand::HoldReview {
            review: ReviewHeld {
                on: tomorrow(),
                ..review(800)
            },
            now: now(),
        },
        Err(Rejection::DateInFuture {
            date: tomorrow(),
            today: today(),
        }),
    );
}

// ---------------------------------------------------------------------------
// State, as evolve builds it.

#[test]
fn evolve_tracks_team_role_departure_plan_and_measurement_value() {
    let events: Vec<RepEvent> = vec![
        joined().into(),
        RepMovedTeam {
            from: team(),
            to: other_team(),
            on: date("2026-02-02"),
        }
        .into(),
        RepRoleChanged {
            from: parse("SDR"),
            to: parse("AE"),
            on: date("2026-02-02"),
        }
        .into(),
        measured(500, "2026-W10", 42.0, MeasurementSource::CrmImport).into(),
        correction(500, Correction::MeasuredValue { value: value(45.0) }).into(),
        plan(700).into(),
        departed("2026-03-10").into(),
    ];
    let state = RepAggregate::replay(&events);
    let rep = state.rep().expect("the rep joined");
    assert_eq!(rep.team_id, other_team());
    assert_eq!(rep.role, parse("AE"));
    assert_eq!(rep.departed_on, Some(date("2026-03-10")));
    assert_eq!(rep.open_plan, Some(id::<PlanId>(700)));
    assert_eq!(rep.measurement(id(500)).map(|m| m.value), Some(value(45.0)));
}

/// The state keeps an id once, with its record or in `used_ids`; an id is
/// refused whichever kind of record used it first.
#[test]
fn an_id_is_used_once_whatever_kind_of_record_used_it() {
    check(
        vec![
            joined().into(),
            measured(500, "2026-W10", 42.0, MeasurementSource::Manual).into(),
        ],
        give(feedback(500)),
        Err(Rejection::IdAlreadyUsed {
            id: Uuid::from_u128(500),
        }),
    );
    check(
        coached(),
        measure(measured(301, "2026-W10", 42.0, MeasurementSource::Manual)),
        Err(Rejection::IdAlreadyUsed {
            id: Uuid::from_u128(301),
        }),
    );
}

/// A measurement keeps its metric by its place among the rep's metrics:
/// each metric and period still has its own live measurement, and a
/// retraction frees only its own.
#[test]
fn measurements_of_several_metrics_are_told_apart_by_metric_and_period() {
    let mut other = measured(501, "2026-W10", 7.0, MeasurementSource::Manual);
    other.metric = parse("meetings_booked");
    let events: Vec<RepEvent> = vec![
        joined().into(),
        measured(500, "2026-W10", 42.0, MeasurementSource::Manual).into(),
        other.clone().into(),
        measured(504, "2026-W11", 50.0, MeasurementSource::Manual).into(),
        correction(500, Correction::Retracted).into(),
    ];
    let state = RepAggregate::replay(&events);
    let rep = state.rep().expect("the rep joined");
    let week: Period = "2026-W10".parse().unwrap();
    let metric_of = |m: u128| {
        rep.metric(rep.measurement(id(m)).expect("recorded").metric)
            .clone()
    };
    assert_eq!(metric_of(501), parse::<MetricName>("meetings_booked"));
    assert_ne!(metric_of(500), metric_of(501));
    assert_eq!(
        rep.live_measurement(&metric_of(500), week)
            .map(|m| m.measurement_id),
        None
    );
    assert_eq!(
        rep.live_measurement(&metric_of(501), week)
            .map(|m| m.measurement_id),
        Some(id(501))
    );
    let next_week: Period = "2026-W11".parse().unwrap();
    assert_eq!(metric_of(504), metric_of(500));
    assert_eq!(
        rep.live_measurement(&metric_of(500), next_week)
            .map(|m| m.measurement_id),
        Some(id(504)),
        "the retraction freed its own period only"
    );
    assert_eq!(
        rep.live_measurement(&metric_of(501), next_week)
            .map(|m| m.measurement_id),
        None
    );
    // The retracted one's metric and period take a new measurement.
    check(
        events.clone(),
        measure(measured(502, "2026-W10", 40.0, MeasurementSource::Manual)),
        Ok(vec![
            measured(502, "2026-W10", 40.0, MeasurementSource::Manual).into(),
        ]),
    );
    // The other's, a re-entry, corrects it.
    let mut again = other.clone();
    again.measurement_id = id(503);
    again.value = value(8.0);
    assert!(matches!(
        &RepAggregate::decide(&state, measure(again)).unwrap()[..],
        [RepEvent::FactCorrected(c)] if c.fact_id == Uuid::from_u128(501)
    ));
}

#[test]
fn events_for_a_rep_who_has_not_joined_leave_the_state_empty() {
    assert_eq!(
        RepAggregate::replay(&[feedback(100).into()]),
        RepState::NotJoined
    );
}

#[test]
fn a_rep_may_not_read_a_retracted_session_nor_its_items() {
    let shared = |n: u128, item_n: u128| CoachingSessionHeld {
        visibility: Visibility::Shared,
        ..session(n, vec![item(item_n, "2026-03-01")])
    };
    let events: Vec<RepEvent> = vec![
        joined().into(),
        shared(4, 5).into(),
        shared(6, 7).into(),
        correction(6, Correction::Retracted).into(),
    ];
    let state = events.iter().fold(RepState::default(), evolve);
    let rep = state.rep().expect("joined");
    let RepEvent::CoachingSessionHeld(kept) = &events[1] else {
        unreachable!()
    };
    let RepEvent::CoachingSessionHeld(retracted) = &events[2] else {
        unreachable!()
    };
    assert!(rep.sees_coaching_session(kept));
    assert!(!rep.sees_coaching_session(retracted));
    let hidden = hidden_from_rep(state.rep(), &events);
    let expected: std::collections::BTreeSet<Uuid> =
        [6, 7].into_iter().map(Uuid::from_u128).collect();
    assert_eq!(hidden, expected, "retracted session 6 and its item 7");
}

#[test]
fn a_rep_may_not_read_private_or_retracted_feedback_nor_private_sessions() {
    let private_feedback = FeedbackGiven {
        visibility: Visibility::Private,
        ..feedback(2)
    };
    let shared_session = CoachingSessionHeld {
        visibility: Visibility::Shared,
        ..session(6, vec![item(7, "2026-03-01")])
    };
    let events: Vec<RepEvent> = vec![
        joined().into(),
        feedback(1).into(),
        private_feedback.into(),
        feedback(3).into(),
        correction(3, Correction::Retracted).into(),
        session(4, vec![item(5, "2026-03-01")]).into(),
        shared_session.into(),
    ];
    let state = events.iter().fold(RepState::default(), evolve);
    let hidden = hidden_from_rep(state.rep(), &events);
    let expected: std::collections::BTreeSet<Uuid> =
        [2, 3, 4, 5].into_iter().map(Uuid::from_u128).collect();
    assert_eq!(
        hidden, expected,
        "private feedback 2, retracted feedback 3, private session 4 and its item 5"
    );
}

fn erased(on: &str) -> PersonalDataErased {
    PersonalDataErased {
        reason: text("Asked to be forgotten"),
        on: date(on),
    }
}

#[test]
fn erasing_a_reps_personal_data_records_personal_data_erased() {
    check(
        vec![joined().into()],
        RepCommand::ErasePersonalData {
            erased: erased("2026-03-01"),
            now: now(),
        },
        Ok(vec![erased("2026-03-01").into()]),
    );
}

/// The reason stays readable after the erasure: one that names the rep,
/// whole or by a part of their name in any case, is refused beside it.
#[test]
fn an_erasure_whose_reason_names_the_rep_is_refused_beside_the_reason() {
    for reason in [
        "Ada Lovelace asked to be forgotten",
        "request from LOVELACE under GDPR art. 17",
        "Ada left; erase",
    ] {
        let erasure = RepCommand::ErasePersonalData {
            erased: PersonalDataErased {
                reason: text(reason),
                on: date("2026-03-01"),
            },
            now: now(),
        };
        check(
            vec![joined().into()],
            erasure,
            Err(Rejection::ErasureReasonNamesPerson),
        );
    }
    assert_eq!(
        Rejection::ErasureReasonNamesPerson.concerns().as_deref(),
        Some("reason")
    );
    // The refusal never quotes the name (it is logged, and the log outlives
    // the erasure), so it says where to look: a surname that is also an
    // ordinary word is why a reason that reads well is refused.
    let said = Rejection::ErasureReasonNamesPerson.to_string();
    assert!(
        said.contains("their surname counts however it is written"),
        "{said}"
    );
    // A word that only contains a part of the name is not the name, nor is
    // a first name's word written as an ordinary word ("ada" is not "Ada").
    for reason in [
        "Asked to be forgotten; Adams & co. confirmed",
        "erasure per the ada retention policy",
    ] {
        check(
            vec![joined().into()],
            RepCommand::ErasePersonalData {
                erased: PersonalDataErased {
                    reason: text(reason),
                    on: date("2026-03-01"),
                },
                now: now(),
            },
            Ok(vec![
                PersonalDataErased {
                    reason: text(reason),
                    on: date("2026-03-01"),
                }
                .into(),
            ]),
        );
    }
}

/// Once the rep's key is destroyed their name reads as the erased name; a
/// reason that uses its words ("the person asked to be erased") is no
/// reason to refuse the erasure that destroyed it.
#[test]
fn the_erased_name_is_no_name_a_reason_can_hold() {
    use trellis_domain::personal::{ERASED_NAME, names_person};
    assert!(!names_person("The person asked to be erased.", ERASED_NAME));
    assert!(names_person("Will Page asked", "Will Page"));
    assert!(names_person("request of page", "Will Page"));
    assert!(!names_person("it will be erased", "Will Page"));
    // The rule over all of a person's names: refused if any is named.
    use trellis_domain::rep::check_erasure_reason;
    assert_eq!(
        check_erasure_reason("Asked by Lena", ["Riley Rep", "Lena Leader"]),
        Err(Rejection::ErasureReasonNamesPerson)
    );
    assert_eq!(
        check_erasure_reason("Asked to be forgotten", ["Riley Rep", "Lena Leader"]),
        Ok(())
    );
    let erased_state = [joined().into()]
        .iter()
        .fold(RepState::default(), RepAggregate::evolve);
    let RepState::Joined(mut rep) = erased_state else {
        panic!("the rep joined")
    };
    rep.name = trellis_domain::PersonName::erased();
    let decided = RepAggregate::decide(
        &RepState::Joined(rep),
        RepCommand::ErasePersonalData {
            erased: PersonalDataErased {
                reason: text("The person asked to be erased."),
                on: date("2026-03-01"),
            },
            now: now(),
        },
    );
    assert_eq!(
        decided,
        Ok(vec![
            PersonalDataErased {
                reason: text("The person asked to be erased."),
                on: date("2026-03-01"),
            }
            .into(),
        ])
    );
}

#[test]
fn nothing_more_is_recorded_about_an_erased_rep_not_even_a_second_erasure() {
    let given = vec![joined().into(), erased("2026-03-01").into()];
    let refused = Err(Rejection::PersonalDataErased {
        on: date("2026-03-01"),
    });
    check(
        given.clone(),
        RepCommand::GiveFeedback {
            feedback: feedback(1),
            competency: CompetencyStatus::Active,
            now: now(),
        },
        refused.clone(),
    );
    check(
        given,
        RepCommand::ErasePersonalData {
            erased: erased("2026-03-02"),
            now: now(),
        },
        refused,
    );
}

#[test]
fn an_erased_reps_state_keeps_no_name() {
    let state = [joined().into(), erased("2026-03-01").into()]
        .iter()
        .fold(RepState::default(), RepAggregate::evolve);
    let RepState::Joined(rep) = state else {
        panic!("the rep joined")
    };
    assert_eq!(rep.name.as_str(), trellis_domain::personal::ERASED_NAME);
}

/// The states of thousands of reps are kept between commands, and
/// measurements are most of each: one is kept in 40 bytes, its id, metric,
/// period, value and whether it was retracted, and in no map besides.
#[test]
fn a_measurement_in_a_reps_state_takes_forty_bytes() {
    assert_eq!(std::mem::size_of::<Measurement>(), 40);
    let mut events: Vec<RepEvent> = vec![joined().into()];
    for (n, week) in (500..510).zip(10..20) {
        let period = format!("2026-W{week}");
        events.push(measured(n, &period, 40.0, MeasurementSource::Manual).into());
    }
    let state = RepAggregate::replay(&events);
    let rep = state.rep().expect("the rep joined");
    assert_eq!(rep.measurements().len(), 10);
    assert!(
        rep.fact(Uuid::from_u128(505))
            .is_some_and(|f| f.kind == FactKind::Measurement),
        "a measurement is a fact a correction may name"
    );
}
