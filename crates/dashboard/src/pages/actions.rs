//! The one-click records a rep makes on their own page, each a small form
//! that posts through the write API the request of the same path under
//! `/v1`, dated today: acknowledging feedback
//! (`POST /reps/{id}/feedback/{feedback_id}/acknowledgement`) or a standard
//! (`POST /reps/{id}/expectations-acknowledgements`, naming it in
//! `standard_id`), and completing an action item they own
//! (`POST /reps/{id}/action-items/{item_id}/completion`).

use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::Posted;
use crate::error::PageError;
use crate::forms::{Outcome, field, new_key, record};
use crate::html::{csrf_field, esc};

/// A button that records `path` (a route of this module) for the viewer,
/// sending `extra` fields with it. `label` is what it shows; `about`, the
/// record it acts on, completes its name for a screen reader, where a list
/// of "Acknowledge" buttons would otherwise all sound alike.
pub(crate) fn button(
    path: &str,
    (label, about): (&str, &str),
    csrf: &str,
    extra: &[(&str, &str)],
) -> String {
    let extra: String = extra
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(name),
                esc(value)
            )
        })
        .collect();
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}{extra}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">\
         <button type=\"submit\">{}{}</button></form>",
        esc(path),
        csrf_field(csrf),
        new_key(),
        esc(label),
        unseen(about)
    )
}

/// ` {about}` for a screen reader only (nothing when `about` is empty).
pub(crate) fn unseen(about: &str) -> String {
    if about.is_empty() {
        String::new()
    } else {
        format!("<span class=\"vh\"> {}</span>", esc(about))
    }
}

/// `POST`: records the action, then back to the rep's page saying so; a
/// refusal is a page in the API's words.
pub(crate) async fn act(uri: Uri, Posted { visit, typed }: Posted) -> Result<Response, PageError> {
    let (state, viewer) = (&visit.state, &visit.viewer);
    let rep_id = visit.profile.rep_id;
    let mut body = json!({ "on": state.today().to_string() });
    let what = if uri.path().ends_with("/expectations-acknowledgements") {
        body["standard_id"] = json!(field(&typed, "standard_id"));
        "acknowledged"
    } else if uri.path().ends_with("/acknowledgement") {
        "acknowledged"
    } else {
        "completed"
    };
    let key = field(&typed, "idempotency_key");
    match record(state, viewer, &format!("/v1{}", uri.path()), key, &body).await? {
        Outcome::Recorded { .. } => {
            Ok(Redirect::to(&format!("/reps/{rep_id}?recorded={what}#todo")).into_response())
        }
        // A one-click record answers 200 and is never held back; were it
        // one day, the page says why nothing was recorded.
        Outcome::Repeated { general } => Err(PageError::Closed {
            why: general,
            back: format!("/reps/{rep_id}"),
        }),
        Outcome::Refused {
            status,
            errors,
            general,
        } => {
            let why = general.unwrap_or_else(|| {
                errors
                    .into_iter()
                    .map(|(f, why)| format!("{f}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            Err(PageError::from_status(
                status,
                format!("Nothing was recorded: {why}"),
            ))
        }
    }
}
