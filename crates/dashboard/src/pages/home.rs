//! `GET /home`: the teams the viewer may see, with their leaders.

use std::fmt::Write;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use trellis_http::auth::Role;

use super::leader_links;
use crate::auth::Viewer;
use crate::data;
use crate::error::PageError;
use crate::html::{esc, page};
use crate::state::DashboardState;

pub(crate) async fn page_handler(
    state: DashboardState,
    viewer: Viewer,
) -> Result<Response, PageError> {
    if viewer.is_rep() {
        return Ok(Redirect::to(&format!("/reps/{}", viewer.claims().sub)).into_response());
    }
    if viewer.claims().role == Role::Service {
        viewer.may_see_team(uuid::Uuid::nil())?;
    }
    let teams: Vec<_> = data::all_teams(&state)
        .await?
        .into_iter()
        .filter(|t| viewer.reads_all() || viewer.claims().teams.contains(&t.team_id.as_uuid()))
        .collect();
    let mut body = String::new();
    body.push_str("<h1>Teams</h1>");
    if teams.is_empty() {
        body.push_str(
            "<p class=\"notice\">No team to show yet. Either none has been formed, or the read \
             models are still catching up with the log.</p>",
        );
    }
    body.push_str("<div class=\"grid\">");
    for team in &teams {
        let _ = write!(
            body,
            "<section class=\"card\"><h2 style=\"margin-top:0\"><a href=\"/teams/{}\">{}</a></h2>\
             <p class=\"muted\">{}</p><p>Led by ",
            team.team_id,
            esc(team.name.as_ref()),
            match team.reps.len() {
                0 => "No rep has been on this team yet.".to_owned(),
                1 => "1 rep has been on this team.".to_owned(),
                n => format!("{n} reps have been on this team."),
            }
        );
        body.push_str(&leader_links(&viewer, &team.leaders));
        body.push_str(".</p></section>");
    }
    body.push_str("</div>");
    Ok(Html(page("Teams", Some(viewer.signed()), &body)).into_response())
}

pub(crate) async fn handler(
    State(state): State<DashboardState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    page_handler(state, viewer).await
}
