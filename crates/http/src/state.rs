//! The small state every API shares, and the ports it holds.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use trellis_eventstore::EventStore;

use crate::{auth, metrics};

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

/// More Prometheus text for `/metrics`, from a part of the process (the
/// write path's append latency, projection lag).
#[async_trait::async_trait]
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    async fn render(&self) -> String;
}

/// The largest request body accepted unless configured otherwise, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What every API's handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn EventStore>,
    token_key: auth::TokenKey,
    /// Service tokens kept in a store; none: only signed tokens.
    authenticator: Option<Arc<dyn auth::Authenticator>>,
    clock: Arc<dyn Clock>,
    body_limit: usize,
    metrics: metrics::Metrics,
    metrics_sources: Mutex<Vec<Arc<dyn MetricsSource>>>,
    /// Flips to true when the process starts to stop: long-lived answers
    /// (the live feed) end so that shutdown can finish.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl HttpState {
    pub fn new(
        store: Arc<dyn EventStore>,
        token_key: auth::TokenKey,
        clock: Arc<dyn Clock>,
    ) -> Self {
        HttpState {
            inner: Arc::new(Inner {
                store,
                token_key,
                authenticator: None,
                clock,
                body_limit: DEFAULT_BODY_LIMIT,
                metrics: metrics::Metrics::default(),
                metrics_sources: Mutex::new(Vec::new()),
                stopping: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// The same, accepting bodies of at most `bytes`. Call before cloning.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.body_limit = bytes,
            None => tracing::warn!("with_body_limit on a shared HttpState is ignored"),
        }
        self
    }

    /// The same, accepting the service tokens `authenticator` knows. Call
    /// before cloning.
    pub fn with_authenticator(mut self, authenticator: Arc<dyn auth::Authenticator>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.authenticator = Some(authenticator),
            None => tracing::warn!("with_authenticator on a shared HttpState is ignored"),
        }
        self
    }

    /// The claims of a bearer token: a service account's (`trs_…`), looked
    /// up; any other, verified by the token key.
    pub async fn authenticate(&self, token: &str) -> Result<auth::Claims, auth::AuthError> {
        let now = self.clock().now();
        if token.starts_with(auth::SERVICE_TOKEN_PREFIX) {
            return match &self.inner.authenticator {
                Some(authenticator) => authenticator.service_token(token, now).await,
                None => Err(auth::AuthError::UnknownServiceToken),
            };
        }
        self.token_key().verify(token, now.timestamp())
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

    /// The largest request body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Adds a source of `/metrics` text (any clone of the state may).
    pub fn add_metrics_source(&self, source: Arc<dyn MetricsSource>) {
        self.inner
            .metrics_sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    /// Tells long-lived answers (the live feed) that the process is stopping.
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Resolves once [`HttpState::stop`] was called (at once if it was).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.inner.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }

    /// Every `/metrics` text: the requests', then the added sources'.
    pub async fn render_metrics(&self) -> String {
        let sources = self
            .inner
            .metrics_sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut text = self.inner.metrics.render();
        for source in sources {
            text.push_str(&source.render().await);
        }
        text
    }
}
