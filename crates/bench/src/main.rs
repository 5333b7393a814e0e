//! `trellis-bench`: how fast the Trellis event log is, measured against what
//! the same database does without Trellis, in the same run on the same server.
//!
//! ```text
//! cargo run --release -p trellis-bench -- <append|read-all|all> [--backend postgres|sqlite|both]
//!     [--seconds 5] [--events 1000000] [--sqlite-events 200000] [--page 5000]
//! cargo build --release -p trellis && cargo run --release -p trellis-bench -- org
//!     [--reps 5000] [--team-size 50] [--weeks 104] [--samples 200] [--backend postgres|sqlite|both]
//!     [--database-url postgres://postgres@127.0.0.1:5432/postgres]   (or TRELLIS_BENCH_DATABASE_URL)
//! ```
//!
//! On PostgreSQL the store and the baseline connect over the same transport
//! (TLS when the server offers it, unless the URL's `sslmode` says
//! otherwise); the header line says which.
//!
//! Every measurement has two sides, printed as one line each, and a ratio
//! (Trellis rate / baseline rate). The last line of output is always
//! `ratios: name=ratio ...`, PostgreSQL names bare and SQLite names prefixed
//! `sqlite_`.
//!
//! # Where it runs
//! PostgreSQL: a database of its own, `trellis_bench_<uuid>`, created on the
//! server of `--database-url` and dropped at the end (also after an error or
//! Ctrl-C, best effort). The store migrates it; the baseline table
//! `bench_raw.events` is `(LIKE trellis.events INCLUDING ALL)`: the same
//! columns, defaults (`tx_id`), identity and indexes, but no triggers and no
//! function. Both sides use a pool of 16 connections and prepared statements.
//! SQLite: a fresh temp directory (removed at the end) holding the store's
//! file and a baseline file `raw.db` whose `events` table is the store's
//! without triggers, with the same pragmas (WAL, `synchronous = FULL`). Both
//! sides use one writer and one reader connection behind a mutex, called on
//! tokio's blocking pool, which is how the store itself works.
//!
//! # Scenarios
//! Every append writes a realistic `FeedbackGiven` event (schema 1, a JSON
//! payload of about 300 bytes with fresh ids, a note, competency, kind and
//! visibility) with a fresh command id. Timed measurements alternate
//! baseline, Trellis, baseline, Trellis (each `--seconds / 2`), so drift hits
//! both sides alike.
//!
//! - `append_8w_alone`: eight writers (as `append_8w` below) appending
//!   straight to the store, each command committed alone: the line group
//!   commit is measured against. Every other append line goes through
//!   `GroupCommit` with its default settings, as `trellis serve` appends.
//! - `append_1w`: one writer, one event per append, round-robin over its own
//!   100 streams, `ExpectedVersion::Exact` tracked locally so the version
//!   check runs. Baseline: a single-row autocommit `INSERT` of the same values
//!   (event id, stream, a locally computed version, type, schema version,
//!   jsonb payload, metadata, random 32-byte `prev_hash`/`hash`).
//! - `append_8w`: the same with 8 concurrent writers (tokio tasks on the
//!   multi-thread runtime), each with its own 100 streams.
//! - `append_64w` (PostgreSQL): 64 writers, against raw single-row INSERTs
//!   from 64 connections.
//! - `batch_100`: one writer, 100 events per append, one stream per append.
//!   Baseline on PostgreSQL: one `INSERT ... SELECT FROM unnest(<arrays>)` of
//!   the 100 rows in autocommit (one transaction, one round trip, like the
//!   append); on SQLite: 100 prepared `INSERT`s in one transaction.
//! - `append_1w_private`, `append_8w_private` (and `sqlite_…`): everything
//!   `trellis serve` does on an append — sealing, the tree signed behind,
//!   and the note encrypted with its rep's key through the vault
//!   (crypto-shredding, ADR 11) — against the same raw INSERTs; compare with
//!   `append_1w` and `append_8w`, where all of it is off.
//! - `append_1w_on_off`, `append_8w_on_off` (and `sqlite_…`): everything on
//!   against everything off directly, in twenty alternate rounds of each
//!   (`--seconds / 10` each) on one store and one connection pool; the ratio
//!   is on ÷ off, the figure issue 16 bounds. The lines above run one after
//!   another, so the later ones meet a larger log and a machine whose speed
//!   may have moved; these share both. Each side appends about reps it made
//!   before the timed rounds (their data keys made), as a server mostly
//!   does; every other line makes new reps each round. The tree's catch-up
//!   after each on round, over that round's events, counts in its time;
//!   a `tree` line says what share of the on side's time those catch-ups
//!   took, and their cost an event.
//! - `read_all`: the log is first topped up to `--events` events (SQLite:
//!   `--sqlite-events`) through the real append path (250 events per append,
//!   several writers, thousands of streams; progress on stderr), then copied
//!   row for row into the baseline table (PostgreSQL: `INSERT ... OVERRIDING
//!   SYSTEM VALUE SELECT * FROM trellis.events`, then `VACUUM ANALYZE` of both
//!   tables). Trellis: `EventStore::read_all` from `Checkpoint::START`,
//!   `--page` events per call, until it returns nothing. Baseline: `SELECT`
//!   of the same columns `FROM bench_raw.events WHERE global_position > $1
//!   ORDER BY global_position LIMIT $2` (a primary-key scan), one prepared
//!   query per page, decoding every column into what a client would use
//!   (`i64`, `Uuid`, `String`, `serde_json::Value`, `DateTime<Utc>`, `&[u8]`;
//!   SQLite: UUIDs parsed from text, the payload parsed from JSON text,
//!   timestamps from microseconds). Both sides read the same rows: one untimed
//!   warm-up pass each, then baseline, Trellis, baseline, Trellis (two timed
//!   full passes each). The log is filled as `trellis serve` writes it, each
//!   note encrypted; `read_all` reads it as stored, `read_all_ahead` the
//!   same through `ReadAhead` (the next page read while the last is used),
//!   and `read_all_private` as `trellis serve` reads it: ahead, and through
//!   the vault, decrypting every note (on, against `read_all_ahead` off). The
//!   default page is 5000: on PostgreSQL it was as fast as 1000 for the
//!   baseline and faster for Trellis.
//! - `org` (both backends): a generated organisation (`--reps` reps in teams
//!   of `--team-size`, `--weeks` weeks of measurements, coaching with action
//!   items, feedback, assessments, support requests and improvement plans;
//!   3.05 million events at the defaults) written through the real append
//!   path, the read models rebuilt, then the built `trellis serve` started
//!   as a child process on it: start to `/readyz`, its resident memory after
//!   warm-up (reads of a warm set, and one write per rep), and p50/p99 of the dashboard's team, rep, leader scorecard and
//!   review packet pages and the API's team view, profile, timeline and
//!   as-of, sampled while 8 clients keep recording feedback through the API.
//!   Ratio `org_feedback_8w`: those writes' events/s against the raw
//!   single-row INSERT at 8 writers. Ends with `ratios:`, `latency_ms:`
//!   (including `start_to_ready`) and `memory_mb:`; every figure with a
//!   target of issue 17 is printed `MET` or `MISSED`. See `org.rs`.

#![allow(
    clippy::print_stdout,
    reason = "the report is the program's standard output"
)]

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

mod asof;
mod baseline;
mod http;
mod org;
mod pg;
mod publish;
mod replay;
mod sqlite;
mod verify;
mod workload;

/// The allocator the `trellis` binary uses, so the relay and the services
/// are measured as they run there (the baselines run under it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Baseline, Trellis, baseline, Trellis: each timed measurement runs its two
/// sides this many times, each for `--seconds / ROUNDS`.
const ROUNDS: usize = 2;

/// Benchmarks of the Trellis event log against raw baselines.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// What to measure.
    #[arg(value_enum)]
    scenario: Scenario,

    /// The PostgreSQL server to use. The bench creates a database of its own
    /// there and drops it at the end.
    #[arg(
        long,
        env = "TRELLIS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,

    /// Which backends to measure.
    #[arg(long, value_enum, default_value_t = Backend::Both)]
    backend: Backend,

    /// Seconds per timed measurement (split between its baseline and Trellis runs).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,

    /// Events in the PostgreSQL log for read-all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,

    /// Events in the SQLite log for read-all.
    #[arg(long, default_value_t = 200_000)]
    sqlite_events: u64,

    /// Events per read-all call, the same for Trellis and the baselines.
    #[arg(long, default_value_t = 5000)]
    page: usize,

    /// The NATS server (JetStream) for `publish`.
    #[arg(
        long,
        env = "TRELLIS_BENCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,

    /// Events in the backlog the relay publishes in `publish`.
    #[arg(long, default_value_t = 200_000)]
    publish_events: u64,

    /// Events in the one rep's stream for as-of.
    #[arg(long, default_value_t = 10_000)]
    rep_events: u64,

    /// Reps in the generated organisation of `org`.
    #[arg(long, default_value_t = 5000)]
    reps: u64,

    /// Reps per team in `org`.
    #[arg(long, default_value_t = 50)]
    team_size: u64,

    /// Weeks of history in `org`.
    #[arg(long, default_value_t = 104)]
    weeks: u64,

    /// The seed of `org`'s generator (the same seed, the same organisation).
    #[arg(long, default_value_t = 17)]
    seed: u64,

    /// Timed requests of each kind in `org`.
    #[arg(long, default_value_t = 200)]
    samples: usize,

    /// The `trellis` binary `org` serves with (default: the one beside this
    /// executable).
    #[arg(long, env = "TRELLIS_BENCH_TRELLIS_BIN")]
    trellis_bin: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Append,
    ReadAll,
    /// Commands through HTTP at 1 and 8 clients (PostgreSQL).
    Commands,
    /// A 50,000-row CSV import through HTTP (PostgreSQL).
    Import,
    /// The relay to NATS JetStream vs raw publishes, and HTTP-command-to-subscriber latency.
    Publish,
    /// Rebuild of the growth projection against the raw ordered scan (PostgreSQL).
    Replay,
    /// Latency of a rep's state as of an instant (PostgreSQL).
    AsOf,
    /// Checking a sealed, checkpointed log of `--events` events (chains,
    /// tree and seals) against the raw ordered scan, and a packet's evidence
    /// (PostgreSQL).
    Verify,
    /// A generated organisation served by `trellis serve`: page and API
    /// latency under writes, memory, start to ready (both backends).
    Org,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Postgres,
    Sqlite,
    Both,
}

/// What one run measures.
#[derive(Debug, Clone)]
pub struct Plan {
    pub append: bool,
    pub read_all: bool,
    pub commands: bool,
    pub import: bool,
    pub seconds: Duration,
    pub events: u64,
    pub sqlite_events: u64,
    pub page: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let seconds = Duration::try_from_secs_f64(cli.seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--seconds must be a positive number")?;
    anyhow::ensure!(cli.page > 0, "--page must be at least 1");
    let plan = Plan {
        append: matches!(cli.scenario, Scenario::Append | Scenario::All),
        read_all: matches!(cli.scenario, Scenario::ReadAll | Scenario::All),
        commands: matches!(cli.scenario, Scenario::Commands | Scenario::All),
        import: matches!(cli.scenario, Scenario::Import | Scenario::All),
        seconds,
        events: cli.events,
        sqlite_events: cli.sqlite_events,
        page: cli.page,
    };
    let mut report = workload::Report::default();
    let payload_len = serde_json::to_vec(&workload::payload())?.len();
    println!(
        "trellis-bench: {:?} on {:?}, {} s per measurement, payload {payload_len} bytes",
        cli.scenario, cli.backend, cli.seconds
    );

    if cli.scenario == Scenario::Publish {
        return publish::main(
            &cli.database_url,
            &cli.nats_url,
            cli.publish_events,
            seconds,
        )
        .await;
    }

    if cli.scenario == Scenario::Org {
        anyhow::ensure!(
            cli.reps > 0 && cli.team_size > 0 && cli.weeks > 0 && cli.samples > 0,
            "--reps, --team-size, --weeks and --samples must be at least 1"
        );
        let options = org::Options {
            reps: cli.reps,
            team_size: cli.team_size,
            weeks: cli.weeks,
            seed: cli.seed,
            samples: cli.samples,
            seconds,
            trellis_bin: cli.trellis_bin.clone(),
        };
        if cli.backend != Backend::Sqlite {
            let db = baseline::BenchDatabase::create(&cli.database_url).await?;
            println!(
                "postgres: database {}, the store and the baseline both over {}",
                db.name(),
                db.transport().await
            );
            let outcome = tokio::select! {
                outcome = org::run(&options, org::Target::Postgres(&db), &mut report) => outcome,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            };
            db.drop_now().await;
            outcome.context("the PostgreSQL org benchmark failed")?;
        }
        if cli.backend != Backend::Postgres {
            let dir = std::env::temp_dir()
                .join(format!("trellis-bench-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            println!("sqlite: directory {}", dir.display());
            let outcome = tokio::select! {
                outcome = org::run(&options, org::Target::Sqlite(&dir), &mut report) => outcome,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            };
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!("warning: failed to remove {}: {e}", dir.display());
            }
            outcome.context("the SQLite org benchmark failed")?;
        }
        println!("{}", report.ratios_line());
        if let Some(line) = report.latency_line() {
            println!("{line}");
        }
        if let Some(line) = report.memory_line() {
            println!("{line}");
        }
        return Ok(());
    }

    if matches!(
        cli.scenario,
        Scenario::Replay | Scenario::AsOf | Scenario::Verify
    ) {
        let db = baseline::BenchDatabase::create(&cli.database_url).await?;
        println!(
            "postgres: database {}, the store and the baseline both over {}",
            db.name(),
            db.transport().await
        );
        let run = async {
            match cli.scenario {
                Scenario::Replay => replay::run(&db, cli.events, cli.page, &mut report).await,
                Scenario::Verify => verify::run(&db, cli.events, cli.page, &mut report).await,
                _ => asof::run(&db, cli.rep_events, &mut report).await,
            }
        };
        let outcome = tokio::select! {
            outcome = run => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        db.drop_now().await;
        outcome.context("the benchmark failed")?;
        println!("{}", report.ratios_line());
        if let Some(line) = report.latency_line() {
            println!("{line}");
        }
        return Ok(());
    }

    if cli.backend != Backend::Sqlite {
        let db = baseline::BenchDatabase::create(&cli.database_url).await?;
        println!(
            "postgres: database {}, the store and the baseline both over {}",
            db.name(),
            db.transport().await
        );
        let outcome = tokio::select! {
            outcome = pg::run(&db, &plan, &mut report) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        db.drop_now().await;
        outcome.context("the PostgreSQL benchmark failed")?;
    }

    if cli.backend != Backend::Postgres && (plan.append || plan.read_all) {
        let dir =
            std::env::temp_dir().join(format!("trellis-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        println!("sqlite: directory {}", dir.display());
        let outcome = tokio::select! {
            outcome = sqlite::run(&dir, &plan, &mut report) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("warning: failed to remove {}: {e}", dir.display());
        }
        outcome.context("the SQLite benchmark failed")?;
    }

    println!("{}", report.ratios_line());
    if let Some(line) = report.latency_line() {
        println!("{line}");
    }
    Ok(())
}
