use trellis_domain::competency::{CompetencyDefined, CompetencyRetired, CompetencyRevised};
use trellis_domain::{
    Aggregate, CompetencyAggregate, CompetencyCommand, CompetencyEvent, CompetencyId,
    CompetencyState, CompetencyStatus, Rejection, Rubric,
};

use crate::support::{id, parse, text};

fn check(
    given: Vec<CompetencyEvent>,
    when: CompetencyCommand,
    then: Result<Vec<CompetencyEvent>, Rejection>,
) {
    crate::support::check::<CompetencyAggregate>(given, when, then);
}

fn competency() -> CompetencyId {
    id(2)
}

fn rubric(prefix: &str) -> Rubric {
    Rubric::new(
        ["novice", "developing", "proficient", "advanced", "expert"]
            .map(|l| text(&format!("{prefix} {l}"))),
    )
}

fn defined() -> CompetencyDefined {
    CompetencyDefined {
        competency_id: competency(),
        name: parse("Discovery"),
        description: text("Uncovers the buyer's real problem."),
        rubric: rubric("discovery"),
    }
}

fn revise() -> CompetencyCommand {
    CompetencyCommand::ReviseCompetency {
        name: parse("Discovery"),
        description: text("Uncovers the buyer's problem, impact and urgency."),
        rubric: rubric("discovery v2"),
        name_taken: None,
    }
}

fn retired() -> CompetencyRetired {
    CompetencyRetired {
        competency_id: competency(),
        reason: text("Merged into Qualification."),
    }
}

fn retire() -> CompetencyCommand {
    CompetencyCommand::RetireCompetency {
        reason: text("Merged into Qualification."),
    }
}

/// Defines the competency [`defined`] records, `name_taken` as the caller read it.
fn define(name_taken: Option<&str>) -> CompetencyCommand {
    let d = defined();
    CompetencyCommand::DefineCompetency {
        competency_id: d.competency_id,
        name: d.name,
        description: d.description,
        rubric: d.rubric,
        name_taken: name_taken.map(parse),
    }
}

/// Revises the competency [`defined`] records to exactly what it is.
fn revise_to_itself(name_taken: Option<&str>) -> CompetencyCommand {
    let d = defined();
    CompetencyCommand::ReviseCompetency {
        name: d.name,
        description: d.description,
        rubric: d.rubric,
        name_taken: name_taken.map(parse),
    }
}

#[test]
fn defining_a_competency_records_competency_defined() {
    check(vec![], define(None), Ok(vec![defined().into()]));
}

#[test]
fn defining_a_competency_under_a_name_the_framework_has_is_rejected_beside_the_name() {
    let rejection = Rejection::CompetencyNameTaken {
        name: "DISCOVERY".into(),
    };
    check(vec![], define(Some("DISCOVERY")), Err(rejection.clone()));
    assert_eq!(rejection.concerns().as_deref(), Some("name"));
}

#[test]
fn renaming_a_competency_to_a_name_another_has_is_rejected_and_keeping_its_own_is_not() {
    let taken = CompetencyCommand::ReviseCompetency {
        name: parse("Qualification"),
        description: text("Uncovers the buyer's problem, impact and urgency."),
        rubric: rubric("discovery v2"),
        name_taken: Some(parse("QUALIFICATION")),
    };
    check(
        vec![defined().into()],
        taken,
        Err(Rejection::CompetencyNameTaken {
            name: "QUALIFICATION".into(),
        }),
    );
    // A revision that changes nothing is no rename, whatever was read.
    check(
        vec![defined().into()],
        revise_to_itself(Some("Discovery")),
        Ok(vec![]),
    );
}

#[test]
fn defining_a_competency_twice_is_rejected() {
    check(
        vec![defined().into()],
        define(None),
        Err(Rejection::CompetencyAlreadyDefined),
    );
}

#[test]
fn revising_a_competency_records_the_new_name_description_and_rubric() {
    check(
        vec![defined().into()],
        revise(),
        Ok(vec![
            CompetencyRevised {
                competency_id: competency(),
                name: parse("Discovery"),
                description: text("Uncovers the buyer's problem, impact and urgency."),
                rubric: rubric("discovery v2"),
            }
            .into(),
        ]),
    );
}

#[test]
fn a_revision_that_changes_nothing_records_nothing() {
    check(vec![defined().into()], revise_to_itself(None), Ok(vec![]));
}

#[test]
fn revising_a_competency_that_does_not_exist_is_rejected() {
    check(vec![], revise(), Err(Rejection::CompetencyNotFound));
}

#[test]
fn revising_a_retired_competency_is_rejected() {
    check(
        vec![defined().into(), retired().into()],
        revise(),
        Err(Rejection::CompetencyRetired),
    );
}

#[test]
fn retiring_a_competency_records_competency_retired() {
    check(vec![defined().into()], retire(), Ok(vec![retired().into()]));
}

#[test]
fn retiring_a_competency_already_retired_is_rejected() {
    check(
        vec![defined().into(), retired().into()],
        retire(),
        Err(Rejection::CompetencyRetired),
    );
}

#[test]
fn status_follows_the_competency_from_unknown_to_active_to_retired() {
    let events: Vec<CompetencyEvent> = vec![defined().into(), retired().into()];
    assert_eq!(
        CompetencyAggregate::replay(&[]).status(),
        CompetencyStatus::Unknown
    );
    assert_eq!(
        CompetencyAggregate::replay(&events[..1]).status(),
        CompetencyStatus::Active
    );
    assert_eq!(
        CompetencyAggregate::replay(&events).status(),
        CompetencyStatus::Retired
    );
}

#[test]
fn a_competency_s_name_is_in_use_until_it_is_retired() {
    let fold = |events: Vec<CompetencyEvent>| {
        events.iter().fold(CompetencyState::default(), |s, e| {
            CompetencyAggregate::evolve(s, e)
        })
    };
    assert_eq!(fold(vec![]).name_in_use(), None);
    let defined_state = fold(vec![defined().into()]);
    assert_eq!(
        defined_state.name_in_use().map(ToString::to_string),
        Some("Discovery".to_owned())
    );
    assert_eq!(
        fold(vec![defined().into(), retired().into()]).name_in_use(),
        None
    );
}
