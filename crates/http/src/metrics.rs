//! The process's metrics, rendered as Prometheus text on `/metrics`.
//!
//! Recorded through the [`metrics`] facade into a Prometheus registry of
//! `metrics-exporter-prometheus`, one per [`crate::HttpState`] (so tests
//! running side by side in one process do not count each other's requests),
//! rendered by our own `/metrics` route ([`crate::ops::metrics`]).
//!
//! Three kinds of metric, by where the number comes from:
//! - **Measured on the way**, as handles registered here: the request
//!   duration histogram ([`Metrics::request`]), the write path's append
//!   latency and counters (`trellis-commands`).
//! - **Counted by a worker that holds no state** (the relay's publish
//!   errors): through the facade's macros, into the global recorder, which
//!   `trellis serve` points at this registry ([`Metrics::install_global`]).
//! - **Read from a store** (projection and relay lag, the webhook backlog,
//!   the connection pool, the age of the last signed checkpoint): a
//!   [`crate::MetricsSource`] sets them at each scrape, into a registry of
//!   that scrape alone, so a number no source reports any more disappears
//!   rather than standing still.
//!
//! Names follow Prometheus' conventions: the `trellis_` prefix, the unit in
//! the name (`_seconds`, `_events`), `_total` on counters. Labels never
//! carry an id: a route is its template (`/v1/reps/{rep_id}`), never the
//! requested path.

use std::sync::{Arc, Weak};
use std::time::Duration;

pub use metrics::{Counter, Gauge, Histogram};
use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// The HTTP request duration histogram, by route template, method and status.
pub const HTTP_REQUEST_DURATION: &str = "trellis_http_request_duration_seconds";

/// Upper bounds (seconds) of every `*_duration_seconds` histogram: from half
/// a millisecond (an append on a warm connection) to ten seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the histograms' recorded samples are folded into their buckets
/// when no scrape does it.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What the registry says about where a metric was recorded (the exporter
/// ignores it).
const METADATA: Metadata<'static> = Metadata::new("trellis", metrics::Level::INFO, None);

/// A Prometheus registry. Cheap to clone: clones share it.
#[derive(Debug, Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty registry, with the request duration histogram described.
    /// Within a Tokio runtime, a task folds histogram samples into their
    /// buckets every few seconds until the registry is dropped.
    pub fn new() -> Self {
        let metrics = Metrics::scratch();
        metrics.recorder.describe_histogram(
            HTTP_REQUEST_DURATION.into(),
            None,
            "Time to answer an HTTP request, by route template, method and status.".into(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(upkeep(Arc::downgrade(&metrics.recorder)));
        }
        metrics
    }

    /// An empty registry without upkeep: for one scrape's numbers (those
    /// the sources read), set and rendered at once.
    pub(crate) fn scratch() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".into()),
                &DURATION_BUCKETS,
            )
            .expect("the buckets are not empty")
            .build_recorder();
        Metrics {
            recorder: Arc::new(recorder),
        }
    }

    /// Makes this registry the recorder of the [`metrics`] macros for the
    /// whole process, so workers that hold no [`crate::HttpState`] (the
    /// relay) report here. `false` when the process has one already (a
    /// second application in the same process): it stays.
    pub fn install_global(&self) -> bool {
        metrics::set_global_recorder(self.recorder.clone()).is_ok()
    }

    /// One HTTP request answered.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = key(
            HTTP_REQUEST_DURATION,
            &[
                ("method", method),
                ("route", route),
                ("status", &status.to_string()),
            ],
        );
        self.recorder
            .register_histogram(&key, &METADATA)
            .record(elapsed.as_secs_f64());
    }

    /// The counter `name` with `labels`, described by `help`; keep the handle.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Counter {
        self.recorder
            .describe_counter(name.into(), None, help.into());
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    /// The gauge `name` with `labels`, described by `help`.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Gauge {
        self.recorder.describe_gauge(name.into(), None, help.into());
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    /// The histogram `name` with `labels`, described by `help`; keep the
    /// handle. A name ending in `_duration_seconds` gets [`DURATION_BUCKETS`].
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Histogram {
        self.recorder
            .describe_histogram(name.into(), None, help.into());
        self.recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    /// The Prometheus text exposition of everything recorded here.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|&(name, value)| Label::new(name, value.to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

/// Folds recorded histogram samples into their buckets, so that a registry
/// nobody scrapes does not keep every sample; ends with the registry.
async fn upkeep(recorder: Weak<PrometheusRecorder>) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match recorder.upgrade() {
            Some(recorder) => recorder.handle().run_upkeep(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_histogram_by_route_template_method_and_status() {
        let metrics = Metrics::scratch();
        metrics.request("GET", "/v1/reps/{rep_id}", 200, Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains("# TYPE trellis_http_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                "trellis_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/reps/{rep_id}\",status=\"200\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "trellis_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/reps/{rep_id}\",status=\"200\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn counters_and_gauges_render_with_their_help() {
        let metrics = Metrics::scratch();
        metrics
            .counter("trellis_things_total", "Things.", &[])
            .increment(2);
        metrics
            .gauge("trellis_depth", "How deep.", &[("state", "idle")])
            .set(4.0);
        let text = metrics.render();
        assert!(
            text.contains("# HELP trellis_things_total Things."),
            "{text}"
        );
        assert!(text.contains("trellis_things_total 2"), "{text}");
        assert!(text.contains("# TYPE trellis_depth gauge"), "{text}");
        assert!(text.contains("trellis_depth{state=\"idle\"} 4"), "{text}");
    }

    #[test]
    fn registries_are_apart() {
        let (a, b) = (Metrics::scratch(), Metrics::scratch());
        a.counter("trellis_things_total", "Things.", &[])
            .increment(1);
        assert!(!b.render().contains("trellis_things_total"));
    }
}
