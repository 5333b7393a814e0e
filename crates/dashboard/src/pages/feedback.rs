//! `GET /reps/{id}/feedback`: the form a leader gives a rep feedback with;
//! `POST` records it through the write API (`POST /v1/reps/{id}/feedback`),
//! the same command handling, rules and idempotency as any client's. A
//! refused form comes back with everything typed kept and each error beside
//! its field, in the API's words; a double submit records once (the form
//! carries its idempotency key).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Form;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use tower::ServiceExt;
use trellis_projections::growth::CompetencyDoc;
use trellis_projections::growth::kinds;
use uuid::Uuid;

use super::RepVisit;
use crate::data;
use crate::error::PageError;
use crate::html::{csrf_field, esc, page};
use crate::state::DashboardState;

/// What the form sends, as typed: every field a string, kept to show again.
type Typed = BTreeMap<String, String>;

/// The answer of the write API to a form's request.
struct Answer {
    status: StatusCode,
    problem: Value,
}

/// Sends `body` to `path` of the write API as the viewer, with `key` as its
/// `Idempotency-Key`.
async fn write(
    state: &DashboardState,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Result<Answer, PageError> {
    let writes = state.writes().ok_or_else(|| {
        PageError::Forbidden("This Trellis shows records but does not take new ones.".into())
    })?;
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json");
    if Uuid::parse_str(key).is_ok() {
        request = request.header("idempotency-key", key);
    }
    let request = request
        .body(Body::from(body.to_string()))
        .map_err(|e| PageError::Internal(format!("a write request: {e}")))?;
    let response = writes
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| PageError::Internal(format!("the write API: {e}")))?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|e| PageError::Internal(format!("the write API's answer: {e}")))?;
    Ok(Answer {
        status,
        problem: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

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
    typed.insert("idempotency_key".into(), Uuid::now_v7().to_string());
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
    let field = |name: &str| typed.get(name).map(|v| v.trim()).unwrap_or("");
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
    let answer = write(
        state,
        viewer.token(),
        &path,
        field("idempotency_key"),
        &body,
    )
    .await?;
    if answer.status.is_success() {
        return Ok(
            Redirect::to(&format!("/reps/{rep_id}?recorded=feedback#timeline")).into_response(),
        );
    }
    // Each offending field beside itself; anything else above the form.
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for e in answer.problem["errors"].as_array().into_iter().flatten() {
        let name = e["field"].as_str().unwrap_or("");
        let name = FIELDS
            .iter()
            .find(|f| name == **f || name.starts_with(&format!("{f}.")))
            .map_or("form", |f| f);
        errors
            .entry(name.to_owned())
            .or_insert_with(|| e["reason"].as_str().unwrap_or("is not valid").to_owned());
    }
    let general = if errors.is_empty() {
        Some(
            answer.problem["detail"]
                .as_str()
                .unwrap_or("Trellis could not record this; nothing was recorded.")
                .to_owned(),
        )
    } else {
        None
    };
    let status = if answer.status.is_client_error() {
        answer.status
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    render(&visit, &typed, &errors, general.as_deref(), status).await
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
    let value = |name: &str| esc(typed.get(name).map_or("", String::as_str));
    let mut competencies: Vec<CompetencyDoc> = state.models().all(kinds::COMPETENCY).await?;
    competencies.retain(|c| !c.retired);
    competencies.sort_by_key(|c| c.name.to_string());
    let team = data::team(state, profile.team_id).await?;
    let first_error = FIELDS.iter().find(|f| errors.contains_key(**f));
    // The attributes of a field: described by its error, focused when first.
    let attrs = |name: &str| {
        if errors.contains_key(name) {
            format!(
                " aria-invalid=\"true\" aria-describedby=\"{name}-error\"{}",
                if first_error == Some(&name) {
                    " autofocus"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        }
    };
    let error = |name: &str| {
        errors.get(name).map_or(String::new(), |why| {
            format!(
                "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                esc(why)
            )
        })
    };
    let checked = |name: &str, v: &str| {
        if typed.get(name).map(String::as_str) == Some(v) {
            " checked"
        } else {
            ""
        }
    };
    let selected = |name: &str, v: &str| {
        if typed.get(name).map(String::as_str) == Some(v) {
            " selected"
        } else {
            ""
        }
    };
    let rep_id = profile.rep_id;
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Give feedback</h1><p class=\"lead\">To <a href=\"/reps/{rep_id}\">{}</a>: \
         specific, on one competency, praise or constructive.</p>",
        esc(profile.name.as_ref())
    );
    if !errors.is_empty() || general.is_some() {
        b.push_str(
            "<div class=\"error\" role=\"alert\"><p><strong>Nothing was recorded.</strong> ",
        );
        match general {
            Some(why) => b.push_str(&esc(why)),
            None => b.push_str("Please correct what is marked below."),
        }
        b.push_str("</p></div>");
    }
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"/reps/{rep_id}/feedback\" novalidate>{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">",
        csrf_field(viewer.signed().csrf),
        value("idempotency_key")
    );
    if !viewer.claims().role.eq(&trellis_http::auth::Role::Leader) {
        let _ = write!(
            b,
            "<div class=\"field\"><label for=\"leader_id\">From leader</label>\
             <select id=\"leader_id\" name=\"leader_id\"{}><option value=\"\">Choose a leader</option>",
            attrs("leader_id")
        );
        for (id, name) in team.iter().flat_map(|t| t.leaders.iter()) {
            let _ = write!(
                b,
                "<option value=\"{id}\"{}>{}</option>",
                selected("leader_id", &id.to_string()),
                esc(name.as_ref())
            );
        }
        let _ = write!(b, "</select>{}</div>", error("leader_id"));
    }
    let _ = write!(
        b,
        "<div class=\"field\"><label for=\"competency_id\">Competency</label>\
         <select id=\"competency_id\" name=\"competency_id\"{}><option value=\"\">Choose a competency</option>",
        attrs("competency_id")
    );
    for c in &competencies {
        let id = c.competency_id.to_string();
        let _ = write!(
            b,
            "<option value=\"{id}\"{}>{}</option>",
            selected("competency_id", &id),
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
        error("competency_id"),
        attrs("kind"),
        checked("kind", "praise"),
        checked("kind", "constructive"),
        error("kind"),
        attrs("note"),
        value("note"),
        error("note"),
        attrs("visibility"),
        checked("visibility", "shared"),
        checked("visibility", "private"),
        error("visibility"),
        value("given_on"),
        state.today(),
        attrs("given_on"),
        error("given_on"),
    );
    let title = format!("Give feedback: {}", profile.name);
    Ok((status, Html(page(&title, Some(viewer.signed()), &b))).into_response())
}
