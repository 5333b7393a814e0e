//! Who may do what.
//!
//! - admin: everything.
//! - leader: writes for reps in the teams their token lists; acts as
//!   themselves (feedback, coaching, plans are recorded under their id).
//!   Who is on a team (a rep joining, moving, changing role, departing) is
//!   an admin's to record, as in the dashboard's Set up.
//! - rep: acknowledges their own feedback and expectations, raises their own
//!   support requests, completes or drops the action items they own;
//!   nothing else.
//! - auditor: reads everything, writes nothing.
//! - service: what its grants allow (`<scope>:write`), for every rep.
//!
//! What each rep command asks of the caller is [`rep_access`].

use trellis_domain::rep::{Owner, RepState};
use trellis_domain::{ActionItemId, LeaderId, RepCommand, RepId};

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
    /// Admins and services granted the scope: who is on which team, in
    /// which role (a rep joining, moving, changing role, departing).
    Staffing(Scope),
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
    admins_and_granted(
        claims,
        scope,
        "only an admin may change teams, the competency framework and standards",
    )
}

/// Admins, and services granted `scope`; `refusal` tells a leader or a rep
/// why not.
fn admins_and_granted(claims: &Claims, scope: Scope, refusal: &str) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin => Ok(()),
        Role::Service if claims.has_grant(scope.grant()) => Ok(()),
        Role::Service => Err(service_without(claims, scope)),
        Role::Auditor => Err(auditor()),
        Role::Leader | Role::Rep => Err(ApiError::Forbidden(refusal.into())),
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

/// What a rep route asks of the caller, as far as the route alone says:
/// [`RepAccess`] without what only the rep's stream tells (their team, who
/// owns an action item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// [`RepAccess::Lead`], and a leader's team still to check.
    Lead(Scope),
    /// [`RepAccess::LeadOrSelf`] or [`RepAccess::ActionItem`].
    LeadOrSelf(Scope),
    /// [`RepAccess::Staffing`]: nothing left to check.
    Staffing(Scope),
    /// [`RepAccess::Admin`]: nothing left to check.
    Admin,
}

impl RepAccess {
    /// What of this the route alone decides.
    pub fn route(self) -> RouteAccess {
        match self {
            RepAccess::Lead(scope) => RouteAccess::Lead(scope),
            RepAccess::LeadOrSelf(scope) => RouteAccess::LeadOrSelf(scope),
            RepAccess::ActionItem(_) => RouteAccess::LeadOrSelf(Scope::Coaching),
            RepAccess::Staffing(scope) => RouteAccess::Staffing(scope),
            RepAccess::Admin => RouteAccess::Admin,
        }
    }
}

/// What a rep may write, said to a rep refused anything else.
const REP_MAY: &str = "a rep may acknowledge feedback and expectations, raise support requests \
                       and complete or drop their own action items; nothing else";

/// May the caller write what `access` names about `rep` (`None`: a rep
/// not made yet), as far as the route alone says? Checked before the
/// body is read, so a caller the route refuses is told so, not what their
/// body lacks; [`rep_write`] checks the rest once the rep is read.
pub fn rep_route(claims: &Claims, rep: Option<RepId>, access: RouteAccess) -> Result<(), ApiError> {
    let scope = match access {
        RouteAccess::Lead(scope) | RouteAccess::LeadOrSelf(scope) => scope,
        RouteAccess::Staffing(scope) => {
            return admins_and_granted(
                claims,
                scope,
                "only an admin may record a rep joining, moving team, changing role or \
                 departing (Set up, in the dashboard); ask an admin to record it",
            );
        }
        RouteAccess::Admin => return erasure(claims),
    };
    match claims.role {
        Role::Admin | Role::Leader => Ok(()),
        Role::Service if claims.has_grant(scope.grant()) => Ok(()),
        Role::Service => Err(service_without(claims, scope)),
        Role::Auditor => Err(auditor()),
        Role::Rep => {
            let is_self = rep.is_some_and(|rep| claims.subject_id() == Some(rep.as_uuid()));
            match access {
                _ if !is_self => Err(ApiError::Forbidden(
                    "a rep may only write to their own record".into(),
                )),
                RouteAccess::LeadOrSelf(_) => Ok(()),
                _ => Err(ApiError::Forbidden(REP_MAY.into())),
            }
        }
    }
}

/// Before a body is read: may the caller write with [`RepAccess::Lead`]
/// of `scope` for any rep at all? [`rep_route`] for no rep in particular:
/// admins, leaders (whose teams are checked rep by rep once the body names
/// them), services granted `scope`.
pub fn leads_some(claims: &Claims, scope: Scope) -> Result<(), ApiError> {
    match claims.role {
        Role::Rep => Err(ApiError::Forbidden(REP_MAY.into())),
        _ => rep_route(claims, None, RouteAccess::Lead(scope)),
    }
}

/// A write about the rep `rep_id`, whose stream folded to `state`: what
/// the route decides ([`rep_route`]), then a leader's team and the owner
/// of an action item.
pub fn rep_write(
    claims: &Claims,
    rep_id: RepId,
    state: &RepState,
    access: RepAccess,
) -> Result<(), ApiError> {
    rep_route(claims, Some(rep_id), access.route())?;
    match (claims.role, access) {
        (
            Role::Leader,
            RepAccess::Lead(_) | RepAccess::LeadOrSelf(_) | RepAccess::ActionItem(_),
        ) => {
            match state {
                RepState::Joined(rep) if !claims.teams.contains(&rep.team_id.as_uuid()) => {
                    Err(ApiError::Forbidden(
                        "this rep is not in a team you lead; only their own leaders may write \
                         for them"
                            .into(),
                    ))
                }
                // One of theirs, or an unknown rep: let the domain say so (404).
                _ => Ok(()),
            }
        }
        (Role::Rep, RepAccess::ActionItem(item)) => {
            let owns = matches!(state, RepState::Joined(rep)
                if rep.action_items.get(&item).is_some_and(|i| i.owner == Owner::Rep));
            if owns {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "a rep may complete or drop only the action items they own".into(),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// What each rep command asks of the caller.
pub fn rep_access(command: &RepCommand) -> RepAccess {
    use RepAccess::{Lead, LeadOrSelf, Staffing};
    use RepCommand as C;
    match command {
        C::JoinRep { .. }
        | C::MoveTeam { .. }
        | C::ChangeRole { .. }
        | C::Rename { .. }
        | C::Depart { .. } => Staffing(Scope::Reps),
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
/// folded to `state`? [`rep_write`] with the command's [`rep_access`].
pub fn rep_command(
    claims: &Claims,
    rep_id: RepId,
    state: &RepState,
    command: &RepCommand,
) -> Result<(), ApiError> {
    rep_write(claims, rep_id, state, rep_access(command))
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
