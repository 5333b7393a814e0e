//! The webhook backlog on `/metrics`, read from the store at each scrape:
//! `trellis_webhook_queue_depth` (deliveries pending) and
//! `trellis_webhook_dead_letters` (deliveries dead), of the subscriptions
//! not deleted.

use trellis_http::MetricsSource;
use trellis_http::metrics::Metrics;

use crate::Webhooks;

/// The webhook backlog, as a [`MetricsSource`].
#[derive(Debug)]
pub struct BacklogMetrics(Webhooks);

impl BacklogMetrics {
    pub fn new(hooks: Webhooks) -> Self {
        BacklogMetrics(hooks)
    }
}

#[async_trait::async_trait]
impl MetricsSource for BacklogMetrics {
    async fn refresh(&self, metrics: &Metrics) {
        match self.0.store().backlog().await {
            Ok(backlog) => {
                metrics
                    .gauge(
                        "trellis_webhook_queue_depth",
                        "Webhook deliveries waiting to be sent (due, retrying, or held by a paused subscription).",
                        &[],
                    )
                    .set(backlog.pending as f64);
                metrics
                    .gauge(
                        "trellis_webhook_dead_letters",
                        "Webhook deliveries on the dead-letter list (replayable).",
                        &[],
                    )
                    .set(backlog.dead as f64);
            }
            Err(e) => tracing::warn!(error = %e, "the webhook backlog is unavailable"),
        }
    }
}
