//! The application: every API mounted beside the operational routes, under
//! one set of layers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::state::HttpState;
use crate::{openapi, ops, problem, trace};

/// One API mounted by [`app`]: its routes, with its state applied and no
/// fallback, and its OpenAPI document (none for the dashboard's pages).
pub struct Api {
    pub routes: Router,
    pub doc: Option<utoipa::openapi::OpenApi>,
}

impl std::fmt::Debug for Api {
    // utoipa's `OpenApi` is `Debug` only with a feature we do not need.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("routes", &self.routes)
            .field("doc", &self.doc.as_ref().map(|d| &d.info.title))
            .finish()
    }
}

/// The application: the operational routes and every API in `apis`, under
/// one set of layers (request ids, the body limit, logging and metrics),
/// with a problem-details 404 for any other path. `/openapi.json` serves the
/// shared document merged with every API's.
pub fn app(http: HttpState, apis: impl IntoIterator<Item = Api>) -> Router {
    let mut routes = Router::new();
    let mut docs = Vec::new();
    for api in apis {
        routes = routes.merge(api.routes);
        docs.extend(api.doc);
    }
    let doc = Arc::new(openapi::document(docs));
    let mut operations = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if http.metrics_access().on_main_listener() {
        operations = operations.route("/metrics", get(ops::metrics));
    }
    let routes = operations
        .with_state(http.clone())
        .route("/openapi.json", get(ops::openapi))
        .with_state(doc)
        .merge(routes);
    layered(http, routes)
}

/// What a listener of its own for `/metrics` serves ([`HttpState::with_metrics_elsewhere`]):
/// `/metrics` alone (still behind the metrics token, if one is set), under
/// the same layers as [`app`].
pub fn metrics_app(http: HttpState) -> Router {
    let routes = Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(http.clone());
    layered(http, routes)
}

/// `routes` with a problem-details 404 for any other path, under the layers
/// every response goes through.
fn layered(http: HttpState, routes: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .fallback(ops::not_found)
        .layer(middleware::map_response(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(http.body_limit()))
        .layer(middleware::from_fn_with_state(http, observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The Content-Security-Policy of a response that does not set its own
/// (the APIs' JSON): nothing may load, frame it or submit from it.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The headers every response carries: a Content-Security-Policy (the
/// response's own, e.g. a page's, or [`DEFAULT_CSP`]), no MIME sniffing, no
/// framing, no referrer sent to other sites, and `Cache-Control: no-store`
/// unless the response says how it may be kept (the public icon and keys
/// do): an answer about people (a profile, an export) stays out of shared
/// and browser caches.
async fn security_headers(mut response: Response) -> Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Marks a request sent in bulk from inside the process (the demo's
/// organisation, recorded through the router): its "request handled" line is
/// logged at DEBUG, not INFO, so a thousand of them do not bury the lines an
/// operator needs. Refusals and failures are logged as for any request.
#[derive(Debug, Clone, Copy, Default)]
pub struct BulkRequest;

/// Logs every request with its request id and records how long it took by
/// route template, method and status. The request's span continues the
/// caller's W3C trace context ([`trace`]), which the request carries on as a
/// [`trace::RequestTrace`] extension.
/// Store failures are logged here with their details; the body only says
/// something went wrong.
async fn observe(State(state): State<HttpState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let bulk = request.extensions().get::<BulkRequest>().is_some();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!("http.request", %method, %route, %request_id);
    if let Some(trace) = trace::continue_trace(&span, request.headers()) {
        request.extensions_mut().insert(trace);
    }
    let response = {
        use tracing::Instrument;
        next.run(request).instrument(span.clone()).await
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics().request(&method, &route, status, elapsed);
    let elapsed_ms = duration_ms(elapsed);
    let _entered = span.enter();
    if let Some(detail) = response.extensions().get::<problem::ErrorDetail>() {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, error = %detail.0, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, error = %detail.0, "request refused");
        }
    } else if bulk {
        tracing::debug!(status, elapsed_ms, "request handled");
    } else {
        tracing::info!(status, elapsed_ms, "request handled");
    }
    response
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
