//! `GET /people/{id}/export`: everything Trellis holds about a person, as a
//! printable page: the read side's export (`trellis_queries::export`, the
//! one `GET /v1/people/{id}/export` serves) with the sign-in records this
//! dashboard signs people in with. `?format=json` downloads the same as
//! JSON. For an admin (anyone's) or for the person themself (their own,
//! under the rules they read Trellis by; what those leave out is counted
//! and named).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Json;
use axum::extract::{Query, RawPathParams};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use trellis_projections::growth::derive::PeriodRow;
use trellis_projections::growth::derive::RepProfile;
use trellis_projections::growth::{CompetencyDoc, StandardDoc, kinds};
use trellis_projections::query::TimelineRowView;
use trellis_queries::export::{ExportEvent, FoundBy, PersonExport, PersonKind, person_export};

use super::{Visit, id_in};
use crate::data;
use crate::error::PageError;
use crate::html::{esc, page, pct, standing_badge, table_start};

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    /// `json` to download the export; the page otherwise.
    format: Option<String>,
}

pub(crate) async fn handler(
    Visit { state, viewer }: Visit,
    path: RawPathParams,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let person = id_in(&path, "person_id")?;
    let json = match params.format.as_deref().map(str::trim) {
        None | Some("" | "html") => false,
        Some("json") => true,
        Some(other) => {
            return Err(PageError::BadRequest(format!(
                "format must be json (to download the export) or html (this page); {other:?} \
                 is neither."
            )));
        }
    };
    let export = person_export(state.reads(), viewer.claims(), person, state.access()).await?;
    if json {
        return Ok((
            [(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"trellis-export-{person}.json\""),
            )],
            Json(export),
        )
            .into_response());
    }
    // The names ids stand for, to show beside them.
    let mut names = data::actor_names(&state).await?;
    for team in data::all_teams(&state).await? {
        names.insert(team.team_id.to_string(), team.name.to_string());
    }
    let competencies: Vec<CompetencyDoc> = state.models().all(kinds::COMPETENCY).await?;
    for c in competencies {
        names.insert(c.competency_id.to_string(), c.name.to_string());
    }
    let standards: Vec<StandardDoc> = state.models().all(kinds::STANDARD).await?;
    for s in standards {
        names.insert(s.standard_id.to_string(), s.name.to_string());
    }
    if let Some(name) = &export.person.name {
        names.insert(person.to_string(), name.clone());
    }
    let activity_reps: Vec<String> = export
        .read_models
        .leader_activity
        .iter()
        .flat_map(|doc| doc.reps.keys().map(ToString::to_string))
        .collect();
    if !activity_reps.is_empty() {
        let profiles: Vec<RepProfile> = state
            .models()
            .docs(kinds::REP_PROFILE, &activity_reps)
            .await?;
        for p in profiles {
            names.insert(p.rep_id.to_string(), p.name.to_string());
        }
    }
    let own = viewer.claims().subject_id() == Some(person);
    let title = match (&export.person.name, own) {
        (_, true) => "Everything Trellis holds about you".to_owned(),
        (Some(name), false) => format!("Everything Trellis holds about {name}"),
        (None, false) => format!("Everything Trellis holds about {person}"),
    };
    let body = render(&export, &title, &names);
    Ok(Html(page(&title, Some(viewer.signed()), &body)).into_response())
}

/// "FeedbackGiven" as "Feedback given".
fn words(event_type: &str) -> String {
    let mut out = String::with_capacity(event_type.len() + 4);
    for (i, c) in event_type.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A value of a payload that is not a list or an object, as text.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "–".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        other => other.to_string(),
    }
}

/// A value of a payload as HTML: a scalar as text (an id with the name it
/// stands for), a list of scalars comma-separated, an object or a list of
/// objects as nested lists.
fn value_html(value: &Value, names: &BTreeMap<String, String>) -> String {
    match value {
        Value::Object(object) => {
            let mut out = String::from("<ul class=\"reasons\">");
            for (key, value) in object {
                let _ = write!(
                    out,
                    "<li><strong>{}</strong>: {}</li>",
                    esc(&key.replace('_', " ")),
                    value_html(value, names)
                );
            }
            out.push_str("</ul>");
            out
        }
        Value::Array(items) if items.is_empty() => "–".to_owned(),
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            let mut out = String::from("<ol class=\"reasons\">");
            for item in items {
                let _ = write!(out, "<li>{}</li>", inline_html(item, names));
            }
            out.push_str("</ol>");
            out
        }
        Value::Array(items) => items
            .iter()
            .map(|v| value_html(v, names))
            .collect::<Vec<_>>()
            .join(", "),
        scalar => {
            let named = scalar
                .as_str()
                .and_then(|id| names.get(id))
                .map(|name| format!(" ({})", esc(name)))
                .unwrap_or_default();
            format!("{}{named}", esc(&value_text(scalar)))
        }
    }
}

/// A value of a payload on one line: an object's fields separated by
/// " · ", a nested object in parentheses (an item of a list).
fn inline_html(value: &Value, names: &BTreeMap<String, String>) -> String {
    match value {
        Value::Object(object) => object
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::Object(_) => format!("({})", inline_html(value, names)),
                    other => inline_html(other, names),
                };
                format!("<strong>{}</strong>: {value}", esc(&key.replace('_', " ")))
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Value::Array(items) if items.is_empty() => "–".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|v| inline_html(v, names))
            .collect::<Vec<_>>()
            .join(", "),
        scalar => value_html(scalar, names),
    }
}

/// What an event recorded, field by field; long ids and texts wrap.
fn fields(payload: &Value, names: &BTreeMap<String, String>) -> String {
    format!(
        "<div style=\"overflow-wrap:anywhere\">{}</div>",
        value_html(payload, names)
    )
}

/// Who recorded an event, in words.
fn actor(actor: &str, names: &BTreeMap<String, String>) -> String {
    names.get(actor).map_or_else(
        || esc(actor),
        |name| format!("{} ({})", esc(name), esc(actor)),
    )
}

/// An event's place in the log: its stream (with the name of whom or what
/// it is about, when known) and version.
fn place(e: &ExportEvent, names: &BTreeMap<String, String>) -> String {
    let named = e
        .stream_id
        .split_once('-')
        .and_then(|(_, id)| names.get(id))
        .map(|name| format!(" ({})", esc(name)))
        .unwrap_or_default();
    format!("{} #{}{named}", esc(&e.stream_id), e.stream_version)
}

/// The events as cards; `own`: all of one stream, so each names only its
/// version.
fn events_list(
    b: &mut String,
    events: &[ExportEvent],
    names: &BTreeMap<String, String>,
    own: bool,
) {
    if events.is_empty() {
        return;
    }
    b.push_str("<ol class=\"timeline\">");
    for e in events {
        let found: Vec<&str> = e
            .found_by
            .iter()
            .filter_map(|f| match f {
                FoundBy::OwnStream => None,
                FoundBy::RecordedBy => Some("recorded by them"),
                FoundBy::Names => Some("names them"),
            })
            .collect();
        let tags: String = found
            .iter()
            .map(|f| format!("<span class=\"tag\">{f}</span>"))
            .collect();
        let private = if e.payload["visibility"] == "private" {
            "<span class=\"tag private\">private</span>"
        } else {
            ""
        };
        let _ = write!(
            b,
            "<li><p><span class=\"when\">{}</span><strong>{}</strong>{tags}{private}</p>\
             <p class=\"muted\">By {} · recorded {} · {}</p>{}</li>",
            e.occurred_at.date_naive(),
            esc(&words(&e.event_type)),
            actor(&e.actor, names),
            e.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"),
            if own {
                format!("#{}", e.stream_version)
            } else {
                place(e, names)
            },
            fields(&e.payload, names),
        );
    }
    b.push_str("</ol>");
}

/// The rows of periods in which a standard measured in them was judged.
fn judged(rows: &[TimelineRowView]) -> impl Iterator<Item = &PeriodRow> {
    rows.iter()
        .map(|row| &row.row)
        .filter(|r| r.quality_attainment.is_some() || r.quantity_attainment.is_some())
}

/// The periods of one length in which a standard measured in them was
/// judged, with the rep's quality and quantity attainment: nothing when
/// none was. Whether there was a table.
fn attainments(b: &mut String, title: &str, rows: &[TimelineRowView]) -> bool {
    let judged: Vec<_> = judged(rows).collect();
    if judged.is_empty() {
        return false;
    }
    let _ = write!(b, "<h3>{title}</h3>");
    b.push_str(&table_start(&["Period", "#Quality", "#Quantity"]));
    for r in judged {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            r.period,
            pct(r.quality_attainment),
            pct(r.quantity_attainment),
        );
    }
    b.push_str("</tbody></table></div>");
    true
}

fn kind_words(kind: PersonKind) -> &'static str {
    match kind {
        PersonKind::Rep => "Rep",
        PersonKind::Leader => "Leader",
        PersonKind::Admin => "Admin",
        PersonKind::Auditor => "Auditor",
    }
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    crate::html::when(*t)
}

fn opt_time(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.as_ref().map_or_else(|| "–".to_owned(), time)
}

/// The page's body.
fn render(export: &PersonExport, title: &str, names: &BTreeMap<String, String>) -> String {
    let person = &export.person;
    let mut b = String::with_capacity(64 * 1024);
    let _ = write!(
        b,
        "<h1>{}</h1><p class=\"lead\">{} · id <code class=\"id\">{}</code> · made {} from the \
         log, the read models and the sign-in records.</p>",
        esc(title),
        kind_words(person.kind),
        person.id,
        time(&export.generated_at),
    );
    let _ = write!(
        b,
        "<p class=\"asof noprint\"><a class=\"button primary\" href=\"/people/{}/export?format=json\" \
         download>Download as JSON</a><button type=\"button\" data-print>Print</button></p>",
        person.id
    );
    if !export.complete {
        b.push_str(
            "<div class=\"notice\" role=\"status\"><p><strong>Some records are left out of \
             this export</strong>, by the rules you read Trellis by:</p><ul class=\"reasons\">",
        );
        for left in &export.left_out {
            let _ = write!(
                b,
                "<li><strong>{} left out</strong>: {}. Why: {}.</li>",
                left.count,
                esc(&left.what),
                esc(&left.why)
            );
        }
        b.push_str("</ul></div>");
    }

    // Contents.
    b.push_str(
        "<nav aria-label=\"Sections\" class=\"noprint\"><ul class=\"legend\">\
         <li><a href=\"#sign-in\">Sign-in</a></li><li><a href=\"#read-models\">Profile and \
         growth</a></li><li><a href=\"#own-stream\">Own record</a></li><li><a \
         href=\"#elsewhere\">Elsewhere in the log</a></li><li><a href=\"#searched\">What was \
         searched</a></li></ul></nav>",
    );

    // Sign-in.
    let sign_in = &export.sign_in;
    b.push_str("<h2 id=\"sign-in\">Sign-in</h2>");
    if !sign_in.available {
        b.push_str("<p class=\"muted\">This service does not hold sign-in records.</p>");
    } else {
        match &sign_in.account {
            Some(a) => {
                let _ = write!(
                    b,
                    "<div class=\"grid\"><section class=\"card\" aria-labelledby=\"account\"><h3 id=\"account\">Account</h3>\
                     <ul class=\"reasons\"><li><strong>Name</strong>: {}</li><li><strong>Role</strong>: {}</li>\
                     <li><strong>Email</strong>: {}</li><li><strong>Identity provider subject</strong>: {}</li>\
                     <li><strong>Created</strong>: {} by {}</li><li><strong>Access stopped</strong>: {}</li></ul></section>",
                    esc(&a.name),
                    a.role.as_str(),
                    esc(a.email.as_deref().unwrap_or("–")),
                    esc(a.oidc_subject.as_deref().unwrap_or("–")),
                    time(&a.created_at),
                    actor(&a.created_by, names),
                    opt_time(&a.disabled_at),
                );
            }
            None => b.push_str(
                "<div class=\"grid\"><section class=\"card\"><h3>Account</h3><p>No sign-in \
                 account.</p></section>",
            ),
        }
        let _ = write!(
            b,
            "<section class=\"card\"><h3>Signed in</h3><p class=\"stat\">{} <small>{} \
             now</small></p><p>Last sign-in: {}</p></section></div>",
            sign_in.running_sessions,
            if sign_in.running_sessions == 1 {
                "session runs"
            } else {
                "sessions run"
            },
            opt_time(&sign_in.last_sign_in_at),
        );
        if !sign_in.sessions.is_empty() {
            b.push_str("<h3>Every session</h3>");
            b.push_str(&table_start(&[
                "Started",
                "How",
                "Last seen",
                "Ends",
                "Ended",
            ]));
            for s in &sign_in.sessions {
                let how = match s.via.as_str() {
                    "link" => "one-time link",
                    "oidc" => "company account",
                    "token" => "developer token",
                    other => other,
                };
                let ended = match (&s.ended_at, &s.ended_by) {
                    (Some(at), Some(by)) => format!("{} ({})", time(at), esc(by)),
                    (Some(at), None) => time(at),
                    (None, _) if s.running => "running".to_owned(),
                    (None, _) => "ran out".to_owned(),
                };
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{how}</td><td>{}</td><td>{}</td><td>{ended}</td></tr>",
                    time(&s.started_at),
                    time(&s.last_seen_at),
                    time(&s.expires_at),
                );
            }
            b.push_str("</tbody></table></div>");
        }
        if !sign_in.sign_in_links.is_empty() {
            b.push_str("<h3>One-time sign-in links</h3>");
            b.push_str(&table_start(&["Made", "By", "Expires", "Used"]));
            for l in &sign_in.sign_in_links {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    time(&l.created_at),
                    actor(&l.created_by, names),
                    time(&l.expires_at),
                    opt_time(&l.used_at),
                );
            }
            b.push_str("</tbody></table></div>");
        }
    }

    // The read models.
    let models = &export.read_models;
    b.push_str("<h2 id=\"read-models\">Profile and growth</h2>");
    if let Some(view) = &models.profile {
        let p = &view.profile;
        let _ = write!(
            b,
            "<div class=\"grid\"><section class=\"card\" aria-labelledby=\"standing\"><h3 id=\"standing\">Standing on {}</h3>\
             <p>{}</p><ul class=\"reasons\">",
            view.as_of,
            standing_badge(view.standing.standing)
        );
        for reason in &view.standing.reasons {
            let _ = write!(b, "<li>{}</li>", esc(reason));
        }
        let _ = write!(
            b,
            "</ul></section><section class=\"card\"><h3>Profile</h3><ul class=\"reasons\">\
             <li><strong>Role</strong>: {}</li><li><strong>Started</strong>: {}</li>\
             <li><strong>Departed</strong>: {}</li><li><strong>Coaching sessions</strong>: {}</li>\
             <li><strong>Open action items</strong>: {}</li><li><strong>Support requests</strong>: {}</li>\
             <li><strong>Improvement plans</strong>: {}</li><li><strong>Feedback</strong>: {}</li></ul></section></div>",
            esc(p.role.as_ref()),
            p.start_date,
            p.departed_on
                .map_or_else(|| "–".to_owned(), |d| d.to_string()),
            p.coaching_sessions,
            view.open_action_items.len(),
            p.support_requests.len(),
            p.plans.len(),
            view.feedback.len(),
        );
    }
    let weeks = attainments(&mut b, "Week by week", &models.timeline_by_week);
    if !models.timeline_by_month.is_empty() {
        b.push_str("<h3>Month by month</h3>");
        if weeks || judged(&models.timeline_by_quarter).next().is_some() {
            b.push_str(
                "<p class=\"muted\">Quality and quantity here are the attainment of the \
                 standards measured monthly; those measured weekly or quarterly are in \
                 their own tables.</p>",
            );
        }
        b.push_str(&table_start(&[
            "Month",
            "#Quality",
            "#Quantity",
            "#Coaching sessions",
            "#Items due",
            "#Items done",
        ]));
        for row in &models.timeline_by_month {
            let r = &row.row;
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                r.period,
                pct(r.quality_attainment),
                pct(r.quantity_attainment),
                r.coaching_sessions,
                r.action_items_due,
                r.action_items_completed,
            );
        }
        b.push_str("</tbody></table></div>");
    }
    attainments(&mut b, "Quarter by quarter", &models.timeline_by_quarter);
    if !models.teams_led.is_empty() {
        b.push_str("<h3>Teams led</h3><ul>");
        for t in &models.teams_led {
            let _ = write!(b, "<li>{}</li>", esc(&t.name));
        }
        b.push_str("</ul>");
    }
    if let Some(doc) = &models.leader_activity {
        b.push_str("<h3>What they did for each rep</h3>");
        b.push_str(&table_start(&[
            "Rep",
            "#Coaching sessions",
            "#Feedback",
            "#Support resolved",
            "#Action items owned",
        ]));
        for (rep, activity) in &doc.reps {
            let id = rep.to_string();
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(names.get(&id).unwrap_or(&id)),
                activity.sessions.len(),
                activity.feedback.len(),
                activity.support_resolved.len(),
                activity.action_items.len(),
            );
        }
        b.push_str("</tbody></table></div>");
    }
    if models.profile.is_none()
        && models.timeline_by_week.is_empty()
        && models.timeline_by_month.is_empty()
        && models.timeline_by_quarter.is_empty()
        && models.teams_led.is_empty()
        && models.leader_activity.is_none()
    {
        b.push_str("<p class=\"muted\">The read models hold nothing about this person.</p>");
    }

    // The log.
    b.push_str("<h2 id=\"own-stream\">Own record</h2>");
    match &export.own_stream {
        Some(own) => {
            let _ = write!(
                b,
                "<p>Every event of <code>{}</code> shown here, oldest first: {} of {}. {}</p>",
                esc(&own.stream_id),
                own.events.len(),
                own.events_total,
                if own.chain_intact {
                    "Its hash chain verifies: nothing in it was altered."
                } else {
                    "<strong>Its hash chain does not verify</strong>: see the audit trail."
                }
            );
            events_list(&mut b, &own.events, names, true);
        }
        None => b.push_str(
            "<p class=\"muted\">Only reps have a record of their own in the log; what names \
             this person is below.</p>",
        ),
    }
    let _ = write!(
        b,
        "<h2 id=\"elsewhere\">Elsewhere in the log</h2><p>{}</p>",
        match export.events_elsewhere.len() {
            0 => "No event in another stream was recorded by them or names them.".to_owned(),
            1 => "1 event in another stream was recorded by them or names them.".to_owned(),
            n => format!(
                "{n} events in other streams were recorded by them or name them, in the order \
                 they were recorded."
            ),
        }
    );
    events_list(&mut b, &export.events_elsewhere, names, false);

    // What was searched, and what is not here.
    b.push_str("<h2 id=\"searched\">What was searched</h2>");
    b.push_str(&table_start(&["Where", "For", "#Found"]));
    for s in &export.searched {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&s.source),
            esc(&s.looked_for),
            s.found
        );
    }
    b.push_str("</tbody></table></div><h3>Not in this export</h3><ul>");
    for n in &export.not_included {
        let _ = write!(
            b,
            "<li><strong>{}</strong>: {}.</li>",
            esc(&n.what),
            esc(&n.why)
        );
    }
    b.push_str("</ul>");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_read_as_words_and_payloads_as_escaped_fields() {
        assert_eq!(words("FeedbackGiven"), "Feedback given");
        let names = BTreeMap::from([("abc".to_owned(), "<b>Dana</b>".to_owned())]);
        let html = fields(
            &serde_json::json!({"note": "<script>x</script>", "leader_id": "abc", "n": 2}),
            &names,
        );
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(html.contains("(&lt;b&gt;Dana&lt;/b&gt;)"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
