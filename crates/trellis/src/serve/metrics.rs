//! `/metrics` in `trellis serve`: who may read it and where
//! (`--metrics-token`, `--metrics-listen`), and what is read for it at each
//! scrape, from the stores (so every process reports the same numbers,
//! whichever runs the worker): projection lag, relay lag, the webhook
//! backlog, the age of the log's last signed checkpoint, and the PostgreSQL
//! connection pool.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use trellis_eventstore::EventStore;
use trellis_http::metrics::Metrics;
use trellis_http::{HttpState, MetricsSource};
use trellis_projections::engine::Engine;
use trellis_projections::store::Status;

use crate::store::{Backend, Stores};

/// `http` answering `/metrics` only with `token`, and only on
/// `elsewhere` (see [`serve`]) when given.
pub fn protect(http: HttpState, token: Option<&str>, elsewhere: Option<SocketAddr>) -> HttpState {
    let http = match token {
        Some(token) => http.with_metrics_token(token),
        None => http,
    };
    match elsewhere {
        Some(_) => http.with_metrics_elsewhere(),
        None => http,
    }
}

/// The listener of `--metrics-listen`, when given.
pub async fn bind(address: Option<SocketAddr>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address} (--metrics-listen)"))?;
    Ok(Some(listener))
}

/// Serves `/metrics` alone on `listener` until the process stops.
pub fn serve(listener: tokio::net::TcpListener, http: HttpState) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "metrics are served on their own address");
    eprintln!("trellis: metrics on http://{address}/metrics");
    let stopped = http.stopped();
    let router = trellis_http::metrics_app(http);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(())
}

/// Every source of `trellis serve`: the relay's when it publishes (`nats`),
/// the pool's on PostgreSQL.
pub fn sources(
    stores: &Stores,
    hooks: &trellis_webhooks::Webhooks,
    nats: bool,
) -> Vec<Arc<dyn MetricsSource>> {
    let mut sources: Vec<Arc<dyn MetricsSource>> = vec![
        Arc::new(trellis_webhooks::metrics::BacklogMetrics::new(
            hooks.clone(),
        )),
        Arc::new(ProjectionLag {
            engine: Engine::new(stores.log.clone(), stores.read.clone()),
            log: stores.log.clone(),
        }),
        Arc::new(CheckpointAge(stores.log.clone())),
        Arc::new(LogGuards(stores.backend.clone())),
    ];
    if nats {
        sources.push(Arc::new(RelayLag {
            log: stores.log.clone(),
            relay: trellis_notifications::RelayConfig::default(),
        }));
    }
    if let Backend::Postgres { store, .. } = &stores.backend {
        sources.push(Arc::new(PoolUse(store.clone())));
    }
    sources
}

/// Each projection generation's place and lag (retired ones left out):
/// `trellis_projection_position`, `trellis_projection_events_applied`,
/// `trellis_projection_lag_events` (global positions between it and the
/// log's head: an upper bound on the events still to apply) and
/// `trellis_projection_lag_seconds` (how long ago the oldest event still to
/// apply was recorded; 0 when caught up).
#[derive(Debug)]
struct ProjectionLag {
    engine: Engine,
    log: Arc<dyn EventStore>,
}

#[async_trait::async_trait]
impl MetricsSource for ProjectionLag {
    async fn refresh(&self, metrics: &Metrics) {
        let lags = match self.engine.lag().await {
            Ok(lags) => lags,
            Err(e) => {
                tracing::warn!(error = %e, "projection lag is unavailable");
                return;
            }
        };
        for lag in lags.iter().filter(|lag| lag.status != Status::Retired) {
            let generation = lag.generation.to_string();
            let labels = [
                ("projection", lag.projection.as_str()),
                ("generation", generation.as_str()),
                ("status", lag.status.as_str()),
            ];
            let seconds = if lag.behind == 0 {
                Some(0.0)
            } else {
                oldest_unread_age(&*self.log, lag.checkpoint).await
            };
            metrics
                .gauge(
                    "trellis_projection_position",
                    "Global log position a projection generation has applied up to.",
                    &labels,
                )
                .set(lag.checkpoint.position as f64);
            metrics
                .gauge(
                    "trellis_projection_events_applied",
                    "Events a projection generation has applied.",
                    &labels,
                )
                .set(lag.events_applied as f64);
            metrics
                .gauge(
                    "trellis_projection_lag_events",
                    "Global positions between a projection generation and the head of the log.",
                    &labels,
                )
                .set(lag.behind as f64);
            if let Some(seconds) = seconds {
                metrics
                    .gauge(
                        "trellis_projection_lag_seconds",
                        "How long ago the oldest event a projection generation has still to apply was recorded.",
                        &labels,
                    )
                    .set(seconds);
            }
        }
    }
}

/// How long ago the first event after `after` was recorded, in seconds
/// (0 when there is none yet to read); none when the log cannot say.
async fn oldest_unread_age(
    log: &dyn EventStore,
    after: trellis_eventstore::Checkpoint,
) -> Option<f64> {
    match log.read_all(after, 1).await {
        Ok(events) => Some(
            events
                .first()
                .map_or(0.0, |event| seconds_since(event.metadata.recorded_at)),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the log for the lag in seconds");
            None
        }
    }
}

fn seconds_since(at: chrono::DateTime<Utc>) -> f64 {
    (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
}

/// `trellis_relay_lag_events`: global positions between the relay's saved
/// checkpoint and the log's head. The relay saves its checkpoint when it is
/// caught up and every few batches while it catches up, so this is an upper
/// bound, exact when the relay is idle; it grows while no relay runs.
#[derive(Debug)]
struct RelayLag {
    log: Arc<dyn EventStore>,
    relay: trellis_notifications::RelayConfig,
}

#[async_trait::async_trait]
impl MetricsSource for RelayLag {
    async fn refresh(&self, metrics: &Metrics) {
        let read = async {
            let head = self.log.head().await?;
            let relayed = self
                .log
                .load_checkpoint(&self.relay.checkpoint_name)
                .await?
                .unwrap_or(trellis_eventstore::Checkpoint::START);
            Ok::<_, trellis_eventstore::Error>(head.position.saturating_sub(relayed.position))
        };
        match read.await {
            Ok(behind) => metrics
                .gauge(
                    "trellis_relay_lag_events",
                    "Global positions between the relay's checkpoint and the head of the log.",
                    &[("stream", self.relay.stream.as_str())],
                )
                .set(behind as f64),
            Err(e) => tracing::warn!(error = %e, "relay lag is unavailable"),
        }
    }
}

/// `trellis_checkpoint_age_seconds`: how long ago the log's newest signed
/// checkpoint was signed (absent until there is one).
#[derive(Debug)]
struct CheckpointAge(Arc<dyn EventStore>);

#[async_trait::async_trait]
impl MetricsSource for CheckpointAge {
    async fn refresh(&self, metrics: &Metrics) {
        match self.0.latest_tree_checkpoint().await {
            Ok(Some(checkpoint)) => metrics
                .gauge(
                    "trellis_checkpoint_age_seconds",
                    "Time since the log's newest signed checkpoint was signed.",
                    &[],
                )
                .set(seconds_since(checkpoint.signed_at)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the last signed checkpoint is unavailable"),
        }
    }
}

/// `trellis_log_guards_not_in_place`: how many of the log's guards against
/// change are missing, disabled or not as the migrations made them (0 when
/// every one is in place; `audit verify` names them).
#[derive(Debug)]
struct LogGuards(Backend);

#[async_trait::async_trait]
impl MetricsSource for LogGuards {
    async fn refresh(&self, metrics: &Metrics) {
        match self.0.guard_findings().await {
            Ok(findings) => metrics
                .gauge(
                    "trellis_log_guards_not_in_place",
                    "The log's guards against change (triggers refusing updates and deletes) \
                     that are missing, disabled or altered; `trellis migrate` puts them back.",
                    &[],
                )
                .set(findings.len() as f64),
            Err(e) => tracing::warn!(error = %e, "the log's guards could not be checked"),
        }
    }
}

/// `trellis_db_pool_connections{state="in_use"|"idle"|"max"}` and
/// `trellis_db_pool_waiting`: the PostgreSQL pool the log, the read models,
/// the webhooks and sign-in share.
#[derive(Debug)]
struct PoolUse(trellis_eventstore::postgres::PostgresStore);

#[async_trait::async_trait]
impl MetricsSource for PoolUse {
    async fn refresh(&self, metrics: &Metrics) {
        let status = self.0.pool().status();
        let help = "PostgreSQL connections of the pool: in use, idle, and the most it opens.";
        for (state, count) in [
            ("in_use", status.size.saturating_sub(status.available)),
            ("idle", status.available),
            ("max", status.max_size),
        ] {
            metrics
                .gauge("trellis_db_pool_connections", help, &[("state", state)])
                .set(count as f64);
        }
        metrics
            .gauge(
                "trellis_db_pool_waiting",
                "Requests waiting for a PostgreSQL connection of the pool.",
                &[],
            )
            .set(status.waiting as f64);
    }
}
