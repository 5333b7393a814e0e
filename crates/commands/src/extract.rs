//! What a write takes from a request besides its body: the concurrency and
//! idempotency headers, and the trace context its events carry.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use trellis_eventstore::TraceParent;
use trellis_http::problem::ApiError;
use trellis_http::trace::RequestTrace;

/// Concurrency and idempotency headers of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteHeaders {
    /// `If-Match`: the stream version the client last saw.
    pub if_match: Option<u64>,
    /// `Idempotency-Key`: a retried request with the same key returns the first response.
    pub idempotency_key: Option<String>,
    /// `X-Request-Id`, when it is a UUID: becomes the correlation id.
    pub request_id: Option<uuid::Uuid>,
    /// The request's W3C trace context ([`RequestTrace`], from its
    /// `traceparent` header), recorded with the events it appends.
    pub traceparent: Option<TraceParent>,
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

impl<S: Send + Sync> FromRequestParts<S> for WriteHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
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
            traceparent: RequestTrace::of(&parts.extensions),
        })
    }
}
