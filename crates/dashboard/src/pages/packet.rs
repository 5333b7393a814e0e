//! `GET /reps/{id}/review?from=…&to=…`: the review packet for a period as a
//! printable page. The queries crate's packet (replayed from the log, with
//! its hash) is shown when its hook answers; until then the dashboard
//! assembles the same headings from the read models.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use chrono::Days;
use serde::Deserialize;
use trellis_domain::{PeriodKind, StandardKind};
use trellis_projections::growth::derive::GrowthTimeline;
use trellis_projections::query::standing_as_of;

use super::query_date;
use super::rep::visible_profile;
use crate::auth::Viewer;
use crate::data;
use crate::html::{attainment_class, esc, page, pct, standing_badge};
use crate::{DashboardState, PageError};

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    from: Option<String>,
    to: Option<String>,
}

pub(crate) async fn handler(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let stored = visible_profile(&state, &viewer, &raw).await?;
    let rep_id = stored.rep_id;
    let today = state.today();
    let to = query_date(params.to.as_deref(), "to")?
        .unwrap_or(today)
        .min(today);
    let from = query_date(params.from.as_deref(), "from")?
        .unwrap_or_else(|| to.checked_sub_days(Days::new(90)).unwrap_or(to));
    if to < from {
        return Err(PageError::BadRequest(format!(
            "The period ends ({to}) before it starts ({from})."
        )));
    }
    let title = format!("Review packet: {}", stored.name);
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Review packet</h1><p class=\"lead\"><a href=\"/reps/{rep_id}\">{}</a>, {} · {from} to {to}</p>\
         <form class=\"asof noprint\" method=\"get\"><label for=\"from\">From<input type=\"date\" id=\"from\" name=\"from\" value=\"{from}\" max=\"{today}\"></label>\
         <label for=\"to\">To<input type=\"date\" id=\"to\" name=\"to\" value=\"{to}\" max=\"{today}\"></label>\
         <button type=\"submit\">Show</button><button type=\"button\" onclick=\"window.print()\">Print</button></form>",
        esc(stored.name.as_ref()),
        esc(stored.role.as_ref()),
    );
    if let Some(hooks) = state.hooks() {
        match hooks
            .review_packet(viewer.claims(), rep_id.as_uuid(), from, to)
            .await
        {
            Ok(Some(fragment)) => {
                b.push_str(&fragment);
                return Ok(Html(page(&title, Some(viewer.claims()), &b)).into_response());
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the review_packet hook failed"),
        }
    }
    b.push_str(
        "<p class=\"notice\">This packet is assembled from the read models. The replayed packet \
         with its SHA-256 (to record that a review was held on it) comes with the queries service.</p>",
    );

    let timeline: GrowthTimeline = data::doc(
        &state,
        trellis_projections::growth::kinds::GROWTH_TIMELINE,
        rep_id,
    )
    .await?
    .ok_or_else(|| PageError::Internal(format!("rep {rep_id} has no timeline")))?;
    let standards = data::standards_of(&state, &timeline).await?;
    let facts = data::rep_facts(&state, rep_id).await?;
    let gate = stored.phase.gate_periods;
    let weeks: Vec<_> = timeline
        .weeks
        .iter()
        .filter(|r| r.end >= from && r.start <= to)
        .collect();
    let mut competency_ids: BTreeSet<String> = BTreeSet::new();
    for row in &timeline.weeks {
        competency_ids.extend(row.levels.keys().map(ToString::to_string));
        competency_ids.extend(row.feedback.keys().map(ToString::to_string));
    }
    let names = data::competency_names(&state, competency_ids).await?;
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());

    // Standing at the start and the end.
    if let Some(facts) = &facts {
        let (start_profile, _) = data::derive_as_of(facts, &standards, gate, from);
        let (end_profile, _) = data::derive_as_of(facts, &standards, gate, to);
        let (s0, s1) = (
            standing_as_of(&start_profile, from),
            standing_as_of(&end_profile, to),
        );
        let _ = write!(
            b,
            "<h2>Standing</h2><div class=\"grid\"><section class=\"card\"><h3>On {from}</h3><p>{}</p><p class=\"muted\">{}</p></section>\
             <section class=\"card\"><h3>On {to}</h3><p>{}</p><p class=\"muted\">{}</p></section></div>",
            standing_badge(s0.standing),
            esc(&s0.reasons.join("; ")),
            standing_badge(s1.standing),
            esc(&s1.reasons.join("; "))
        );
    }

    // Levels at start and end.
    b.push_str(
        "<h2>Levels per competency</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Competency</th>\
         <th scope=\"col\" class=\"n\">At the start</th><th scope=\"col\" class=\"n\">At the end</th><th scope=\"col\">Change</th></tr></thead><tbody>",
    );
    let before = timeline.weeks.iter().rev().find(|r| r.end < from);
    let end = timeline.weeks.iter().rev().find(|r| r.start <= to);
    let mut all: BTreeMap<String, (Option<u8>, Option<u8>)> = BTreeMap::new();
    if let Some(r) = before {
        for (c, l) in &r.levels {
            all.entry(name(&c.to_string())).or_default().0 = Some(*l);
        }
    }
    if let Some(r) = end {
        for (c, l) in &r.levels {
            all.entry(name(&c.to_string())).or_default().1 = Some(*l);
        }
    }
    for (competency, (a, z)) in &all {
        let change = match (a, z) {
            (Some(a), Some(z)) if z > a => format!("up {}", z - a),
            (Some(a), Some(z)) if z < a => format!("down {}", a - z),
            (Some(_), Some(_)) => "unchanged".to_owned(),
            (None, Some(_)) => "first assessed".to_owned(),
            _ => "–".to_owned(),
        };
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{change}</td></tr>",
            esc(competency),
            a.map_or("–".to_owned(), |l| l.to_string()),
            z.map_or("–".to_owned(), |l| l.to_string())
        );
    }
    b.push_str("</tbody></table></div>");

    // Attainment trend per standard, by month.
    b.push_str("<h2>Attainment by month</h2>");
    let months: Vec<_> = timeline
        .rows(PeriodKind::Month)
        .iter()
        .filter(|r| r.end >= from && r.start <= to)
        .collect();
    for (kind, label) in [
        (StandardKind::Quality, "Quality"),
        (StandardKind::Quantity, "Quantity"),
    ] {
        let _ = write!(
            b,
            "<div class=\"scroll\" style=\"margin-bottom:1rem\"><table class=\"heat\"><caption>{label} (weekly standards averaged over the month's weeks)</caption>\
             <thead><tr><th scope=\"col\">Standard</th>"
        );
        for m in &months {
            let _ = write!(b, "<th scope=\"col\" class=\"n\">{}</th>", m.period);
        }
        b.push_str("</tr></thead><tbody>");
        for standard in standards.values().filter(|s| s.kind == kind) {
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{}</th>",
                esc(standard.name.as_ref())
            );
            for m in &months {
                let value = match standard.period {
                    PeriodKind::Month | PeriodKind::Quarter => m
                        .standards
                        .iter()
                        .find(|s| s.standard_id == standard.standard_id && s.applies)
                        .and_then(|s| s.attainment),
                    PeriodKind::Week => {
                        let values: Vec<f64> = timeline
                            .weeks
                            .iter()
                            .filter(|w| m.start <= w.start && w.start <= m.end)
                            .filter_map(|w| {
                                w.standards
                                    .iter()
                                    .find(|s| s.standard_id == standard.standard_id && s.applies)
                                    .and_then(|s| s.attainment)
                            })
                            .collect();
                        (!values.is_empty())
                            .then(|| values.iter().sum::<f64>() / values.len() as f64)
                    }
                };
                let _ = write!(
                    b,
                    "<td class=\"cell {}\">{}</td>",
                    attainment_class(value),
                    pct(value)
                );
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table></div>");
    }

    // Coaching and feedback received by competency.
    let mut by: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    let (mut sessions, mut minutes, mut due, mut done, mut on_time) = (0, 0, 0, 0, 0);
    for row in &weeks {
        sessions += row.coaching_sessions;
        minutes += row.coaching_minutes;
        due += row.action_items_due;
        done += row.action_items_completed;
        on_time += row.action_items_completed_on_time;
        for (c, f) in &row.feedback {
            let e = by.entry(name(&c.to_string())).or_default();
            e.0 += f.praise;
            e.1 += f.constructive;
        }
        for (c, n) in &row.coaching_focus {
            by.entry(name(&c.to_string())).or_default().2 += n;
        }
    }
    let _ = write!(
        b,
        "<h2>Coaching and feedback received</h2><p>{sessions} coaching sessions ({minutes} minutes). \
         Action items: {due} due, {done} completed, {on_time} of them on time.</p>\
         <div class=\"scroll\"><table><thead><tr><th scope=\"col\">Competency</th><th scope=\"col\" class=\"n\">Praise</th>\
         <th scope=\"col\" class=\"n\">Constructive</th><th scope=\"col\" class=\"n\">Sessions focused on it</th></tr></thead><tbody>"
    );
    for (c, (p, k, s)) in &by {
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{p}</td><td class=\"n\">{k}</td><td class=\"n\">{s}</td></tr>",
            esc(c)
        );
    }
    b.push_str("</tbody></table></div>");

    // Support and plans.
    b.push_str("<h2>Support requests raised</h2>");
    let raised: Vec<_> = stored
        .support_requests
        .iter()
        .filter(|r| from <= r.raised_on && r.raised_on <= to)
        .collect();
    if raised.is_empty() {
        b.push_str("<p>None in the period.</p>");
    } else {
        b.push_str("<ul>");
        for r in raised {
            let _ = write!(
                b,
                "<li>{} ({}): {} — {}</li>",
                r.raised_on,
                super::team::category(r.category),
                esc(r.description.as_ref()),
                match r.days_to_resolve {
                    Some(d) => format!("resolved in {d} days"),
                    None => "still open".to_owned(),
                }
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("<h2>Improvement plans</h2>");
    let plans: Vec<_> = stored
        .plans
        .iter()
        .filter(|p| p.started_on <= to && p.closed_on.is_none_or(|c| c >= from))
        .collect();
    if plans.is_empty() {
        b.push_str("<p>None in the period.</p>");
    } else {
        b.push_str("<ul>");
        for p in plans {
            let _ = write!(
                b,
                "<li>Started {}, review on {}, {} checkpoints: {}</li>",
                p.started_on,
                p.review_on,
                p.checkpoints.len(),
                match (p.outcome, p.closed_on) {
                    (Some(o), Some(on)) => format!("{o:?} on {on}")
                        .to_lowercase()
                        .replace("notmet", "not met"),
                    _ => "open".to_owned(),
                }
            );
        }
        b.push_str("</ul>");
    }
    Ok(Html(page(&title, Some(viewer.claims()), &b)).into_response())
}
