//! The small state every API shares, and the ports it holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
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

/// Numbers for `/metrics` that are read rather than counted (projection
/// lag, the webhook backlog, the connection pool): asked at each scrape.
#[async_trait::async_trait]
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    /// Sets this source's gauges in `metrics`, a registry of this scrape
    /// alone. A source that cannot read its numbers logs why and sets
    /// nothing: the scrape then lacks them rather than showing old ones.
    async fn refresh(&self, metrics: &metrics::Metrics);
}

/// How long one [`MetricsSource`] may take at a scrape before it is left out.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who may read `/metrics`, and where.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    /// The SHA-256 of the token `/metrics` requires as `Authorization:
    /// Bearer`; none: anyone who reaches the route may read it.
    token_sha256: Option<[u8; 32]>,
    /// `/metrics` is served on a listener of its own
    /// ([`crate::metrics_app`]): the main one answers 404 there.
    elsewhere: bool,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("token", &self.token_sha256.map(|_| "<redacted>"))
            .field("elsewhere", &self.elsewhere)
            .finish()
    }
}

impl MetricsAccess {
    /// Whether the main listener serves `/metrics`.
    pub fn on_main_listener(&self) -> bool {
        !self.elsewhere
    }

    /// Whether `authorization` (the header's value, if any) may read
    /// `/metrics`: always without a token, else only `Bearer <token>`,
    /// compared in constant time.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.token_sha256 else {
            return true;
        };
        let Some(given) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else {
            return false;
        };
        // Digests of equal length, compared without an early exit: how
        // long the comparison takes says nothing about the token.
        let given: [u8; 32] = Sha256::digest(given).into();
        given
            .iter()
            .zip(expected)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
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
    metrics_access: MetricsAccess,
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
                metrics_access: MetricsAccess::default(),
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

    /// The same, answering `/metrics` only to `Authorization: Bearer
    /// <token>` (401 otherwise). Call before cloning.
    pub fn with_metrics_token(mut self, token: &str) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.metrics_access.token_sha256 = Some(Sha256::digest(token.as_bytes()).into());
            }
            None => tracing::warn!("with_metrics_token on a shared HttpState is ignored"),
        }
        self
    }

    /// The same, with `/metrics` served by [`crate::metrics_app`] on a
    /// listener of its own: [`crate::app`] does not mount it (a 404). Call
    /// before cloning.
    pub fn with_metrics_elsewhere(mut self) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics_access.elsewhere = true,
            None => tracing::warn!("with_metrics_elsewhere on a shared HttpState is ignored"),
        }
        self
    }

    /// Who may read `/metrics`, and where.
    pub fn metrics_access(&self) -> &MetricsAccess {
        &self.inner.metrics_access
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

    /// Adds a source of numbers read at each scrape (any clone of the state may).
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

    /// The `/metrics` text: what was recorded, then what each source reads
    /// now (a source slower than a few seconds is left out of this scrape).
    pub async fn render_metrics(&self) -> String {
        let sources = self
            .inner
            .metrics_sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let read = metrics::Metrics::scratch();
        for source in sources {
            if tokio::time::timeout(SOURCE_TIMEOUT, source.refresh(&read))
                .await
                .is_err()
            {
                tracing::warn!("a metrics source took too long; left out of this scrape");
            }
        }
        let mut text = self.inner.metrics.render();
        text.push_str(&read.render());
        text
    }
}
