use trellis_domain::team::{LeaderAssigned, TeamFormed, TeamRenamed};
use trellis_domain::{Name, Rejection, TeamAggregate, TeamCommand, TeamEvent, TeamId};

use crate::support::{id, parse};

fn check(given: Vec<TeamEvent>, when: TeamCommand, then: Result<Vec<TeamEvent>, Rejection>) {
    crate::support::check::<TeamAggregate>(given, when, then);
}

fn team() -> TeamId {
    id(1)
}

fn formed() -> TeamFormed {
    TeamFormed {
        team_id: team(),
        name: parse("West"),
    }
}

fn assigned(leader: u128) -> LeaderAssigned {
    LeaderAssigned {
        team_id: team(),
        leader_id: id(leader),
        leader_name: parse("Grace Hopper"),
    }
}

fn rename(name: &str) -> TeamCommand {
    TeamCommand::RenameTeam {
        name: parse(name),
        name_taken: None,
    }
}

fn assign(leader: u128) -> TeamCommand {
    TeamCommand::AssignLeader {
        leader_id: id(leader),
        leader_name: parse("Grace Hopper"),
    }
}

#[test]
fn forming_a_team_records_team_formed() {
    check(
        vec![],
        TeamCommand::FormTeam {
            team_id: team(),
            name: parse("West"),
            name_taken: None,
        },
        Ok(vec![formed().into()]),
    );
}

#[test]
fn forming_a_team_twice_is_rejected() {
    check(
        vec![formed().into()],
        TeamCommand::FormTeam {
            team_id: team(),
            name: parse("East"),
            name_taken: None,
        },
        Err(Rejection::TeamAlreadyExists),
    );
}

#[test]
fn a_name_another_team_has_is_refused_when_forming_or_renaming_but_keeping_one_s_own_is_not() {
    check(
        vec![],
        TeamCommand::FormTeam {
            team_id: team(),
            name: parse("west "),
            name_taken: Some(parse("West")),
        },
        // Named as the team that has it is: what the reader sees in lists.
        Err(Rejection::TeamNameTaken {
            name: "West".into(),
        }),
    );
    check(
        vec![formed().into()],
        TeamCommand::RenameTeam {
            name: parse("East"),
            name_taken: Some(parse("East")),
        },
        Err(Rejection::TeamNameTaken {
            name: "East".into(),
        }),
    );
    // Its own name, again: nothing to do, whatever the caller read.
    check(
        vec![formed().into()],
        TeamCommand::RenameTeam {
            name: parse("West"),
            name_taken: Some(parse("West")),
        },
        Ok(vec![]),
    );
}

#[test]
fn assigning_a_leader_records_leader_assigned() {
    check(
        vec![formed().into()],
        assign(9),
        Ok(vec![assigned(9).into()]),
    );
}

#[test]
fn assigning_a_second_leader_records_it_too() {
    check(
        vec![formed().into(), assigned(9).into()],
        assign(10),
        Ok(vec![assigned(10).into()]),
    );
}

#[test]
fn assigning_a_leader_already_assigned_records_nothing() {
    check(
        vec![formed().into(), assigned(9).into()],
        assign(9),
        Ok(vec![]),
    );
}

#[test]
fn assigning_a_leader_to_a_team_that_does_not_exist_is_rejected() {
    check(vec![], assign(9), Err(Rejection::TeamNotFound));
}

#[test]
fn renaming_a_team_records_team_renamed() {
    check(
        vec![formed().into()],
        rename("West Coast"),
        Ok(vec![
            TeamRenamed {
                team_id: team(),
                name: parse("West Coast"),
            }
            .into(),
        ]),
    );
}

#[test]
fn renaming_a_team_to_its_current_name_records_nothing() {
    let renamed = TeamRenamed {
        team_id: team(),
        name: parse::<Name>("North"),
    };
    check(
        vec![formed().into(), renamed.into()],
        rename("North"),
        Ok(vec![]),
    );
}

#[test]
fn renaming_a_team_that_does_not_exist_is_rejected() {
    check(vec![], rename("North"), Err(Rejection::TeamNotFound));
}

#[test]
fn team_names_that_differ_only_in_case_and_spacing_are_one_name() {
    use trellis_domain::values::same_name;
    assert!(same_name("Northside SDRs", "  northside sdrs "));
    // A page shows runs of spaces, and a tab or line break, as one space.
    assert!(same_name("Northside SDRs", "Northside  SDRs"));
    assert!(same_name("Northside SDRs", "Northside\tSDRs"));
    assert!(!same_name("Northside SDRs", "Northside SDRs 2"));
    // Taken by another, quoted as it writes it; never by itself.
    use trellis_domain::values::taken_by;
    let teams = || [(1, parse("Northside SDRs")), (2, parse("East"))];
    assert_eq!(
        taken_by(teams(), &2, &parse("northside sdrs ")),
        Some(parse("Northside SDRs"))
    );
    assert_eq!(taken_by(teams(), &1, &parse("Northside SDRs")), None);
    assert_eq!(taken_by(teams(), &3, &parse("West")), None);
}
