//! Who may do what.
//!
//! - admin: everything.
//! - leader: writes for reps in the teams their token lists; acts as
//!   themselves (feedback, coaching, plans are recorded under their id).
//! - rep: acknowledges their own feedback and expectations, raises their own
//!   support requests, completes or drops the action items they own;
//!   nothing else.
//! - auditor: reads everything, writes nothing.
//! - service: what its grants allow (`<scope>:write`), for every rep.
//!
//! What each rep command asks of the caller is [`rep_access`].

use trellis_domain::rep::{Owner, RepState};
use trellis_domain::{ActionItemId, LeaderId, RepCommand, RepId, TeamId};

use trellis_http::auth::{Claims, Role};
use trellis_http::problem::ApiError;

/// The kinds of write a service can be granted, as `<scope>:write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Teams,
    Framework,
    Reps,
    Coaching,
    Measurements,
    Support,
    Plans,
    Corrections,
    Reviews,
}

impl Scope {
    pub fn grant(self) -> &'static str {
        match self {
            Scope::Teams => "teams:write",
            Scope::Framework => "framework:write",
            Scope::Reps => "reps:write",
            Scope::Coaching => "coaching:write",
            Scope::Measurements => "measurements:write",
            Scope::Support => "support:write",
            Scope::Plans => "plans:write",
            Scope::Corrections => "corrections:write",
            Scope::Reviews => "reviews:write",
        }
    }
}

/// What a rep route asks of the caller.
#[derive(Debug, Clone, Copy)]
pub enum RepAccess {
    /// Leaders of the rep's team, admins, granted services.
    Lead(Scope),
    /// The same, and the rep themselves.
    LeadOrSelf(Scope),
    /// The same as `LeadOrSelf`, but the rep only for an item they own.
    ActionItem(ActionItemId),
    /// Admins alone (erasing a person's personal data).
    Admin,
}

fn auditor() -> ApiError {
    ApiError::Forbidden("auditors read everything and write nothing".into())
}

fn service_without(claims: &Claims, scope: Scope) -> ApiError {
    ApiError::Forbidden(format!(
        "this service token lacks the grant {:?}; ask an admin for a token that has it \
         (it has: {})",
        scope.grant(),
        if claims.grants.is_empty() {
            "none".to_owned()
        } else {
            claims.grants.join(", ")
        }
    ))
}

/// Team, competency and standard writes: admins, and services with the grant.
pub fn admin_write(claims: &Claims, scope: Scope) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin => Ok(()),
        Role::Service if claims.has_grant(scope.grant()) => Ok(()),
        Role::Service => Err(service_without(claims, scope)),
        Role::Auditor => Err(auditor()),
        Role::Leader | Role::Rep => Err(ApiError::Forbidden(
            "only an admin may change teams, the competency framework and standards".into(),
        )),
    }
}

/// Erasing a person's personal data, a rep's or a leader's: admins only
/// (not services: no grant covers it).
pub fn erasure(claims: &Claims) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin => Ok(()),
        Role::Auditor => Err(auditor()),
        _ => Err(ApiError::Forbidden(
            "only an admin may erase a person's personal data".into(),
        )),
    }
}

/// A write about the rep `rep_id`, whose stream folded to `state`.
/// `team` is where a new rep is joining (for `JoinRep`); otherwise the rep's own team.
pub fn rep_write(
    claims: &Claims,
    rep_id: RepId,
    state: &RepState,
    joining_team: Option<TeamId>,
    access: RepAccess,
) -> Result<(), ApiError> {
    let scope = match access {
        RepAccess::Lead(scope) | RepAccess::LeadOrSelf(scope) => scope,
        RepAccess::ActionItem(_) => Scope::Coaching,
        RepAccess::Admin => return erasure(claims),
    };
    let team = match state {
        RepState::Joined(rep) => Some(rep.team_id),
        RepState::NotJoined => joining_team,
    };
    match claims.role {
        Role::Admin => Ok(()),
        Role::Service if claims.has_grant(scope.grant()) => Ok(()),
        Role::Service => Err(service_without(claims, scope)),
        Role::Auditor => Err(auditor()),
        Role::Leader => match team {
            Some(team) if claims.teams.contains(&team.as_uuid()) => Ok(()),
            Some(_) => Err(ApiError::Forbidden(
                "this rep is not in a team you lead; only their own leaders may write for them"
                    .into(),
            )),
            // An unknown rep: let the domain say so (404).
            None => Ok(()),
        },
        Role::Rep => {
            let is_self = claims.subject_id() == Some(rep_id.as_uuid());
            let allowed = match access {
                RepAccess::Lead(_) | RepAccess::Admin => false,
                RepAccess::LeadOrSelf(_) => is_self,
                RepAccess::ActionItem(item) => {
                    is_self
                        && matches!(state, RepState::Joined(rep)
                            if rep.action_items.get(&item).is_some_and(|i| i.owner == Owner::Rep))
                }
            };
            if allowed {
                Ok(())
            } else if !is_self {
                Err(ApiError::Forbidden(
                    "a rep may only write to their own record".into(),
                ))
            } else {
                Err(ApiError::Forbidden(match access {
                    RepAccess::ActionItem(_) => {
                        "a rep may complete or drop only the action items they own".into()
                    }
                    _ => "a rep may acknowledge feedback and expectations, raise support \
                          requests and complete or drop their own action items; nothing else"
                        .into(),
                }))
            }
        }
    }
}

/// What each rep command asks of the caller.
pub fn rep_access(command: &RepCommand) -> RepAccess {
    use RepAccess::{Lead, LeadOrSelf};
    use RepCommand as C;
    match command {
        C::JoinRep { .. } | C::MoveTeam { .. } | C::ChangeRole { .. } | C::Depart { .. } => {
            Lead(Scope::Reps)
        }
        C::AcknowledgeExpectations { .. } => LeadOrSelf(Scope::Reps),
        C::GiveFeedback { .. }
        | C::AssessSkill { .. }
        | C::HoldCoachingSession { .. }
        | C::RecordTraining { .. } => Lead(Scope::Coaching),
        C::AcknowledgeFeedback { .. } => LeadOrSelf(Scope::Coaching),
        C::CompleteActionItem { completed, .. } => RepAccess::ActionItem(completed.action_item_id),
        C::DropActionItem { dropped, .. } => RepAccess::ActionItem(dropped.action_item_id),
        C::MeasurePerformance { .. } => Lead(Scope::Measurements),
        C::RaiseSupportRequest { .. } => LeadOrSelf(Scope::Support),
        C::AcknowledgeSupportRequest { .. } | C::ResolveSupportRequest { .. } => {
            Lead(Scope::Support)
        }
        C::StartImprovementPlan { .. }
        | C::RecordPlanCheckpoint { .. }
        | C::CloseImprovementPlan { .. } => Lead(Scope::Plans),
        C::CorrectFact { .. } => Lead(Scope::Corrections),
        C::HoldReview { .. } => Lead(Scope::Reviews),
        C::ErasePersonalData { .. } => RepAccess::Admin,
    }
}

/// May the caller send `command` about the rep `rep_id`, whose stream
/// folded to `state`? [`rep_write`] with the command's [`rep_access`] (and,
/// for a rep joining, the team they join).
pub fn rep_command(
    claims: &Claims,
    rep_id: RepId,
    state: &RepState,
    command: &RepCommand,
) -> Result<(), ApiError> {
    let joining_team = match command {
        RepCommand::JoinRep { joined, .. } => Some(joined.team_id),
        _ => None,
    };
    rep_write(claims, rep_id, state, joining_team, rep_access(command))
}

/// The leader a leader-authored record is attributed to: a leader acts as
/// themselves; an admin or a service names the leader in the body.
pub fn acting_leader(claims: &Claims, given: Option<LeaderId>) -> Result<LeaderId, ApiError> {
    match claims.role {
        Role::Leader => {
            let me = claims
                .subject_id()
                .map(LeaderId::from_uuid)
                .ok_or_else(|| {
                    ApiError::Forbidden("a leader token's subject must be an id".into())
                })?;
            match given {
                Some(other) if other != me => Err(ApiError::Forbidden(
                    "a leader records under their own id: leave leader_id out or set it to yours"
                        .into(),
                )),
                _ => Ok(me),
            }
        }
        // A rep or an auditor records nothing under a leader's name: the
        // policy's refusal, not a missing field.
        Role::Rep => Err(ApiError::Forbidden(
            "a rep may acknowledge feedback and expectations, raise support requests and \
             complete or drop their own action items; nothing a leader records"
                .into(),
        )),
        Role::Auditor => Err(auditor()),
        _ => given.ok_or_else(|| {
            ApiError::Validation(vec![trellis_http::problem::FieldError {
                field: "leader_id".into(),
                reason: "say which leader this is from: an admin or a service must name the \
                         leader (leaders' own tokens fill it in)"
                    .into(),
            }])
        }),
    }
}
