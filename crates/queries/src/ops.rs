//! For operators: rebuilding read models with progress (`trellis replay`),
//! and projection lag as Prometheus text (for `/metrics`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use trellis_projections::Error;
use trellis_projections::engine::{Engine, Lag, Progress, RebuildSummary};
use trellis_projections::projection::Projection;

/// Where a rebuild stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayProgress {
    /// Events folded so far.
    pub events: u64,
    /// The global position reached, and the log's head: `position / head`
    /// is the share done (positions can have gaps, so it is an estimate).
    pub position: u64,
    pub head: u64,
    /// 0.0 to 1.0.
    pub fraction: f64,
    pub events_per_second: f64,
    pub elapsed: Duration,
}

impl ReplayProgress {
    fn from(progress: Progress, started: Instant) -> Self {
        let elapsed = started.elapsed();
        let secs = elapsed.as_secs_f64();
        let head = progress.head.position.max(progress.checkpoint.position);
        ReplayProgress {
            events: progress.events,
            position: progress.checkpoint.position,
            head,
            fraction: if head == 0 {
                1.0
            } else {
                progress.checkpoint.position as f64 / head as f64
            },
            events_per_second: if secs > 0.0 {
                progress.events as f64 / secs
            } else {
                0.0
            },
            elapsed,
        }
    }

    /// One line of a text progress bar, e.g.
    /// `growth [#########-----------]  45.0%  450000 events  93000 events/s`.
    pub fn line(&self, projection: &str) -> String {
        const WIDTH: usize = 30;
        let done = ((self.fraction.clamp(0.0, 1.0) * WIDTH as f64).round() as usize).min(WIDTH);
        format!(
            "{projection} [{}{}] {:5.1}%  {} events  {:.0} events/s",
            "#".repeat(done),
            "-".repeat(WIDTH - done),
            self.fraction * 100.0,
            self.events,
            self.events_per_second
        )
    }
}

/// Rebuilds `projection` from the log's start into a new generation and
/// switches to it (queries keep reading the old one meanwhile), calling
/// `on_progress` after every batch.
pub async fn replay(
    engine: &Engine,
    projection: &dyn Projection,
    mut on_progress: impl FnMut(&ReplayProgress) + Send,
) -> Result<RebuildSummary, Error> {
    let started = Instant::now();
    let mut report = |p: Progress| on_progress(&ReplayProgress::from(p, started));
    engine.rebuild(projection, &mut report).await
}

/// `trellis replay [--projection NAME]`: rebuilds the named projection, or
/// every one of `projections` in order when `name` is `None`. An unknown
/// name is `Error::InvalidInput` naming the known ones.
pub async fn replay_named(
    engine: &Engine,
    projections: &[Box<dyn Projection>],
    name: Option<&str>,
    mut on_progress: impl FnMut(&str, &ReplayProgress) + Send,
) -> Result<Vec<RebuildSummary>, Error> {
    let chosen: Vec<&dyn Projection> = match name {
        None => projections.iter().map(|p| &**p).collect(),
        Some(name) => {
            let found = projections.iter().find(|p| p.name() == name);
            match found {
                Some(p) => vec![&**p],
                None => {
                    return Err(Error::InvalidInput(format!(
                        "there is no projection named {name:?}; known: {}",
                        projections
                            .iter()
                            .map(|p| p.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    let mut summaries = Vec::with_capacity(chosen.len());
    for projection in chosen {
        let label = projection.name();
        summaries.push(replay(engine, projection, |p| on_progress(label, p)).await?);
    }
    Ok(summaries)
}

/// The final line of a replay: `growth: 1000000 events in 12.3 s (81300 events/s), generation 4`.
pub fn summary_line(summary: &RebuildSummary) -> String {
    format!(
        "{}: {} events in {:.1} s ({:.0} events/s), generation {}",
        summary.projection,
        summary.events,
        summary.seconds,
        summary.events_per_second,
        summary.generation
    )
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Projection lag as Prometheus text exposition lines: for every generation,
/// `trellis_projection_position` (the global position it has reached),
/// `trellis_projection_lag_events` (positions between it and the log's head:
/// an upper bound on events still to apply), and
/// `trellis_projection_events_applied`.
pub fn prometheus_lag(lags: &[Lag]) -> String {
    let mut out = String::new();
    type Gauge = (&'static str, &'static str, fn(&Lag) -> u64);
    let metrics: [Gauge; 3] = [
        (
            "trellis_projection_position",
            "Global log position a projection generation has applied up to.",
            |l| l.checkpoint.position,
        ),
        (
            "trellis_projection_lag_events",
            "Global positions between a projection generation and the head of the log.",
            |l| l.behind,
        ),
        (
            "trellis_projection_events_applied",
            "Events a projection generation has applied.",
            |l| l.events_applied,
        ),
    ];
    for (name, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for lag in lags {
            let _ = writeln!(
                out,
                "{name}{{projection=\"{}\",generation=\"{}\",status=\"{}\"}} {}",
                label(&lag.projection),
                lag.generation,
                lag.status.as_str(),
                value(lag)
            );
        }
    }
    out
}

/// [`prometheus_lag`] of the engine's projections now.
pub async fn lag_metrics(engine: &Engine) -> Result<String, Error> {
    Ok(prometheus_lag(&engine.lag().await?))
}
