//! Competency: a skill in the framework with a rubric of levels 1–5. Stream category `competency`.
//!
//! A revision that changes nothing is accepted and records nothing. A retired
//! competency cannot be revised or retired again; its past assessments stay valid.

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::ids::{CompetencyId, stream_id};
use crate::payload::event_enum;
use crate::rejection::Rejection;
use crate::values::{Name, NonEmptyText, Rubric};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetencyDefined {
    pub competency_id: CompetencyId,
    pub name: Name,
    pub description: NonEmptyText,
    pub rubric: Rubric,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetencyRevised {
    pub competency_id: CompetencyId,
    pub name: Name,
    pub description: NonEmptyText,
    pub rubric: Rubric,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetencyRetired {
    pub competency_id: CompetencyId,
    pub reason: NonEmptyText,
}

event_enum! {
    /// Everything that can happen to a competency.
    pub enum CompetencyEvent in "competency" {
        Defined(CompetencyDefined) = ("CompetencyDefined", v 1),
        Revised(CompetencyRevised) = ("CompetencyRevised", v 1),
        Retired(CompetencyRetired) = ("CompetencyRetired", v 1),
    }
}

impl CompetencyId {
    /// This competency's stream, `competency-<uuid>`.
    pub fn stream_id(&self) -> String {
        stream_id(CompetencyEvent::CATEGORY, self.as_uuid())
    }
}

/// A competency as other aggregates need to know it; the caller reads it from
/// the competency's stream and puts it into commands such as `GiveFeedback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompetencyStatus {
    /// No such competency was ever defined.
    Unknown,
    Active,
    Retired,
}

/// What a competency aggregate remembers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CompetencyState {
    #[default]
    NotDefined,
    Defined {
        competency_id: CompetencyId,
        name: Name,
        description: NonEmptyText,
        rubric: Rubric,
        retired: bool,
    },
}

impl CompetencyState {
    /// Whether the competency can be used for new feedback and assessments.
    pub fn status(&self) -> CompetencyStatus {
        match self {
            CompetencyState::NotDefined => CompetencyStatus::Unknown,
            CompetencyState::Defined { retired: false, .. } => CompetencyStatus::Active,
            CompetencyState::Defined { retired: true, .. } => CompetencyStatus::Retired,
        }
    }

    /// The name no other competency may take: a defined one's, until it is
    /// retired (a retired competency's name may be given again; it cannot
    /// be revised).
    pub fn name_in_use(&self) -> Option<&Name> {
        match self {
            CompetencyState::Defined {
                name,
                retired: false,
                ..
            } => Some(name),
            _ => None,
        }
    }
}

/// What can be asked of a competency.
#[derive(Debug, Clone, PartialEq)]
pub enum CompetencyCommand {
    /// `name_taken`: the name, as written there, of a competency in use
    /// (not retired) called `name` already (ignoring case and surrounding
    /// space, [`crate::values::same_name`]), as the caller read the framework.
    DefineCompetency {
        competency_id: CompetencyId,
        name: Name,
        description: NonEmptyText,
        rubric: Rubric,
        name_taken: Option<Name>,
    },
    /// `name_taken`: another competency in use is called `name`, as for
    /// [`CompetencyCommand::DefineCompetency`].
    ReviseCompetency {
        name: Name,
        description: NonEmptyText,
        rubric: Rubric,
        name_taken: Option<Name>,
    },
    RetireCompetency {
        reason: NonEmptyText,
    },
}

/// The competency aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompetencyAggregate;

impl Aggregate for CompetencyAggregate {
    const CATEGORY: &'static str = CompetencyEvent::CATEGORY;
    type State = CompetencyState;
    type Command = CompetencyCommand;
    type Event = CompetencyEvent;

    fn decide(
        state: &CompetencyState,
        command: CompetencyCommand,
    ) -> Result<Vec<CompetencyEvent>, Rejection> {
        decide(state, command)
    }

    fn evolve(state: CompetencyState, event: &CompetencyEvent) -> CompetencyState {
        evolve(state, event)
    }
}

pub fn decide(
    state: &CompetencyState,
    command: CompetencyCommand,
) -> Result<Vec<CompetencyEvent>, Rejection> {
    use CompetencyCommand::*;
    match (state, command) {
        (
            CompetencyState::NotDefined,
            DefineCompetency {
                name_taken: Some(taken),
                ..
            },
        ) => Err(Rejection::CompetencyNameTaken {
            name: taken.to_string(),
        }),
        (
            CompetencyState::NotDefined,
            DefineCompetency {
                competency_id,
                name,
                description,
                rubric,
                name_taken: None,
            },
        ) => Ok(vec![
            CompetencyDefined {
                competency_id,
                name,
                description,
                rubric,
            }
            .into(),
        ]),
        (CompetencyState::NotDefined, _) => Err(Rejection::CompetencyNotFound),
        (CompetencyState::Defined { .. }, DefineCompetency { .. }) => {
            Err(Rejection::CompetencyAlreadyDefined)
        }
        (CompetencyState::Defined { retired: true, .. }, _) => Err(Rejection::CompetencyRetired),
        (
            CompetencyState::Defined {
                competency_id,
                name: old_name,
                description: old_description,
                rubric: old_rubric,
                ..
            },
            ReviseCompetency {
                name,
                description,
                rubric,
                name_taken,
            },
        ) => {
            if (&name, &description, &rubric) == (old_name, old_description, old_rubric) {
                return Ok(vec![]);
            }
            if let Some(taken) = name_taken {
                return Err(Rejection::CompetencyNameTaken {
                    name: taken.to_string(),
                });
            }
            Ok(vec![
                CompetencyRevised {
                    competency_id: *competency_id,
                    name,
                    description,
                    rubric,
                }
                .into(),
            ])
        }
        (CompetencyState::Defined { competency_id, .. }, RetireCompetency { reason }) => Ok(vec![
            CompetencyRetired {
                competency_id: *competency_id,
                reason,
            }
            .into(),
        ]),
    }
}

pub fn evolve(state: CompetencyState, event: &CompetencyEvent) -> CompetencyState {
    match (state, event) {
        (CompetencyState::NotDefined, CompetencyEvent::Defined(e)) => CompetencyState::Defined {
            competency_id: e.competency_id,
            name: e.name.clone(),
            description: e.description.clone(),
            rubric: e.rubric.clone(),
            retired: false,
        },
        (
            CompetencyState::Defined {
                competency_id,
                retired,
                ..
            },
            CompetencyEvent::Revised(e),
        ) => CompetencyState::Defined {
            competency_id,
            name: e.name.clone(),
            description: e.description.clone(),
            rubric: e.rubric.clone(),
            retired,
        },
        (
            CompetencyState::Defined {
                competency_id,
                name,
                description,
                rubric,
                ..
            },
            CompetencyEvent::Retired(_),
        ) => CompetencyState::Defined {
            competency_id,
            name,
            description,
            rubric,
            retired: true,
        },
        (state, _) => state,
    }
}
