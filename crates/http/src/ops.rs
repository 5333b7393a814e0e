//! Operating the service: liveness, readiness, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::problem::ApiError;
use crate::state::HttpState;

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the event store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The store answers", body = String),
              (status = 503, description = "The store does not answer", body = crate::problem::Problem,
               content_type = "application/problem+json")))]
pub async fn readyz(State(app): State<HttpState>) -> Result<&'static str, ApiError> {
    app.store()
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok("ready\n")
}

/// Prometheus metrics: request durations by route template, append
/// latency, projection and relay lag, the webhook backlog, the connection
/// pool, the age of the log's last signed checkpoint. Open to whoever
/// reaches it unless `trellis serve` was given `--metrics-token` (then it
/// needs `Authorization: Bearer <that token>`) or `--metrics-listen` (then
/// it is served on that address, and this one answers 404).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
              (status = 401, description = "A metrics token is configured and the request does not carry it",
               body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(app): State<HttpState>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if !app.metrics_access().allows(authorization) {
        return metrics_token_missing();
    }
    let mut response = app.render_metrics().await.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A 401 for `/metrics` without its token (or with another), saying the same
/// either way.
fn metrics_token_missing() -> Response {
    let error = ApiError::Unauthorized(AuthError::Missing);
    let mut problem = error.to_problem();
    problem.detail = "/metrics needs the metrics token: send `Authorization: Bearer <token>` with \
                      the token `trellis serve` was given as --metrics-token \
                      (TRELLIS_METRICS_TOKEN)"
        .to_owned();
    // The status and headers of any 401 (`WWW-Authenticate: Bearer`), with
    // this detail.
    let mut response = error.into_response();
    *response.body_mut() =
        axum::body::Body::from(serde_json::to_vec(&problem).expect("a problem serializes"));
    response
}

/// This API, described in OpenAPI 3.1: the operational routes and those of
/// every API mounted beside them ([`crate::app`]).
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi(
    State(doc): State<Arc<utoipa::openapi::OpenApi>>,
) -> Result<Response, ApiError> {
    let json = doc
        .to_pretty_json()
        .map_err(|e| ApiError::Internal(format!("the OpenAPI document does not serialize: {e}")))?;
    let mut response = (StatusCode::OK, json).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Anything else: a problem for a client of the API, and a page for a
/// person whose browser asked for an address Trellis has no page at (a
/// mistyped or old link), with the way back to their home page.
pub async fn not_found(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !browser || uri.path().starts_with("/v1/") {
        return ApiError::NotFound(
            "there is no such route; see /openapi.json for every route Trellis offers".into(),
        )
        .into_response();
    }
    let mut response = (StatusCode::NOT_FOUND, NOT_FOUND_PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'",
        ),
    );
    response
}

/// The page for an address with no page: plain, readable on a phone.
const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Page not found · Trellis</title><style>body{font:16px/1.5 system-ui,sans-serif;\
color:#1f2933;max-width:40rem;margin:3rem auto;padding:0 1rem}a{color:#1d4ed8}\
.button{display:inline-block;padding:.6rem 1rem;border-radius:.4rem;background:#1d4ed8;\
color:#fff;text-decoration:none}</style></head><body><main><h1>Page not found</h1>\
<p>Trellis has no page at this address. The link may be mistyped or out of date.</p>\
<p><a class=\"button\" href=\"/home\">Go to your home page</a></p></main></body></html>";
