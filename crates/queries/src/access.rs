//! Who may read what (the read half of `trellis_http::policy`).
//!
//! - admin, auditor: everything, private notes included.
//! - service: everything, with the grant [`READS_GRANT`].
//! - leader: the reps of the teams their token lists (the rep's current
//!   team), those teams' views, and their own scorecard.
//! - rep: their own profile, timeline, state as of an instant, audit trail
//!   and review packet, with every private note taken out (and, in the audit
//!   trail, the content of feedback and coaching sessions retracted since:
//!   `trellis_domain::rep::hidden_from_rep`); nothing else.

use trellis_domain::{LeaderId, RepId, TeamId};
use trellis_http::auth::{Claims, Role};
use trellis_http::problem::ApiError;

/// The grant a service token needs to read.
pub const READS_GRANT: &str = "reads:read";

/// How much of a rep's records the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Everything, private notes included.
    Full,
    /// The rep's own view: no private notes, nor what the domain hides from
    /// the rep (`trellis_domain::rep::hidden_from_rep`).
    OwnRecord,
}

fn service_without(claims: &Claims) -> ApiError {
    ApiError::Forbidden(format!(
        "this service token lacks the grant \"{READS_GRANT}\"; ask an admin for a token that \
         has it (it has: {})",
        if claims.grants.is_empty() {
            "none".to_owned()
        } else {
            claims.grants.join(", ")
        }
    ))
}

/// The checks that need nothing loaded: a rep asking about someone else, a
/// service without the grant. Call before loading, so nothing about another
/// rep's existence leaks.
pub fn rep_precheck(claims: &Claims, rep_id: RepId) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin | Role::Auditor | Role::Leader => Ok(()),
        Role::Service if claims.has_grant(READS_GRANT) => Ok(()),
        Role::Service => Err(service_without(claims)),
        Role::Rep if claims.subject_id() == Some(rep_id.as_uuid()) => Ok(()),
        Role::Rep => Err(ApiError::Forbidden(
            "a rep may read only their own records".into(),
        )),
    }
}

/// A read about `rep_id`, whose current team is `team`.
pub fn rep_read(claims: &Claims, rep_id: RepId, team: TeamId) -> Result<View, ApiError> {
    rep_precheck(claims, rep_id)?;
    match claims.role {
        Role::Rep => Ok(View::OwnRecord),
        Role::Leader if claims.teams.contains(&team.as_uuid()) => Ok(View::Full),
        Role::Leader => Err(ApiError::Forbidden(
            "this rep is not in a team you lead; a leader reads only their own teams' reps".into(),
        )),
        Role::Admin | Role::Auditor | Role::Service => Ok(View::Full),
    }
}

/// A read about a team.
pub fn team_read(claims: &Claims, team: TeamId) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin | Role::Auditor => Ok(()),
        Role::Service if claims.has_grant(READS_GRANT) => Ok(()),
        Role::Service => Err(service_without(claims)),
        Role::Leader if claims.teams.contains(&team.as_uuid()) => Ok(()),
        Role::Leader => Err(ApiError::Forbidden(
            "you do not lead this team; a leader reads only their own teams".into(),
        )),
        Role::Rep => Err(ApiError::Forbidden(
            "a rep may read only their own records, not a team's".into(),
        )),
    }
}

/// A leader's scorecard: the leader themselves, and those who read everything.
pub fn leader_read(claims: &Claims, leader: LeaderId) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin | Role::Auditor => Ok(()),
        Role::Service if claims.has_grant(READS_GRANT) => Ok(()),
        Role::Service => Err(service_without(claims)),
        Role::Leader if claims.subject_id() == Some(leader.as_uuid()) => Ok(()),
        Role::Leader => Err(ApiError::Forbidden(
            "a leader reads only their own scorecard".into(),
        )),
        Role::Rep => Err(ApiError::Forbidden(
            "a rep may read only their own records, not a leader's scorecard".into(),
        )),
    }
}

/// The whole log (the global feed): auditors, admins and granted services.
pub fn log_read(claims: &Claims) -> Result<(), ApiError> {
    match claims.role {
        Role::Admin | Role::Auditor => Ok(()),
        Role::Service if claims.has_grant(READS_GRANT) => Ok(()),
        Role::Service => Err(service_without(claims)),
        Role::Leader | Role::Rep => Err(ApiError::Forbidden(
            "the global feed is for auditors and services: it holds every rep's records".into(),
        )),
    }
}

/// The competency framework: everyone signed in (a rep reads the rubric
/// they are assessed against); a service needs the grant.
pub fn framework_read(claims: &Claims) -> Result<(), ApiError> {
    match claims.role {
        Role::Service if !claims.has_grant(READS_GRANT) => Err(service_without(claims)),
        _ => Ok(()),
    }
}

/// Which teams' records a collection read lists for `claims`: every team
/// (`None`), the teams a leader leads, or, for a rep, a refusal.
pub fn teams_listed(claims: &Claims) -> Result<Option<Vec<TeamId>>, ApiError> {
    match claims.role {
        Role::Admin | Role::Auditor => Ok(None),
        Role::Service if claims.has_grant(READS_GRANT) => Ok(None),
        Role::Service => Err(service_without(claims)),
        Role::Leader => Ok(Some(
            claims
                .teams
                .iter()
                .copied()
                .map(TeamId::from_uuid)
                .collect(),
        )),
        Role::Rep => Err(ApiError::Forbidden(
            "a rep reads their own records, not lists of teams or reps".into(),
        )),
    }
}
