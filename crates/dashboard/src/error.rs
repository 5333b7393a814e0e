//! Why a page could not be shown, as a page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use trellis_http::problem::ApiError;

use crate::html;

/// Why a page could not be shown; each renders as a friendly HTML page.
#[derive(Debug)]
pub(crate) enum PageError {
    /// Not signed in, or the token is no good: the sign-in form.
    Unauthorized(String),
    Forbidden(String),
    /// A form the viewer's role may not fill in (a 403 too), refused as it
    /// opens: the words say whom it is for.
    NotYourForm(String),
    NotFound(String),
    BadRequest(String),
    /// A form about a record that is closed already (a request resolved, a
    /// plan closed): nothing more to record; what happened, and the page
    /// to go back to.
    Closed {
        why: String,
        back: String,
    },
    /// A form sent from this site with the token of an earlier sign-in
    /// (opened before the viewer signed in again): nothing was recorded.
    /// With what was typed, the page offers it back to send again.
    StaleForm(Option<Box<Resend>>),
    /// A form sent from this site after its sign-in ended (expired, signed
    /// out elsewhere): nothing was recorded; what was typed is shown, to
    /// copy before signing in again. There is no sign-in to send it with.
    SignedOut {
        why: String,
        typed: Typed,
    },
    /// A form refused before anything was read from it (sent from another
    /// site, or without its token): a 403 that says nothing was recorded,
    /// and why.
    FormRefused(String),
    /// The database cannot be reached just now: a 503 the viewer may retry
    /// (details to the log).
    Unavailable(String),
    /// Details go to the log, not the page.
    Internal(String),
}

/// A form to send again: where it goes, what was typed in it, and the
/// token of the viewer's sign-in as it is now.
#[derive(Debug)]
pub(crate) struct Resend {
    pub action: String,
    pub typed: Typed,
    pub csrf: String,
}

/// What a form sent, as typed: every field a string, kept to show again.
/// Here rather than in `forms`, which imports this file.
pub(crate) type Typed = std::collections::BTreeMap<String, String>;

/// What was typed in a form, for a person to read: each field that holds
/// something they wrote, under its name. The form's own workings (its
/// token, key, version) and the ids chosen in it mean nothing to a reader.
fn typed_list(typed: &Typed) -> String {
    const WORKINGS: [&str; 4] = ["_csrf", "idempotency_key", "_version", "rows"];
    let mut shown = String::new();
    for (name, value) in typed {
        let id = uuid::Uuid::parse_str(value.trim()).is_ok();
        if !WORKINGS.contains(&name.as_str()) && !value.trim().is_empty() && !id {
            let _ = std::fmt::Write::write_fmt(
                &mut shown,
                format_args!(
                    "<dt>{}</dt><dd>{}</dd>",
                    html::esc(&html::capitalised(name.replace(['_', '.'], " "))),
                    html::esc(value)
                ),
            );
        }
    }
    format!("<dl class=\"typed\">{shown}</dl>")
}

impl Resend {
    /// The page: what was typed, shown, and the same fields carried in a
    /// form that sends them again with the current token.
    fn page(&self) -> String {
        let mut carried = String::new();
        for (name, value) in &self.typed {
            if name == "_csrf" {
                continue;
            }
            let _ = std::fmt::Write::write_fmt(
                &mut carried,
                format_args!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    html::esc(name),
                    html::esc(value)
                ),
            );
        }
        let shown = typed_list(&self.typed);
        format!(
            "<h1>Send this form again</h1><p class=\"lead\">This page was opened before you \
             last signed in, so nothing was recorded. What you typed is kept below: send it \
             again as it is, or go back and open the form afresh.</p>\
             <form class=\"card form\" method=\"post\" action=\"{}\">{}{}\
             {}<button type=\"submit\" class=\"primary\">Send again</button> \
             <a class=\"button\" href=\"/home\">Back to the home page</a></form>",
            html::esc(&self.action),
            html::csrf_field(&self.csrf),
            carried,
            shown
        )
    }
}

impl From<trellis_projections::Error> for PageError {
    fn from(e: trellis_projections::Error) -> Self {
        match e {
            trellis_projections::Error::Unavailable(why) => PageError::Unavailable(why),
            trellis_projections::Error::Store(e) => e.into(),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<trellis_eventstore::Error> for PageError {
    fn from(e: trellis_eventstore::Error) -> Self {
        match e {
            trellis_eventstore::Error::Unavailable(why) => PageError::Unavailable(why),
            other => PageError::Internal(other.to_string()),
        }
    }
}

/// What the read side refused or failed with, as a page: its words for
/// what the viewer may fix, the log for the rest.
impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e.status().as_u16() {
            401 => PageError::Unauthorized(e.to_string()),
            403 => PageError::Forbidden(sentence(&e.to_string())),
            404 => PageError::NotFound(sentence(&e.to_string())),
            400..=499 => PageError::BadRequest(sentence(&e.to_string())),
            503 => PageError::Unavailable(e.to_string()),
            _ => PageError::Internal(e.to_string()),
        }
    }
}

impl PageError {
    /// What an API answered with `status` and `why`, as a page: the same
    /// mapping as an [`ApiError`]'s (a 401 signs in again, a 503 says to
    /// retry, a 5xx goes to the log).
    pub(crate) fn from_status(status: axum::http::StatusCode, why: String) -> Self {
        match status.as_u16() {
            401 => PageError::Unauthorized(why),
            403 => PageError::Forbidden(sentence(&why)),
            404 => PageError::NotFound(sentence(&why)),
            400..=499 => PageError::BadRequest(sentence(&why)),
            503 => PageError::Unavailable(why),
            _ => PageError::Internal(why),
        }
    }
}

/// An API message as a sentence on a page: capitalised, with a full stop.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::Unauthorized(why) => {
                let body = format!(
                    "<div class=\"signin\"><h1>Sign in to Trellis</h1>\
                     <p class=\"error\" role=\"alert\">{}</p>\
                     <p><a class=\"button primary\" href=\"/\">Go to the sign-in page</a></p></div>",
                    html::esc(&why)
                );
                return (
                    StatusCode::UNAUTHORIZED,
                    Html(html::page("Sign in", None, &body)),
                )
                    .into_response();
            }
            PageError::SignedOut { why, typed } => {
                let body = format!(
                    "<div class=\"signin\"><h1>Sign in to Trellis</h1>\
                     <p class=\"error\" role=\"alert\">{} Nothing was recorded.</p>\
                     <p>What you typed is kept below: copy it, sign in again, then open \
                     the form and send it.</p>{}\
                     <p><a class=\"button primary\" href=\"/\" target=\"_blank\" \
                     rel=\"noopener\">Sign in again (in a new tab)</a></p></div>",
                    html::esc(&why),
                    typed_list(&typed)
                );
                return (
                    StatusCode::UNAUTHORIZED,
                    Html(html::page("Sign in", None, &body)),
                )
                    .into_response();
            }
            PageError::StaleForm(Some(resend)) => {
                return (
                    StatusCode::FORBIDDEN,
                    Html(html::page("Send this form again", None, &resend.page())),
                )
                    .into_response();
            }
            PageError::StaleForm(None) => (
                StatusCode::FORBIDDEN,
                "Nothing was recorded",
                "This page was opened before you last signed in, so nothing was recorded. \
                 Reload the page and send it again."
                    .to_owned(),
            ),
            PageError::Closed { why, back } => {
                let body = format!(
                    "<h1>Nothing more to record</h1><p class=\"lead\">{}</p>\
                     <p><a class=\"button primary\" href=\"{}\">Back to the rep's page</a></p>",
                    html::esc(&why),
                    html::esc(&back)
                );
                return (
                    StatusCode::CONFLICT,
                    Html(html::page("Nothing more to record", None, &body)),
                )
                    .into_response();
            }
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not yours to see", why),
            PageError::NotYourForm(why) => (StatusCode::FORBIDDEN, "Not a form for you", why),
            PageError::FormRefused(why) => (StatusCode::FORBIDDEN, "Nothing was recorded", why),
            PageError::NotFound(why) => (StatusCode::NOT_FOUND, "Not found", why),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "That did not work", why),
            PageError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "a dashboard page: the database is unavailable");
                let body = "<h1>Trellis is briefly unavailable</h1><p class=\"lead\">It cannot \
                            reach its database just now. Nothing you recorded is lost; try \
                            again in a few seconds.</p>";
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(html::page("Briefly unavailable", None, body)),
                )
                    .into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                );
                return response;
            }
            PageError::Internal(detail) => {
                tracing::error!(error = %detail, "a dashboard page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be built just now. Try again in a moment; if it keeps \
                     happening, the operator will find the details in the service's log."
                        .to_owned(),
                )
            }
        };
        let body = format!(
            "<h1>{}</h1><p class=\"lead\">{}</p><p><a href=\"/home\">Back to the home page</a> · \
             <a href=\"/\">Sign in as someone else</a></p>",
            html::esc(title),
            html::esc(&message)
        );
        (status, Html(html::page(title, None, &body))).into_response()
    }
}
