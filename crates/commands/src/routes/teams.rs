//! Teams: form, assign a leader, rename. Each handler names its body; the
//! conversion below it parses the body into the team command.

use axum::response::Response;
use trellis_domain::{LeaderId, Name, PersonName, TeamAggregate, TeamCommand, TeamId};

use crate::edge::{Edge, Entity, WriteRequest, field};
use crate::policy::Scope;
use crate::respond::WriteErrors;
use crate::wire::{self, Recorded};
use trellis_http::problem::ApiError;

/// Form a team.
#[utoipa::path(post, path = "/v1/teams", tag = "teams", request_body = wire::FormTeam,
    responses((status = 201, description = "The team was formed", body = Recorded), WriteErrors))]
pub async fn form(request: WriteRequest<wire::FormTeam>) -> Result<Response, ApiError> {
    request
        .admin::<TeamAggregate>(Scope::Teams, Entity::New)
        .await
}

impl TryFrom<Edge<'_, wire::FormTeam>> for TeamCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::FormTeam>) -> Result<Self, ApiError> {
        Ok(TeamCommand::FormTeam {
            team_id: TeamId::from_uuid(edge.id),
            name: field("name", Name::try_from(edge.body.name.as_str()))?,
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
        .admin::<TeamAggregate>(Scope::Teams, Entity::Named)
        .await
}

impl TryFrom<Edge<'_, wire::RenameTeam>> for TeamCommand {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::RenameTeam>) -> Result<Self, ApiError> {
        let name = field("name", Name::try_from(edge.body.name.as_str()))?;
        Ok(TeamCommand::RenameTeam { name })
    }
}
