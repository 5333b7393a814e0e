//! Prometheus metrics of the write path, added to `/metrics` as a
//! [`MetricsSource`]: the append latency histogram, version conflicts and
//! idempotent replays. Kept with atomics, so the hot path does no allocation.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use trellis_http::MetricsSource;
use trellis_http::metrics::counter;

/// Upper bounds (seconds) of the append latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
pub struct WriteMetrics {
    append_buckets: [AtomicU64; BUCKETS.len()],
    append_count: AtomicU64,
    append_sum_micros: AtomicU64,
    conflicts: AtomicU64,
    idempotent_replays: AtomicU64,
}

impl WriteMetrics {
    pub fn append_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.append_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.append_count.fetch_add(1, Ordering::Relaxed);
        self.append_sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn idempotent_replay(&self) {
        self.idempotent_replays.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP trellis_append_duration_seconds Time to append a command's events.\n");
        out.push_str("# TYPE trellis_append_duration_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.append_buckets) {
            let _ = writeln!(
                out,
                "trellis_append_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.append_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "trellis_append_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.append_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "trellis_append_duration_seconds_sum {sum}");
        let _ = writeln!(out, "trellis_append_duration_seconds_count {count}");
        counter(
            &mut out,
            "trellis_version_conflicts_total",
            "Appends refused or retried for a stale version.",
            self.conflicts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "trellis_idempotent_replays_total",
            "Retried requests answered with their first outcome.",
            self.idempotent_replays.load(Ordering::Relaxed),
        );
        out
    }
}

#[async_trait::async_trait]
impl MetricsSource for WriteMetrics {
    async fn render(&self) -> String {
        WriteMetrics::render(self)
    }
}
