//! `GET /home`: the teams the viewer may see, with their leaders, and for
//! a leader what waits on them across their teams' reps.

use std::fmt::Write;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use trellis_domain::LeaderId;
use trellis_domain::rep::Owner;
use trellis_http::auth::Role;
use trellis_projections::growth::derive::RepStatus;
use trellis_projections::growth::{RepProfile, TeamDoc};

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
    // A leader's page leads with what waits on them; the teams follow.
    let mut teams_heading = ("h1", "h2");
    if let (Role::Leader, Some(me)) = (viewer.claims().role, viewer.claims().subject_id()) {
        let reps =
            data::profiles(&state, teams.iter().flat_map(|t| t.reps.iter().copied())).await?;
        body.push_str(&waiting_for(
            LeaderId::from_uuid(me),
            &teams,
            &reps,
            state.today(),
        ));
        teams_heading = ("h2", "h3");
    }
    let (title, card) = teams_heading;
    let _ = write!(body, "<{title}>Teams</{title}>");
    if teams.is_empty() {
        body.push_str(if viewer.is_admin() {
            "<p class=\"notice\">No team yet. Open <a href=\"/admin\">Set up</a> to form the \
             first team, add its leaders and hire its reps. (A team formed a moment ago shows \
             here once the pages have caught up with it.)</p>"
        } else {
            "<p class=\"notice\">No team of yours to show yet: an admin forms the teams and \
             adds their leaders. (A team formed a moment ago shows here once the pages have \
             caught up with it.)</p>"
        });
    }
    body.push_str("<div class=\"grid\">");
    for team in &teams {
        let _ = write!(
            body,
            "<section class=\"card\"><{card} style=\"margin-top:0\"><a href=\"/teams/{}\">{}</a></{card}>\
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

/// What waits on leader `me` on `today`, across the active reps now on
/// `teams`: the follow-ups they took on in coaching and have not closed,
/// and the support requests not yet resolved, each soonest first, with a
/// link to the rep's page where it is answered.
fn waiting_for(me: LeaderId, teams: &[TeamDoc], reps: &[RepProfile], today: NaiveDate) -> String {
    let ours = |r: &&RepProfile| {
        r.status == RepStatus::Active && teams.iter().any(|t| t.team_id == r.team_id)
    };
    let mut items: Vec<(NaiveDate, String)> = Vec::new();
    let mut requests: Vec<(NaiveDate, String)> = Vec::new();
    for rep in reps.iter().filter(ours) {
        let (id, name) = (rep.rep_id, esc(rep.name.as_ref()));
        for item in rep
            .open_action_items
            .iter()
            .filter(|i| i.owner == Owner::Leader(me))
        {
            items.push((
                item.due_on,
                format!(
                    "<li>{} <span class=\"muted\">for <a href=\"/reps/{id}#items\">{name}</a>, \
                     due {}</span>{}</li>",
                    esc(item.description.as_ref()),
                    item.due_on,
                    if item.overdue_on(today) {
                        " <span class=\"tag overdue\">overdue</span>"
                    } else {
                        ""
                    }
                ),
            ));
        }
        for request in rep
            .support_requests
            .iter()
            .filter(|r| r.resolved_on.is_none())
        {
            requests.push((
                request.raised_on,
                format!(
                    "<li><a href=\"/reps/{id}#support\">{name}</a>: {} \
                     <span class=\"muted\">({}, raised {})</span>{}</li>",
                    esc(request.description.as_ref()),
                    super::team::category(request.category),
                    request.raised_on,
                    if request.acknowledged_on.is_none() {
                        " <span class=\"tag overdue\">not acknowledged yet</span>"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    items.sort_by_key(|(due, _)| *due);
    requests.sort_by_key(|(raised, _)| *raised);
    let list = |lines: Vec<(NaiveDate, String)>, none: &str| {
        if lines.is_empty() {
            format!("<p>{none}</p>")
        } else {
            let lines: String = lines.into_iter().map(|(_, line)| line).collect();
            format!("<ul class=\"waiting\">{lines}</ul>")
        }
    };
    format!(
        "<h1>Waiting for you</h1><div class=\"grid\">\
         <section class=\"card\" aria-labelledby=\"follow-ups\"><h2 id=\"follow-ups\" \
         style=\"margin-top:0\">Your follow-ups ({})</h2>{}</section>\
         <section class=\"card\" aria-labelledby=\"requests\"><h2 id=\"requests\" \
         style=\"margin-top:0\">Support requests open ({})</h2>{}</section></div>",
        items.len(),
        list(
            items,
            "None open: every follow-up you took on in coaching is closed."
        ),
        requests.len(),
        list(
            requests,
            "None open: no rep of yours is waiting for support."
        ),
    )
}
