//! Operating the service: liveness, readiness, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<HttpState>) -> Response {
    let mut response = app.render_metrics().await.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
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

/// Anything else.
pub async fn not_found() -> ApiError {
    ApiError::NotFound(
        "there is no such route; see /openapi.json for every route Trellis offers".into(),
    )
}
