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
    NotFound(String),
    BadRequest(String),
    /// The database cannot be reached just now: a 503 the viewer may retry
    /// (details to the log).
    Unavailable(String),
    /// Details go to the log, not the page.
    Internal(String),
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
fn sentence(message: &str) -> String {
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
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not yours to see", why),
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
