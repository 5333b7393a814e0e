//! The `trellis` binary: ties the Trellis services together and carries the
//! operator commands.
//!
//! Layout: `main.rs` parses the command line and dispatches; `store.rs` opens
//! the configured event store (PostgreSQL when a database URL is given, the
//! embedded file otherwise, and knows every component's migrations); one
//! module per command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod checkpoints;
mod log;
mod migrate;
mod nats;
mod relay;
mod replay;
mod replica;
mod roles;
mod secret;
mod serve;
mod signin;
mod store;
mod telemetry;
mod token;

/// The allocator of every Trellis process: the relay, the projections and the
/// command service allocate on one thread and free on another all the time,
/// which mimalloc handles at a fraction of glibc's cost (measured by
/// `trellis-bench publish`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Trellis: an event-sourced ledger of how each salesperson grows.
#[derive(Debug, Parser)]
#[command(
    name = "trellis",
    version,
    about = "Trellis: an event-sourced ledger of how each salesperson grows",
    long_about = "Trellis: an event-sourced ledger of how each salesperson grows.\n\n\
        Every command works on the PostgreSQL store when --database-url (or TRELLIS_DATABASE_URL) \
        is given, and on the embedded single-file store in --data-dir otherwise."
)]
struct Cli {
    #[command(flatten)]
    store: store::StoreArgs,

    /// How log lines are written to standard error: `text` for people, `json`
    /// (one object a line) for a log collector.
    #[arg(long, global = true, env = "TRELLIS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Trellis: the HTTP API, the dashboard and the read models.
    Serve(serve::ServeArgs),
    /// Apply every pending migration as the schema's owner, then print what
    /// the runtime role (trellis_writer) may do; `serve` then runs as a login
    /// role that is a member of it. Refuses a changed migration and a schema
    /// newer than this binary.
    Migrate,
    /// Run Trellis with a demo organisation (two teams, a dozen reps, nine
    /// months of history) and print a sign-in link for each role.
    Demo(serve::ServeArgs),
    /// Mint a bearer token (for development, tests and scripts).
    Token(token::TokenArgs),
    /// Make a one-time sign-in link for a person (the first admin of a new
    /// installation starts here: `trellis sign-in-link --admin "Your Name"`).
    SignInLink(signin::SignInLinkArgs),
    /// Rebuild read models from the log, with a progress bar and a summary;
    /// a running `trellis serve` keeps answering meanwhile.
    Replay(replay::ReplayArgs),
    /// Check the log's integrity.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print the log in global order, one JSON document per line.
    Log(log::LogArgs),
    /// Make and inspect the keys that sign the log's checkpoints.
    #[command(subcommand)]
    Keys(checkpoints::KeysCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Demo(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let traces = match &cli.command {
        Command::Serve(args) | Command::Demo(args) => {
            match args
                .telemetry
                .otlp_endpoint
                .as_ref()
                .map(telemetry::Traces::start)
            {
                None => None,
                Some(Ok(traces)) => Some(traces),
                Some(Err(e)) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        // The filter applies to every layer: what is not logged is not
        // exported either.
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(traces.as_ref().map(telemetry::Traces::layer));
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        match cli.log_format {
            LogFormat::Json => subscriber
                .with(logs.json().flatten_event(true).with_current_span(true))
                .init(),
            LogFormat::Text => subscriber
                .with(logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
                .init(),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(&cli.store, args).await,
            Command::Migrate => migrate::run(&cli.store).await,
            Command::Demo(args) => serve::run(&cli.store, args.with_demo()).await,
            Command::Token(args) => token::run(&cli.store, args),
            Command::SignInLink(args) => signin::run(&cli.store, args).await,
            Command::Replay(args) => replay::run(&cli.store, args).await,
            Command::Audit(command) => audit::run(&cli.store, command).await,
            Command::Log(args) => log::run(&cli.store, args).await,
            Command::Keys(command) => checkpoints::run_keys(command),
        }
    });
    // Stopped serving (SIGTERM included): send the spans still queued.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
