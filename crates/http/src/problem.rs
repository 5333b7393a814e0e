//! Errors at the HTTP edge, as RFC 9457 problem details.
//!
//! Every failure a client can cause has its own status and a sentence saying
//! what was wrong and how to fix it. Failures of the store become 503 with
//! `Retry-After` (transient) or a generic 500 whose details go to the log,
//! never to the body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trellis_domain::Rejection;
use utoipa::ToSchema;

use crate::auth::AuthError;

/// One offending field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as a JSON path (`action_items[1].due_on`) or a CSV line and column.
    pub field: String,
    pub reason: String,
}

/// An `application/problem+json` body (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://trellis.dev/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    pub status: u16,
    /// What was wrong with this request and how to fix it.
    pub detail: String,
    /// For validation problems: each offending field with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For conflicts: the stream's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// For a refusal about one value of the request: which (`date`,
    /// `period`, `roles`, `ramp` or `targets`), for a form to show it beside
    /// that field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concerns: Option<String>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedBody(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the stream is at version {current}, not {expected}: reload and retry")]
    Conflict { expected: String, current: u64 },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Rejected(Rejection),
    #[error("{0}")]
    IdempotencyMismatch(String),
    #[error("{0}")]
    Unavailable(String),
    /// What the store holds failed a check of its integrity: a 500 whose
    /// detail (what is damaged, what the operator should run) is shown.
    #[error("{0}")]
    Damaged(String),
    #[error("{0}")]
    Internal(String),
}

/// A refused credential is a 401; one that could not be checked, a 503.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable => ApiError::Unavailable(e.to_string()),
            other => ApiError::Unauthorized(other),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        ApiError::Rejected(rejection)
    }
}

impl From<trellis_eventstore::Error> for ApiError {
    fn from(e: trellis_eventstore::Error) -> Self {
        use trellis_eventstore::Error as E;
        match e {
            E::Conflict {
                expected, current, ..
            } => ApiError::Conflict {
                expected: expected.to_string(),
                current,
            },
            E::InvalidInput(message) => ApiError::BadRequest(message),
            E::Unavailable(message) => ApiError::Unavailable(message),
            E::Internal(message) => ApiError::Internal(message),
        }
    }
}

fn is_not_found(rejection: &Rejection) -> bool {
    matches!(
        rejection,
        Rejection::TeamNotFound
            | Rejection::CompetencyNotFound
            | Rejection::StandardNotFound
            | Rejection::RepNotFound
            | Rejection::FeedbackNotFound { .. }
            | Rejection::ActionItemNotFound { .. }
            | Rejection::SupportRequestNotFound { .. }
            | Rejection::FactNotFound { .. }
    )
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedBody(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Rejected(r) if is_not_found(r) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::Rejected(_) | ApiError::IdempotencyMismatch(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Damaged(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MalformedBody(_) => ("malformed-body", "The request body could not be read"),
            ApiError::BadRequest(_) => ("bad-request", "The request is not valid"),
            ApiError::Unauthorized(_) => ("unauthorized", "Not authenticated"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::Rejected(r) if is_not_found(r) => ("not-found", "Not found"),
            ApiError::Conflict { .. } => {
                ("version-conflict", "The record changed since you read it")
            }
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "The request body is too large"),
            ApiError::UnsupportedMediaType(_) => (
                "unsupported-media-type",
                "The content type is not supported",
            ),
            ApiError::Validation(_) => ("validation", "Some fields are invalid"),
            ApiError::Rejected(_) => ("rejected", "Trellis refused the command"),
            ApiError::IdempotencyMismatch(_) => (
                "idempotency-key-reused",
                "The idempotency key was used for another request",
            ),
            ApiError::Unavailable(_) => ("unavailable", "Trellis is temporarily unavailable"),
            ApiError::Damaged(_) => ("log-damaged", "The log failed a check of its integrity"),
            ApiError::Internal(_) => ("internal", "Something went wrong on our side"),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (kind, title) = self.kind_and_title();
        let detail = match self {
            ApiError::Validation(errors) => format!(
                "{} invalid: {}",
                how_many_invalid(errors),
                errors
                    .iter()
                    .take(3)
                    .map(|e| format!("{}: {}", e.field, e.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            ApiError::Unavailable(_) => {
                "The event store cannot be reached right now. Nothing you sent was recorded \
                 unless a success was returned; retry after a few seconds."
                    .to_owned()
            }
            ApiError::Internal(_) => {
                "An unexpected error occurred; it has been logged. Nothing is lost: retry, and \
                 report the request id if it persists."
                    .to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            kind: format!("https://trellis.dev/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            current_version: match self {
                ApiError::Conflict { current, .. } => Some(*current),
                _ => None,
            },
            concerns: match self {
                ApiError::Rejected(r) => r.concerns().map(std::borrow::Cow::into_owned),
                _ => None,
            },
        }
    }
}

/// "3 fields are", or, when every error is about an entry of a list sent
/// whole (an import's `[2].value`, `line 4: period` or `line 9`), "2 rows
/// are": what a
/// person fixes is the row.
fn how_many_invalid(errors: &[FieldError]) -> String {
    let rows: Option<std::collections::BTreeSet<&str>> = errors
        .iter()
        .map(|e| {
            let row = e.field.split(['.', ':']).next().unwrap_or_default();
            let is_row = (row.starts_with('[') && row.ends_with(']'))
                || row
                    .strip_prefix("line ")
                    .is_some_and(|n| n.parse::<u64>().is_ok());
            is_row.then_some(row)
        })
        .collect();
    let (n, what) = match rows {
        Some(rows) if !rows.is_empty() => (rows.len(), "row"),
        _ => (errors.len(), "field"),
    };
    format!("{n} {what}{}", if n == 1 { " is" } else { "s are" })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        let status = self.status();
        let body = serde_json::to_vec(&problem).expect("a problem serializes");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Conflict { current, .. } => {
                if let Ok(etag) = HeaderValue::from_str(&format!("\"{current}\"")) {
                    headers.insert(header::ETAG, etag);
                }
            }
            _ => {}
        }
        // The details of store failures go to the log (with the request id
        // from the span), never into the body.
        response
            .extensions_mut()
            .insert(ErrorDetail(self.to_string()));
        response
    }
}

/// The internal description of an error, for the logging middleware.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

/// Collects field errors while parsing a request into domain values.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    /// Keeps the value, or records why `field` is invalid.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.errors.push(FieldError {
                    field: field.into(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Fails with every recorded field error, if there is one.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Takes a value [`Fields::check`] kept, after [`Fields::finish`] returned `Ok`.
#[macro_export]
macro_rules! valid {
    ($value:expr) => {
        $value.expect("every field was checked before")
    };
}
