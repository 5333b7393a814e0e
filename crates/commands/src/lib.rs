//! The write side of Trellis over HTTP: every domain command under `/v1`.
//!
//! A request is authenticated (bearer JWT), parsed at the edge into domain
//! values (each bad field named), authorized against the loaded aggregate,
//! decided by the pure domain, and appended with the expected version. The
//! handler adds the clock, the actor and the ids; the domain stays pure.
//! Errors are `application/problem+json`; a client can never cause a 500.
//!
//! It owns HTTP concerns only: no SQL, no business rules (those live in
//! `trellis-domain`), no projections.
//!
//! # Layout
//! - [`AppState`], [`CommandsConfig`], [`router`]: the service and its routes.
//! - [`auth`]: HS256 tokens and roles. [`policy`]: who may do what.
//! - [`extract`]: principal, JSON body, `If-Match` / `Idempotency-Key`.
//! - [`write`]: load → authorize → decide → append, with retries and idempotency.
//! - [`streams`]: reading one stream in pages, shared with the read side and
//!   the dashboard.
//! - [`problem`]: [`problem::ApiError`] → RFC 9457 problem details.
//! - [`routes`]: one module per resource; [`wire`]: request and response bodies.
//! - [`metrics`]: Prometheus counters; [`openapi`]: the OpenAPI document,
//!   merged with those of the services mounted beside it
//!   ([`AppState::with_api_doc`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use chrono::{DateTime, Utc};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use trellis_eventstore::EventStore;

pub mod auth;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod problem;
pub mod routes;
pub mod streams;
pub mod wire;
pub mod write;

/// Where "now" comes from; tests may fix it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// More Prometheus text for `/metrics`, from other services in the process
/// (projection lag, the relay).
#[async_trait::async_trait]
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    async fn render(&self) -> String;
}

/// Settings of the command service.
#[derive(Debug, Clone)]
pub struct CommandsConfig {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The most rows one measurement import may carry.
    pub max_import_rows: usize,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            body_limit: 16 * 1024 * 1024,
            max_import_rows: 50_000,
        }
    }
}

/// Everything a handler needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn EventStore>,
    token_key: auth::TokenKey,
    clock: Arc<dyn Clock>,
    metrics: metrics::Metrics,
    config: CommandsConfig,
    state_cache: write::StateCache,
    metrics_sources: Vec<Arc<dyn MetricsSource>>,
    /// The documents of the other services mounted beside this one, merged
    /// into `/openapi.json`.
    api_docs: openapi::OtherDocs,
}

impl AppState {
    pub fn new(
        store: Arc<dyn EventStore>,
        token_key: auth::TokenKey,
        clock: Arc<dyn Clock>,
        config: CommandsConfig,
    ) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                token_key,
                clock,
                metrics: metrics::Metrics::default(),
                config,
                state_cache: write::StateCache::new(50_000),
                metrics_sources: Vec::new(),
                api_docs: openapi::OtherDocs::default(),
            }),
        }
    }

    pub fn store(&self) -> &dyn EventStore {
        &*self.inner.store
    }

    pub fn store_arc(&self) -> Arc<dyn EventStore> {
        self.inner.store.clone()
    }

    pub fn token_key(&self) -> &auth::TokenKey {
        &self.inner.token_key
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub fn config(&self) -> &CommandsConfig {
        &self.inner.config
    }

    /// Adds a source of `/metrics` text. Call before cloning the state.
    pub fn with_metrics_source(mut self, source: Arc<dyn MetricsSource>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics_sources.push(source),
            None => tracing::warn!("with_metrics_source on a shared AppState is ignored"),
        }
        self
    }

    /// Every `/metrics` text: this service's, then the added sources'.
    pub async fn render_metrics(&self) -> String {
        let mut text = self.inner.metrics.render();
        for source in &self.inner.metrics_sources {
            text.push_str(&source.render().await);
        }
        text
    }

    /// Adds the OpenAPI document of another service whose routes are mounted
    /// beside this one's (with [`router_with`]), so that `/openapi.json`
    /// describes every route the process serves. Call before cloning the state.
    pub fn with_api_doc(mut self, doc: utoipa::openapi::OpenApi) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.api_docs.0.push(doc),
            None => tracing::warn!("with_api_doc on a shared AppState is ignored"),
        }
        self
    }

    /// The document `/openapi.json` serves: this service's, merged with the
    /// documents added with [`AppState::with_api_doc`].
    pub fn api_doc(&self) -> utoipa::openapi::OpenApi {
        openapi::document(self.inner.api_docs.0.iter().cloned())
    }

    /// Aggregate states folded by this process, to spare re-reading streams.
    pub fn state_cache(&self) -> &write::StateCache {
        &self.inner.state_cache
    }
}

/// Every route of the command service, with request ids, logging and metrics.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The command service's routes and `extra` (other services' routes, with
/// their state already applied), under one set of layers: request ids, the
/// body limit, logging and metrics. `extra` must not set a fallback.
pub fn router_with(state: AppState, extra: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(routes::router())
        .with_state(state.clone())
        .merge(extra)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config().body_limit,
        ))
        .layer(middleware::from_fn_with_state(state, observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Marks a request sent in bulk from inside the process (the demo's
/// organisation, recorded through the router): its "request handled" line is
/// logged at DEBUG, not INFO, so a thousand of them do not bury the lines an
/// operator needs. Refusals and failures are logged as for any request.
#[derive(Debug, Clone, Copy, Default)]
pub struct BulkRequest;

/// Logs every request with its request id and counts it by route and status.
/// Store failures are logged here with their details; the body only says
/// something went wrong.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
    let response = {
        use tracing::Instrument;
        next.run(request).instrument(span.clone()).await
    };
    let status = response.status().as_u16();
    state.metrics().request(&method, &route, status);
    let elapsed_ms = duration_ms(started.elapsed());
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
