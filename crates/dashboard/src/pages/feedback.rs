//! `GET /reps/{id}/feedback`: the form a leader gives a rep feedback with;
//! `POST` records it through the write API (`POST /v1/reps/{id}/feedback`),
//! the same command handling, rules and idempotency as any client's. A
//! refused form comes back with everything typed kept and each error beside
//! its field, in the API's words; a double submit records once (the form
//! carries its idempotency key).

use std::fmt::Write;

use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::{Posted, RepVisit};
use crate::data;
use crate::error::PageError;
use crate::forms::{
    Outcome, Shown, Typed, Widgets, aim, alert, also_missing, field, fresh, keep_known,
    leader_field, new_key, record, recorded, with_leader,
};
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
    visit.viewer.may_record_as_leader()?;
    let mut typed = Typed::new();
    typed.insert("idempotency_key".into(), new_key());
    typed.insert("given_on".into(), visit.state.today().to_string());
    typed.insert("kind".into(), "praise".into());
    typed.insert("visibility".into(), "shared".into());
    render(&visit, fresh(&typed)).await
}

/// `POST`: records the feedback, or shows the form again with what was wrong.
pub(crate) async fn submit(Posted { visit, typed }: Posted) -> Result<Response, PageError> {
    let (state, viewer) = (&visit.state, &visit.viewer);
    let rep_id = visit.profile.rep_id;
    let field = |name: &str| field(&typed, name);
    let mut body = json!({
        "competency_id": field("competency_id"),
        "kind": field("kind"),
        "note": field("note"),
        "visibility": field("visibility"),
        "given_on": field("given_on"),
    });
    with_leader(&mut body, &typed);
    let path = format!("/v1/reps/{rep_id}/feedback");
    match record(state, viewer, &path, field("idempotency_key"), &body).await? {
        Outcome::Recorded { .. } => Ok(recorded(rep_id, "feedback")),
        Outcome::Repeated { general } => render(&visit, Shown::asked(&typed, &general)).await,
        Outcome::Refused {
            status,
            mut errors,
            mut general,
        } => {
            // An error no field of the form shows goes above it.
            aim(&mut errors, "given_on");
            keep_known(&mut errors, &mut general, &FIELDS);
            also_missing(
                &mut errors,
                &typed,
                &[
                    (
                        "competency_id",
                        "Required: choose the competency the feedback is about.",
                    ),
                    (
                        "note",
                        "Required: write the feedback, specific enough to act on.",
                    ),
                    ("given_on", "Required: pick the day it was given."),
                ],
            );
            let shown = Shown::refused(&typed, &errors, general.as_deref(), status);
            render(&visit, shown).await
        }
    }
}

/// The form, with `typed` in its fields and `errors` beside them.
async fn render(visit: &RepVisit, shown: Shown<'_>) -> Result<Response, PageError> {
    let (state, viewer, profile) = (&visit.state, &visit.viewer, &visit.profile);
    let (typed, errors) = (shown.typed, shown.errors);
    let competencies = data::active_competencies(state).await?;
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
    b.push_str(&alert(errors, shown.general));
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"/reps/{rep_id}/feedback\" novalidate>{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">",
        csrf_field(viewer.signed().csrf),
        w.value("idempotency_key")
    );
    b.push_str(&leader_field(viewer, team.as_ref(), &w, "From leader"));
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
         <label><input type=\"radio\" name=\"kind\" value=\"praise\"{}{}> Praise</label>\
         <label><input type=\"radio\" name=\"kind\" value=\"constructive\"{}{}> Constructive</label>{}</fieldset>\
         <div class=\"field\"><label for=\"note\">Note</label>\
         <textarea id=\"note\" name=\"note\" rows=\"5\"{}>{}</textarea>{}</div>\
         <fieldset class=\"field\"{}><legend>Who sees it</legend>\
         <label><input type=\"radio\" name=\"visibility\" value=\"shared\"{}{}> The rep and their leaders</label>\
         <label><input type=\"radio\" name=\"visibility\" value=\"private\"{}{}> Leaders only (private)</label>{}</fieldset>\
         <div class=\"field\"><label for=\"given_on\">Given on</label>\
         <input type=\"date\" id=\"given_on\" name=\"given_on\" value=\"{}\" max=\"{}\"{}>{}</div>\
         <p><button class=\"primary\" type=\"submit\">Record feedback</button> \
         <a href=\"/reps/{rep_id}\">Cancel</a></p></form>",
        w.error("competency_id"),
        w.group_attrs("kind"),
        w.checked("kind", "praise"),
        w.choice_attrs("kind", 0),
        w.checked("kind", "constructive"),
        w.choice_attrs("kind", 1),
        w.error("kind"),
        w.attrs("note"),
        w.value("note"),
        w.error("note"),
        w.group_attrs("visibility"),
        w.checked("visibility", "shared"),
        w.choice_attrs("visibility", 0),
        w.checked("visibility", "private"),
        w.choice_attrs("visibility", 1),
        w.error("visibility"),
        w.value("given_on"),
        state.today(),
        w.attrs("given_on"),
        w.error("given_on"),
    );
    let title = format!("Give feedback: {}", profile.name);
    Ok((shown.status, Html(page(&title, Some(viewer.signed()), &b))).into_response())
}
