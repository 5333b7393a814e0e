//! Teams: form, assign a leader, rename.

use axum::extract::State;
use axum::response::Response;
use trellis_domain::{LeaderId, Name, PersonName, TeamAggregate, TeamCommand, TeamId};

use super::{PathIds, respond, stream};
use crate::extract::{JsonBody, Principal, WriteHeaders};
use crate::openapi::WriteErrors;
use crate::policy::{Scope, admin_write};
use crate::problem::{ApiError, Fields};
use crate::wire::{self, Recorded};
use crate::write::{WriteCtx, execute, load_fact};
use crate::{AppState, valid};

/// Form a team.
#[utoipa::path(post, path = "/v1/teams", tag = "teams", request_body = wire::FormTeam,
    responses((status = 201, description = "The team was formed", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn form(
    State(app): State<AppState>,
    Principal(claims): Principal,
    headers: WriteHeaders,
    body: JsonBody<wire::FormTeam>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Teams)?;
    let mut f = Fields::default();
    let name = f.check("name", Name::try_from(body.value.name.as_str()));
    f.finish()?;
    let name = valid!(name);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let team_id = TeamId::from_uuid(ctx.new_id("team"));
    let written = execute::<TeamAggregate>(&app, &ctx, &stream("team", team_id.as_uuid())?, |_| {
        Ok(TeamCommand::FormTeam {
            team_id,
            name: name.clone(),
        })
    })
    .await?;
    Ok(respond(true, Some(team_id.as_uuid()), written))
}

/// Assign a leader to a team.
#[utoipa::path(post, path = "/v1/teams/{team_id}/leaders", tag = "teams",
    params(("team_id" = uuid::Uuid, Path, description = "The team")),
    request_body = wire::AssignLeader,
    responses((status = 200, description = "The leader leads the team", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn assign_leader(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::AssignLeader>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Teams)?;
    let team_id = path.uuid("team_id")?;
    let mut f = Fields::default();
    let leader_name = f.check(
        "leader_name",
        PersonName::try_from(body.value.leader_name.as_str()),
    );
    f.finish()?;
    let (leader_name, leader_id) = (
        valid!(leader_name),
        LeaderId::from_uuid(body.value.leader_id),
    );
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = execute::<TeamAggregate>(&app, &ctx, &stream("team", team_id)?, |_| {
        Ok(TeamCommand::AssignLeader {
            leader_id,
            leader_name: leader_name.clone(),
        })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// Rename a team.
#[utoipa::path(put, path = "/v1/teams/{team_id}/name", tag = "teams",
    params(("team_id" = uuid::Uuid, Path, description = "The team")),
    request_body = wire::RenameTeam,
    responses((status = 200, description = "The team has its new name", body = Recorded), WriteErrors),
    security(("bearer" = [])))]
pub async fn rename(
    State(app): State<AppState>,
    Principal(claims): Principal,
    path: PathIds,
    headers: WriteHeaders,
    body: JsonBody<wire::RenameTeam>,
) -> Result<Response, ApiError> {
    admin_write(&claims, Scope::Teams)?;
    let team_id = path.uuid("team_id")?;
    let mut f = Fields::default();
    let name = f.check("name", Name::try_from(body.value.name.as_str()));
    f.finish()?;
    let name = valid!(name);
    let ctx = WriteCtx::new(&app, claims, headers, body.fingerprint);
    let written = execute::<TeamAggregate>(&app, &ctx, &stream("team", team_id)?, |_| {
        Ok(TeamCommand::RenameTeam { name: name.clone() })
    })
    .await?;
    Ok(respond(false, None, written))
}

/// Whether the team exists, for commands on reps that name it.
pub(crate) async fn team_exists(app: &AppState, team_id: TeamId) -> Result<bool, ApiError> {
    let team = load_fact::<TeamAggregate>(app, &stream("team", team_id.as_uuid())?).await?;
    Ok(team.version > 0)
}
