//! Team: a group of reps led by one or more leaders. Stream category `team`.
//!
//! Renaming a team to the name it already has, or assigning a leader who is
//! already assigned, is accepted and records nothing (so retries are harmless).

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::ids::{LeaderId, TeamId, stream_id};
use crate::payload::event_enum;
use crate::rejection::Rejection;
use crate::values::{Name, PersonName};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamFormed {
    pub team_id: TeamId,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderAssigned {
    pub team_id: TeamId,
    pub leader_id: LeaderId,
    pub leader_name: PersonName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRenamed {
    pub team_id: TeamId,
    pub name: Name,
}

event_enum! {
    /// Everything that can happen to a team.
    pub enum TeamEvent in "team" {
        Formed(TeamFormed) = ("TeamFormed", v 1),
        LeaderAssigned(LeaderAssigned) = ("LeaderAssigned", v 1),
        Renamed(TeamRenamed) = ("TeamRenamed", v 1),
    }
}

impl TeamId {
    /// This team's stream, `team-<uuid>`.
    pub fn stream_id(&self) -> String {
        stream_id(TeamEvent::CATEGORY, self.as_uuid())
    }
}

/// What a team aggregate remembers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TeamState {
    /// No `TeamFormed` yet.
    #[default]
    NotFormed,
    Formed {
        team_id: TeamId,
        name: Name,
        leaders: Vec<LeaderId>,
    },
}

/// What can be asked of a team. Commands on an existing team act on the loaded stream.
#[derive(Debug, Clone, PartialEq)]
pub enum TeamCommand {
    /// `name_taken`: the name, as written there, of another team called
    /// `name` already (ignoring case and surrounding space,
    /// [`crate::values::same_name`]), as the caller read the teams.
    FormTeam {
        team_id: TeamId,
        name: Name,
        name_taken: Option<Name>,
    },
    AssignLeader {
        leader_id: LeaderId,
        leader_name: PersonName,
    },
    /// `name_taken`: another team is called `name` already, as for
    /// [`TeamCommand::FormTeam`].
    RenameTeam {
        name: Name,
        name_taken: Option<Name>,
    },
}

/// The team aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamAggregate;

impl Aggregate for TeamAggregate {
    const CATEGORY: &'static str = TeamEvent::CATEGORY;
    type State = TeamState;
    type Command = TeamCommand;
    type Event = TeamEvent;

    fn decide(state: &TeamState, command: TeamCommand) -> Result<Vec<TeamEvent>, Rejection> {
        decide(state, command)
    }

    fn evolve(state: TeamState, event: &TeamEvent) -> TeamState {
        evolve(state, event)
    }
}

pub fn decide(state: &TeamState, command: TeamCommand) -> Result<Vec<TeamEvent>, Rejection> {
    use TeamCommand::*;
    match (state, command) {
        (
            TeamState::NotFormed,
            FormTeam {
                name_taken: Some(taken),
                ..
            },
        ) => Err(Rejection::TeamNameTaken {
            name: taken.to_string(),
        }),
        (TeamState::NotFormed, FormTeam { team_id, name, .. }) => {
            Ok(vec![TeamFormed { team_id, name }.into()])
        }
        (TeamState::NotFormed, _) => Err(Rejection::TeamNotFound),
        (TeamState::Formed { .. }, FormTeam { .. }) => Err(Rejection::TeamAlreadyExists),
        (TeamState::Formed { leaders, .. }, AssignLeader { leader_id, .. })
            if leaders.contains(&leader_id) =>
        {
            Ok(vec![])
        }
        (
            TeamState::Formed { team_id, .. },
            AssignLeader {
                leader_id,
                leader_name,
            },
        ) => Ok(vec![
            LeaderAssigned {
                team_id: *team_id,
                leader_id,
                leader_name,
            }
            .into(),
        ]),
        (TeamState::Formed { name: current, .. }, RenameTeam { name, .. }) if name == *current => {
            Ok(vec![])
        }
        (
            TeamState::Formed { .. },
            RenameTeam {
                name_taken: Some(taken),
                ..
            },
        ) => Err(Rejection::TeamNameTaken {
            name: taken.to_string(),
        }),
        (TeamState::Formed { team_id, .. }, RenameTeam { name, .. }) => Ok(vec![
            TeamRenamed {
                team_id: *team_id,
                name,
            }
            .into(),
        ]),
    }
}

pub fn evolve(state: TeamState, event: &TeamEvent) -> TeamState {
    match (state, event) {
        (TeamState::NotFormed, TeamEvent::Formed(e)) => TeamState::Formed {
            team_id: e.team_id,
            name: e.name.clone(),
            leaders: vec![],
        },
        (
            TeamState::Formed {
                team_id,
                name,
                mut leaders,
            },
            TeamEvent::LeaderAssigned(e),
        ) => {
            if !leaders.contains(&e.leader_id) {
                leaders.push(e.leader_id);
            }
            TeamState::Formed {
                team_id,
                name,
                leaders,
            }
        }
        (
            TeamState::Formed {
                team_id, leaders, ..
            },
            TeamEvent::Renamed(e),
        ) => TeamState::Formed {
            team_id,
            name: e.name.clone(),
            leaders,
        },
        (state, _) => state,
    }
}
