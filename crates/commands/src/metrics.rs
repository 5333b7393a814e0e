//! Metrics of the write path, in the process's registry
//! ([`trellis_http::metrics`]): the append latency histogram, version
//! conflicts and idempotent replays. Their handles are registered once, so
//! the hot path only records.

use std::time::Duration;

use trellis_http::metrics::{Counter, Histogram, Metrics};

/// Time to append one command's events to the log (the store call alone:
/// loading, deciding and answering are not in it).
pub const APPEND_DURATION: &str = "trellis_append_duration_seconds";

#[derive(Debug)]
pub struct WriteMetrics {
    append: Histogram,
    conflicts: Counter,
    idempotent_replays: Counter,
}

impl WriteMetrics {
    /// The write path's metrics, registered in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        WriteMetrics {
            append: metrics.histogram(
                APPEND_DURATION,
                "Time to append a command's events to the log.",
                &[],
            ),
            conflicts: metrics.counter(
                "trellis_version_conflicts_total",
                "Appends refused or retried for a stale version.",
                &[],
            ),
            idempotent_replays: metrics.counter(
                "trellis_idempotent_replays_total",
                "Retried requests answered with their first outcome.",
                &[],
            ),
        }
    }

    pub fn append_latency(&self, elapsed: Duration) {
        self.append.record(elapsed.as_secs_f64());
    }

    pub fn conflict(&self) {
        self.conflicts.increment(1);
    }

    pub fn idempotent_replay(&self) {
        self.idempotent_replays.increment(1);
    }
}
