//! `trellis audit verify`: checks every stream's hash chain.

use std::io::Write;
use std::process::ExitCode;

use crate::store::StoreArgs;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify every stream's hash chain; name the first altered, missing or
    /// reordered event of each broken stream. Exits 0 when the log is intact,
    /// 1 when it is not, 2 when it could not be checked.
    Verify {
        /// Events read per page.
        #[arg(long, default_value_t = 5_000)]
        page: usize,
    },
}

pub async fn run(store_args: &StoreArgs, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { page } = command;
    let store = store_args.open().await?;
    let started = std::time::Instant::now();
    let report = trellis_eventstore::verify(&*store, page).await?;
    let mut out = std::io::stdout().lock();
    let seconds = started.elapsed().as_secs_f64();
    if report.is_intact() {
        writeln!(
            out,
            "intact: {} events in {} streams of {} verified in {seconds:.1} s",
            report.events,
            report.streams,
            store_args.describe()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "NOT INTACT: {} of {} streams are broken ({} events checked in {seconds:.1} s)",
        report.findings.len(),
        report.streams,
        report.events
    )?;
    writeln!(out, "first problem: {}", report.findings[0])?;
    for finding in &report.findings[1..] {
        writeln!(out, "also: {finding}")?;
    }
    Ok(ExitCode::from(1))
}
