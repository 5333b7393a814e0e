//! What a handler takes from a request: the authenticated principal, a JSON
//! body parsed with errors a person can act on, and the concurrency and
//! idempotency headers.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{AuthError, Claims};
use crate::problem::ApiError;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal(pub Claims);

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::NotBearer)?;
        let now = state.clock().now().timestamp();
        Ok(Principal(state.token_key().verify(token.trim(), now)?))
    }
}

/// A JSON body: 415 unless the content type is JSON, 413 past the body limit,
/// 400 for malformed JSON, 422 naming the field for a well-formed body of the
/// wrong shape. Keeps a fingerprint of the raw body for idempotency.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub fingerprint: [u8; 32],
}

pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

pub(crate) async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than the limit of {} bytes; send less at once (split an \
                 import into several requests)",
                state.config().body_limit
            ))
        } else {
            ApiError::MalformedBody(format!("the body could not be read: {rejection}"))
        }
    })
}

pub(crate) fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().into()
}

/// Parses JSON, telling syntax errors (400) from shape errors (422 with the field).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
        .map_err(|e| json_error(e.path().to_string(), e.into_inner()))?;
    deserializer
        .end()
        .map_err(|e| json_error(String::new(), e))?;
    Ok(value)
}

fn json_error(path: String, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedBody(format!(
            "the body is not valid JSON: {error}; send a JSON object"
        )),
        Category::Data => {
            let parent = if path == "." { String::new() } else { path };
            let message = error.to_string();
            // serde names a missing field only in its message: put it in the path.
            let field = match message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
            {
                Some((name, _)) if parent.is_empty() => name.to_owned(),
                Some((name, _)) => format!("{parent}.{name}"),
                None if parent.is_empty() => "body".to_owned(),
                None => parent,
            };
            ApiError::Validation(vec![crate::problem::FieldError {
                field,
                reason: message,
            }])
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match content_type(req.headers()).as_deref() {
            Some("application/json") => {}
            Some(other) if other.ends_with("+json") => {}
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body must be JSON, sent with `Content-Type: application/json` (got {})",
                    other.map_or("no content type".to_owned(), |t| format!("{t:?}"))
                )));
            }
        }
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let body = read_body(req, state).await?;
        if body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{')
        {
            return Err(ApiError::Validation(vec![crate::problem::FieldError {
                field: "body".into(),
                reason: "the body must be a JSON object ({\"field\": value, …})".into(),
            }]));
        }
        let value = parse_json(&body)?;
        Ok(JsonBody {
            value,
            fingerprint: fingerprint(&method, &path, &body),
        })
    }
}

/// Concurrency and idempotency headers of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteHeaders {
    /// `If-Match`: the stream version the client last saw.
    pub if_match: Option<u64>,
    /// `Idempotency-Key`: a retried request with the same key returns the first response.
    pub idempotency_key: Option<String>,
    /// `X-Request-Id`, when it is a UUID: becomes the correlation id.
    pub request_id: Option<uuid::Uuid>,
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

impl FromRequestParts<AppState> for WriteHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or("").trim();
                let unquoted = text.trim_start_matches("W/").trim_matches('"');
                Some(unquoted.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "If-Match must be the version you last saw, as returned in ETag (like \
                         \"3\"), not {text:?}"
                    ))
                })?)
            }
        };
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(value) => {
                let key = value.to_str().unwrap_or("").trim();
                if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
                    return Err(ApiError::BadRequest(format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII \
                         characters (a UUID is a good choice)"
                    )));
                }
                Some(key.to_owned())
            }
        };
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::parse_str(v).ok());
        Ok(WriteHeaders {
            if_match,
            idempotency_key,
            request_id,
        })
    }
}
