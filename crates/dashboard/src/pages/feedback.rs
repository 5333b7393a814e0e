//! `GET /reps/{id}/feedback`: the form a leader gives a rep feedback with;
//! `POST` records it through the write API (`POST /v1/reps/{id}/feedback`),
//! the same command handling, rules and idempotency as any client's. A
//! refused form comes back with everything typed kept and each error beside
//! its field, in the API's words; a double submit records once (the form
//! carries its idempotency key).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Form;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use trellis_projections::growth::CompetencyDoc;
use trellis_projections::growth::kinds;

use super::RepVisit;
use crate::data;
use crate::error::PageError;
use crate::forms::{Outcome, Typed, Widgets, alert, field, new_key, record};
use crate::html::{csrf_field, esc, page};

/// The form's fields as the API names them in a problem's `errors`.
const FIELDS: [&str; 6] = [
    "leader_id",
    "competency_id",
    "kind",
    "note",
    "visibility",
    "given_on",
];

/// `GET`: the empty form, with a fresh idempotency key.
pub(crate) async fn form(visit: RepVisit) -> Result<Response, PageError> {
    let mut typed = Typed::new();
    typed.insert("idempotency_key".into(), new_key());
    typed.insert("given_on".into(), visit.state.today().to_string());
    typed.insert("kind".into(), "praise".into());
    typed.insert("visibility".into(), "shared".into());
    render(&visit, &typed, &BTreeMap::new(), None, StatusCode::OK).await
}

/// `POST`: records the feedback, or shows the form again with what was wrong.
pub(crate) async fn submit(
    visit: RepVisit,
    headers: HeaderMap,
    Form(typed): Form<Typed>,
) -> Result<Response, PageError> {
    let (state, viewer) = (&visit.state, &visit.viewer);
    viewer.check_form(state, &headers, typed.get("_csrf").map(String::as_str))?;
    let rep_id = visit.profile.rep_id;
    let field = |name: &str| field(&typed, name);
    let mut body = json!({
        "competency_id": field("competency_id"),
        "kind": field("kind"),
        "note": field("note"),
        "visibility": field("visibility"),
        "given_on": field("given_on"),
    });
    if !field("leader_id").is_empty() {
        body["leader_id"] = json!(field("leader_id"));
    }
    let path = format!("/v1/reps/{rep_id}/feedback");
    match record(state, viewer, &path, field("idempotency_key"), &body).await? {
        Outcome::Recorded => {
            Ok(Redirect::to(&format!("/reps/{rep_id}?recorded=feedback#timeline")).into_response())
        }
        Outcome::Refused {
            status,
            mut errors,
            mut general,
        } => {
            // An error no field of the form shows goes above it.
            let stray: Vec<String> = errors
                .iter()
                .filter(|(name, _)| !FIELDS.contains(&name.as_str()))
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            errors.retain(|name, _| FIELDS.contains(&name.as_str()));
            if !stray.is_empty() {
                general = Some(stray.join("; "));
            }
            render(&visit, &typed, &errors, general.as_deref(), status).await
        }
    }
}

/// The form, with `typed` in its fields and `errors` beside them.
async fn render(
    visit: &RepVisit,
    typed: &Typed,
    errors: &BTreeMap<String, String>,
    general: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (state, viewer, profile) = (&visit.state, &visit.viewer, &visit.profile);
    let mut competencies: Vec<CompetencyDoc> = state.models().all(kinds::COMPETENCY).await?;
    competencies.retain(|c| !c.retired);
    competencies.sort_by_key(|c| c.name.to_string());
    let team = data::team(state, profile.team_id).await?;
    let w = Widgets::new(typed, errors, &FIELDS);
    let rep_id = profile.rep_id;
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Give feedback</h1><p class=\"lead\">To <a href=\"/reps/{rep_id}\">{}</a>: \
         specific, on one competency, praise or constructive.</p>",
        esc(profile.name.as_ref())
    );
    b.push_str(&alert(errors, general));
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"/reps/{rep_id}/feedback\" novalidate>{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">",
        csrf_field(viewer.signed().csrf),
        w.value("idempotency_key")
    );
    if !viewer.claims().role.eq(&trellis_http::auth::Role::Leader) {
        let _ = write!(
            b,
            "<div class=\"field\"><label for=\"leader_id\">From leader</label>\
             <select id=\"leader_id\" name=\"leader_id\"{}><option value=\"\">Choose a leader</option>",
            w.attrs("leader_id")
        );
        for (id, name) in team.iter().flat_map(|t| t.leaders.iter()) {
            let _ = write!(
                b,
                "<option value=\"{id}\"{}>{}</option>",
                w.selected("leader_id", &id.to_string()),
                esc(name.as_ref())
            );
        }
        let _ = write!(b, "</select>{}</div>", w.error("leader_id"));
    }
    let _ = write!(
        b,
        "<div class=\"field\"><label for=\"competency_id\">Competency</label>\
         <select id=\"competency_id\" name=\"competency_id\"{}><option value=\"\">Choose a competency</option>",
        w.attrs("competency_id")
    );
    for c in &competencies {
        let id = c.competency_id.to_string();
        let _ = write!(
            b,
            "<option value=\"{id}\"{}>{}</option>",
            w.selected("competency_id", &id),
            esc(c.name.as_ref())
        );
    }
    let _ = write!(
        b,
        "</select>{}</div>\
         <fieldset class=\"field\"{}><legend>Kind</legend>\
         <label><input type=\"radio\" name=\"kind\" value=\"praise\"{}> Praise</label>\
         <label><input type=\"radio\" name=\"kind\" value=\"constructive\"{}> Constructive</label>{}</fieldset>\
         <div class=\"field\"><label for=\"note\">Note</label>\
         <textarea id=\"note\" name=\"note\" rows=\"5\"{}>{}</textarea>{}</div>\
         <fieldset class=\"field\"{}><legend>Who sees it</legend>\
         <label><input type=\"radio\" name=\"visibility\" value=\"shared\"{}> The rep and their leaders</label>\
         <label><input type=\"radio\" name=\"visibility\" value=\"private\"{}> Leaders only (private)</label>{}</fieldset>\
         <div class=\"field\"><label for=\"given_on\">Given on</label>\
         <input type=\"date\" id=\"given_on\" name=\"given_on\" value=\"{}\" max=\"{}\"{}>{}</div>\
         <p><button class=\"primary\" type=\"submit\">Record feedback</button> \
         <a href=\"/reps/{rep_id}\">Cancel</a></p></form>",
        w.error("competency_id"),
        w.attrs("kind"),
        w.checked("kind", "praise"),
        w.checked("kind", "constructive"),
        w.error("kind"),
        w.attrs("note"),
        w.value("note"),
        w.error("note"),
        w.attrs("visibility"),
        w.checked("visibility", "shared"),
        w.checked("visibility", "private"),
        w.error("visibility"),
        w.value("given_on"),
        state.today(),
        w.attrs("given_on"),
        w.error("given_on"),
    );
    let title = format!("Give feedback: {}", profile.name);
    Ok((status, Html(page(&title, Some(viewer.signed()), &b))).into_response())
}
