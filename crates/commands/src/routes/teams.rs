//! Teams: form, assign a leader, rename. Each handler names its body; the
//! conversion below it parses the body into the team command.

use axum::response::Response;
use trellis_domain::values::taken_by;
use trellis_domain::{LeaderId, Name, PersonName, TeamAggregate, TeamCommand, TeamId, TeamState};
use uuid::Uuid;

use crate::edge::{Edge, Entity, WriteRequest, field};
use crate::policy::Scope;
use crate::respond::WriteErrors;
use crate::state::CommandState;
use crate::wire::{self, Recorded};
use crate::write::states_of;
use trellis_http::problem::ApiError;

/// Form a team.
#[utoipa::path(post, path = "/v1/teams", tag = "teams", request_body = wire::FormTeam,
    responses((status = 201, description = "The team was formed", body = Recorded), WriteErrors))]
pub async fn form(request: WriteRequest<wire::FormTeam>) -> Result<Response, ApiError> {
    request
        .admin_given::<TeamAggregate, _, _>(Scope::Teams, Entity::New, with_name_taken)
        .await
}

/// `command` with whether a team other than `team` is already called the
/// name it gives (ignoring case and surrounding space), read from the
/// teams' streams: two teams of one name cannot be told apart in any
/// list. Teams are few, and named rarely.
async fn with_name_taken(
    app: CommandState,
    team: Uuid,
    mut command: TeamCommand,
) -> Result<TeamCommand, ApiError> {
    let (TeamCommand::FormTeam {
        name, name_taken, ..
    }
    | TeamCommand::RenameTeam { name, name_taken }) = &mut command
    else {
        return Ok(command);
    };
    let teams = states_of::<TeamAggregate>(app.store()).await?;
    let names = teams.into_iter().filter_map(|(id, state)| match state {
        TeamState::Formed { name, .. } => Some((id, name)),
        TeamState::NotFormed => None,
    });
    *name_taken = taken_by(names, &team, name);
    Ok(command)
}

impl TryFrom<Edge<'_, wire::FormTeam>> for TeamCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::FormTeam>) -> Result<Self, ApiError> {
        Ok(TeamCommand::FormTeam {
            team_id: TeamId::from_uuid(edge.id),
            name: field("name", Name::try_from(edge.body.name.as_str()))?,
            // Read before the command executes (`with_name_taken`).
            name_taken: None,
        })
    }
}

/// Assign a leader to a team.
#[utoipa::path(post, path = "/v1/teams/{team_id}/leaders", tag = "teams",
    params(("team_id" = uuid::Uuid, Path, description = "The team")),
    request_body = wire::AssignLeader,
    responses((status = 200, description = "The leader leads the team", body = Recorded), WriteErrors))]
pub async fn assign_leader(
    request: WriteRequest<wire::AssignLeader>,
) -> Result<Response, ApiError> {
    request
        .admin::<TeamAggregate>(Scope::Teams, Entity::Named)
        .await
}

impl TryFrom<Edge<'_, wire::AssignLeader>> for TeamCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::AssignLeader>) -> Result<Self, ApiError> {
        let b = edge.body;
        Ok(TeamCommand::AssignLeader {
            leader_name: field("leader_name", PersonName::try_from(b.leader_name.as_str()))?,
            leader_id: LeaderId::from_uuid(b.leader_id),
        })
    }
}

/// Rename a team.
#[utoipa::path(put, path = "/v1/teams/{team_id}/name", tag = "teams",
    params(("team_id" = uuid::Uuid, Path, description = "The team")),
    request_body = wire::RenameTeam,
    responses((status = 200, description = "The team has its new name", body = Recorded), WriteErrors))]
pub async fn rename(request: WriteRequest<wire::RenameTeam>) -> Result<Response, ApiError> {
    request
        .admin_given::<TeamAggregate, _, _>(Scope::Teams, Entity::Named, with_name_taken)
        .await
}

impl TryFrom<Edge<'_, wire::RenameTeam>> for TeamCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RenameTeam>) -> Result<Self, ApiError> {
        let name = field("name", Name::try_from(edge.body.name.as_str()))?;
        Ok(TeamCommand::RenameTeam {
            name,
            name_taken: None,
        })
    }
}
