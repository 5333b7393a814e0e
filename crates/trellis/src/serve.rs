//! `trellis serve`: the Trellis services in one process.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use trellis_commands::{AppState, CommandsConfig, SystemClock};

use crate::secret::SecretArgs;
use crate::store::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRELLIS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The largest request body accepted, in bytes (imports are the largest).
    #[arg(long, env = "TRELLIS_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    body_limit: usize,
    /// The most rows one measurement import may carry.
    #[arg(long, env = "TRELLIS_MAX_IMPORT_ROWS", default_value_t = 50_000)]
    max_import_rows: usize,
    #[command(flatten)]
    secret: SecretArgs,
}

pub async fn run(store_args: &StoreArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = store_args.open().await?;
    let key = args.secret.key(&store_args.data_dir)?;
    let state = AppState::new(
        store,
        key,
        Arc::new(SystemClock),
        CommandsConfig {
            body_limit: args.body_limit,
            max_import_rows: args.max_import_rows,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, store = %store_args.describe(), "trellis is serving");
    eprintln!(
        "trellis: serving on http://{address} ({}); Ctrl-C stops",
        store_args.describe()
    );
    axum::serve(listener, trellis_commands::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("trellis stopped; in-flight requests finished");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM: stop accepting, let in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
