//! `trellis replay`: rebuilds read models from the log, with a progress bar.
//!
//! The rebuild goes into a new generation while `trellis serve` keeps
//! answering from the current one, then switches when caught up.

use std::io::Write;
use std::process::ExitCode;

use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::projection::Projection;

use crate::store::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Rebuild only this projection (default: all of them).
    #[arg(long)]
    projection: Option<String>,
    /// N of the quality gate, as `trellis serve` uses it.
    #[arg(long, env = "TRELLIS_QUALITY_GATE_PERIODS", default_value_t = 3)]
    quality_gate_periods: u32,
}

pub async fn run(store_args: &StoreArgs, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let stores = store_args.open_all().await?;
    let engine = Engine::new(stores.log.clone(), stores.read.clone());
    let projections: Vec<Box<dyn Projection>> = vec![Box::new(Growth::new(GrowthSettings {
        quality_gate_periods: args.quality_gate_periods,
    }))];
    let mut last_draw = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let summaries = trellis_queries::ops::replay_named(
        &engine,
        &projections,
        args.projection.as_deref(),
        |name, progress| {
            // Redraw at most ten times a second, on one line of stderr.
            if last_draw.elapsed().as_millis() >= 100 || progress.fraction >= 1.0 {
                last_draw = std::time::Instant::now();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{}", progress.line(name));
                let _ = err.flush();
            }
        },
    )
    .await?;
    eprintln!();
    let mut out = std::io::stdout().lock();
    for summary in &summaries {
        writeln!(out, "{}", trellis_queries::ops::summary_line(summary))?;
    }
    Ok(ExitCode::SUCCESS)
}
