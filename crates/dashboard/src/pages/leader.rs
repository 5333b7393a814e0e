//! `GET /leaders/{id}?from=…&to=…`: the leader's scorecard — the team is
//! the leader's customer: coaching held, feedback and its balance, support
//! resolved and how fast, follow-ups kept.

use std::fmt::Write;

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::Deserialize;
use trellis_domain::LeaderId;
use trellis_projections::query::{LeaderScorecard, leader_scorecard};

use super::{PageId, Visit, query_date};
use crate::data;
use crate::error::PageError;
use crate::html::{esc, page, pct};

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    from: Option<String>,
    to: Option<String>,
}

fn days(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |d| format!("{d:.1} days"))
}

pub(crate) async fn handler(
    Visit { state, viewer }: Visit,
    PageId(leader_id): PageId<LeaderId>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    viewer.may_see_leader(leader_id.as_uuid())?;
    let today = state.today();
    let to = query_date(params.to.as_deref(), "to")?.unwrap_or(today);
    let from = query_date(params.from.as_deref(), "from")?
        .unwrap_or_else(|| to.checked_sub_days(Days::new(89)).unwrap_or(to));
    if to < from {
        return Err(PageError::BadRequest(format!(
            "The range ends ({to}) before it starts ({from})."
        )));
    }
    let Some(leader) = data::leader(&state, leader_id).await? else {
        return Err(PageError::NotFound(
            "There is no leader with this id (or nothing has been recorded about them yet).".into(),
        ));
    };
    let card = leader_scorecard(&leader, from, to, today);
    let name = leader
        .name
        .as_ref()
        .map_or_else(|| "A leader".to_owned(), ToString::to_string);
    let teams = data::all_teams(&state).await?;
    let team_links: Vec<String> = teams
        .iter()
        .filter(|t| leader.teams.contains(&t.team_id))
        .map(|t| {
            format!(
                "<a href=\"/teams/{}\">{}</a>",
                t.team_id,
                esc(t.name.as_ref())
            )
        })
        .collect();

    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>{}</h1><p class=\"lead\">Leader of {} · scorecard from {from} to {to}</p>\
         <form class=\"asof noprint\" method=\"get\"><label for=\"from\">From<input type=\"date\" id=\"from\" name=\"from\" value=\"{from}\" max=\"{today}\"></label>\
         <label for=\"to\">To<input type=\"date\" id=\"to\" name=\"to\" value=\"{to}\" max=\"{today}\"></label>\
         <button type=\"submit\">Show</button></form>",
        esc(&name),
        if team_links.is_empty() {
            "no team".to_owned()
        } else {
            team_links.join(", ")
        }
    );
    let _ = write!(
        b,
        "<div class=\"grid\">\
         <section class=\"card\"><h3>Coaching</h3><p class=\"stat\">{} <small>{}</small></p>\
         <p class=\"muted\">{} reps coached, {} minutes in all.</p></section>\
         <section class=\"card\"><h3>Feedback</h3><p class=\"stat\">{} <small>given</small></p>\
         <p class=\"muted\">{} praise, {} constructive ({} praise).</p></section>\
         <section class=\"card\"><h3>Support requests resolved</h3><p class=\"stat\">{} </p>\
         <p class=\"muted\">Median time to resolve: {}.</p></section>\
         <section class=\"card\"><h3>Follow-ups the leader owes</h3><p class=\"stat\">{} <small>on time</small></p>\
         <p class=\"muted\">{} due: {} on time, {} late, {} dropped, {} overdue.</p>{}</section></div>",
        card.sessions_held,
        if card.sessions_held == 1 {
            "session"
        } else {
            "sessions"
        },
        card.reps_coached,
        card.coaching_minutes,
        card.feedback_praise + card.feedback_constructive,
        card.feedback_praise,
        card.feedback_constructive,
        pct(card.praise_share),
        card.support_resolved,
        days(card.median_days_to_resolve),
        pct(card.on_time_rate),
        card.action_items_due,
        card.action_items_completed_on_time,
        card.action_items_completed_late,
        card.action_items_dropped,
        card.action_items_overdue,
        match card.action_items_overdue_from_before {
            0 => String::new(),
            n => format!(
                "<p class=\"overdue\"><strong>Also overdue:</strong> {n} {} due before {}, \
                 still open.</p>",
                if n == 1 { "follow-up" } else { "follow-ups" },
                card.from
            ),
        }
    );

    // Month by month.
    b.push_str(
        "<h2>Month by month</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Month</th>\
         <th scope=\"col\" class=\"n\">Sessions</th><th scope=\"col\" class=\"n\">Reps coached</th>\
         <th scope=\"col\" class=\"n\">Feedback</th><th scope=\"col\" class=\"n\">Praise share</th>\
         <th scope=\"col\" class=\"n\">Support resolved</th><th scope=\"col\" class=\"n\">Median days</th>\
         <th scope=\"col\" class=\"n\">Follow-ups on time</th></tr></thead><tbody>",
    );
    let mut month = NaiveDate::from_ymd_opt(to.year(), to.month(), 1).unwrap_or(to);
    let mut rows: Vec<(NaiveDate, LeaderScorecard)> = vec![];
    for _ in 0..6 {
        let end = month
            .checked_add_months(Months::new(1))
            .and_then(|m| m.pred_opt())
            .unwrap_or(month)
            .min(today);
        rows.push((month, leader_scorecard(&leader, month, end, today)));
        match month.checked_sub_months(Months::new(1)) {
            Some(m) => month = m,
            None => break,
        }
    }
    for (month, c) in rows {
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            month.format("%B %Y"),
            c.sessions_held,
            c.reps_coached,
            c.feedback_praise + c.feedback_constructive,
            pct(c.praise_share),
            c.support_resolved,
            c.median_days_to_resolve
                .map_or("–".to_owned(), |d| format!("{d:.1}")),
            pct(c.on_time_rate)
        );
    }
    b.push_str("</tbody></table></div>");

    // Rep by rep.
    let profiles = data::profiles(&state, leader.reps.keys().copied()).await?;
    b.push_str(
        "<h2>Rep by rep</h2><div class=\"scroll\"><table><caption>In the chosen range</caption><thead><tr>\
         <th scope=\"col\">Rep</th><th scope=\"col\" class=\"n\">Sessions</th><th scope=\"col\">Last session</th>\
         <th scope=\"col\" class=\"n\">Feedback</th><th scope=\"col\" class=\"n\">Support resolved</th></tr></thead><tbody>",
    );
    for p in &profiles {
        let Some(activity) = leader.reps.get(&p.rep_id) else {
            continue;
        };
        let within = |d: NaiveDate| from <= d && d <= to;
        let sessions = activity
            .sessions
            .iter()
            .filter(|s| within(s.held_on))
            .count();
        let last = activity
            .sessions
            .iter()
            .map(|s| s.held_on)
            .filter(|d| *d <= to)
            .max();
        let feedback = activity
            .feedback
            .iter()
            .filter(|f| within(f.given_on))
            .count();
        let support = activity
            .support_resolved
            .iter()
            .filter(|s| within(s.resolved_on))
            .count();
        // A rep who has moved to a team the viewer does not lead keeps
        // their row (the leader's work with them counts) but no link the
        // viewer could not open.
        let rep = if viewer
            .may_see_rep(p.rep_id.as_uuid(), p.team_id.as_uuid())
            .is_ok()
        {
            format!(
                "<a href=\"/reps/{}\">{}</a>",
                p.rep_id,
                esc(p.name.as_ref())
            )
        } else {
            format!(
                "{} <span class=\"muted\">(now on another team)</span>",
                esc(p.name.as_ref())
            )
        };
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{rep}</th><td class=\"n\">{sessions}</td><td>{}</td>\
             <td class=\"n\">{feedback}</td><td class=\"n\">{support}</td></tr>",
            last.map_or("–".to_owned(), |d| d.to_string())
        );
    }
    b.push_str("</tbody></table></div>");
    Ok(Html(page(&name, Some(viewer.signed()), &b)).into_response())
}
