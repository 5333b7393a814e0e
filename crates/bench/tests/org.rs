//! `trellis-bench org` at a toy size, so the scenario cannot rot: the
//! organisation is written as planned, `trellis serve` starts on it, every
//! kind of request answers, and the report's lines are there. On the
//! embedded store always; on PostgreSQL too when `TRELLIS_TEST_DATABASE_URL`
//! is set.
//!
//! The scenario serves with the `trellis` binary beside the bench's: it is
//! built here first (`cargo build -p trellis`, a no-op when up to date).

use std::path::{Path, PathBuf};
use std::process::Command;

/// 20 reps in 4 teams of 5 over 4 weeks: per rep a join, 16 measurements,
/// 2 coaching sessions, 2 closed action items, 2 pieces of feedback and an
/// assessment (24), plus the start of an improvement plan for reps 0, 5, 10
/// and 15 (25); the catalogue is 4 competencies, 4 standards and 4 teams of
/// 2 events. 4 * 25 + 16 * 24 + 16 = 500.
const EXPECTED_EVENTS: u64 = 500;

fn bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trellis-bench"))
}

/// Builds the `trellis` binary into the bench's target directory and
/// profile; returns its path.
fn trellis() -> PathBuf {
    let bench = bench();
    let profile_dir = bench.parent().expect("the bench's directory");
    let target_dir = profile_dir.parent().expect("the target directory");
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", "trellis"])
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p trellis failed");
    profile_dir.join("trellis")
}

fn run_org(trellis: &Path, backend: &str, prefix: &str, database_url: Option<&str>) {
    let mut command = Command::new(bench());
    command.args([
        "org",
        "--reps",
        "20",
        "--team-size",
        "5",
        "--weeks",
        "4",
        "--samples",
        "4",
        "--seconds",
        "0.5",
        "--backend",
        backend,
    ]);
    command.arg("--trellis-bin").arg(trellis);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let output = command.output().expect("the bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "org on {backend} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let planned = format!("{EXPECTED_EVENTS} events planned");
    assert!(stdout.contains(&planned), "no {planned:?} in\n{stdout}");
    let written = format!("wrote {EXPECTED_EVENTS} events");
    assert!(stdout.contains(&written), "no {written:?} in\n{stdout}");
    // The write side is warmed on every rep before the measured writes.
    let warmed = "warm-up of writes: 20 pieces of feedback, one per rep";
    assert!(stdout.contains(warmed), "no {warmed:?} in\n{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let n = lines.len();
    assert!(n >= 3, "too little output:\n{stdout}");
    let (ratios, latency, memory) = (lines[n - 3], lines[n - 2], lines[n - 1]);
    assert!(
        ratios.starts_with("ratios:") && ratios.contains(&format!("{prefix}org_feedback_8w=")),
        "{ratios}"
    );
    assert!(latency.starts_with("latency_ms:"), "{latency}");
    for kind in [
        "team_page",
        "rep_page",
        "scorecard_page",
        "packet_page",
        "api_team_view",
        "api_profile",
        "api_timeline",
        "api_as_of",
    ] {
        for p in ["p50", "p99"] {
            let name = format!(" {prefix}{kind}_{p}=");
            assert!(latency.contains(&name), "no {name:?} in {latency}");
        }
    }
    assert!(
        latency.contains(&format!(" {prefix}start_to_ready=")),
        "{latency}"
    );
    assert!(memory.starts_with("memory_mb:"), "{memory}");
    assert!(
        memory.contains(&format!(" {prefix}rss_after_warmup=")),
        "{memory}"
    );
    for target in ["start_to_ready", "rss_after_warmup", "api_as_of"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("target ") && l.contains(&format!("{prefix}{target}"))),
            "no target line for {target} in\n{stdout}"
        );
    }
}

#[test]
fn org_at_a_toy_size_reports_every_figure() {
    let trellis = trellis();
    run_org(&trellis, "sqlite", "sqlite_", None);
    if let Ok(url) = std::env::var("TRELLIS_TEST_DATABASE_URL") {
        run_org(&trellis, "postgres", "", Some(&url));
    }
}
