//! Signed checkpoints of the log: the signing key, the worker that grows the
//! log's Merkle tree and signs it, where the checkpoints are kept outside the
//! database (a JetStream stream that refuses delete and purge), and the
//! `trellis keys` commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use trellis_eventstore::EventStore;
use trellis_eventstore::note::{SignerKey, VerifierKey};
use trellis_eventstore::tree::{self, TreeBuilder};
use trellis_notifications::LeaseConfig;
pub use trellis_notifications::checkpoints::ensure_stream;
use trellis_notifications::checkpoints::{StreamNames, publish};
use trellis_notifications::lease::Lease;

/// The file a development signing key is kept in, inside the data directory.
pub const DEV_KEY_FILE: &str = "checkpoint-signing-key";
pub use trellis_notifications::checkpoints::DEFAULT_STREAM;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckpointArgs {
    /// The key that signs the log's checkpoints, as `trellis keys generate`
    /// writes it (PRIVATE+KEY+…). Absent (and no key file): a development
    /// key is generated once and kept in <data-dir>/checkpoint-signing-key.
    #[arg(long, env = "TRELLIS_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// A file holding the signing key (for a key mounted as a secret).
    #[arg(long, env = "TRELLIS_SIGNING_KEY_FILE", value_name = "PATH")]
    pub signing_key_file: Option<PathBuf>,
    /// Public keys of earlier signing keys, still published and accepted so
    /// what they signed keeps verifying after a rotation (repeat the flag or
    /// separate with commas).
    #[arg(
        long = "previous-public-key",
        env = "TRELLIS_PREVIOUS_PUBLIC_KEYS",
        value_name = "KEY",
        value_delimiter = ','
    )]
    pub previous_public_keys: Vec<String>,
    /// The name of this log in its checkpoints (their first line): a host
    /// and path that no other log uses.
    #[arg(long, env = "TRELLIS_LOG_ORIGIN", default_value = "trellis.local/log")]
    pub log_origin: String,
    /// Sign a checkpoint once this many events were appended since the last.
    #[arg(long, env = "TRELLIS_CHECKPOINT_EVERY_EVENTS", default_value_t = 1_000)]
    pub checkpoint_every_events: u64,
    /// Sign a checkpoint at least this often while events are appended.
    #[arg(
        long,
        env = "TRELLIS_CHECKPOINT_EVERY_SECONDS",
        value_name = "SECONDS",
        default_value_t = 60
    )]
    pub checkpoint_every_seconds: u64,
    /// The JetStream stream the checkpoints are published to (with NATS). It
    /// refuses delete and purge.
    #[arg(long, env = "TRELLIS_CHECKPOINT_STREAM", default_value = DEFAULT_STREAM)]
    pub checkpoint_stream: String,
}

/// The keys of a running log: the one that signs, and every public key that
/// verifies (the signer's first).
#[derive(Debug, Clone)]
pub struct Keys {
    pub signer: SignerKey,
    pub verifiers: Vec<VerifierKey>,
}

impl CheckpointArgs {
    /// Loads the signing key (from the flag, the file, or the development
    /// key in `data_dir`) and the earlier public keys.
    pub fn keys(&self, data_dir: &Path) -> anyhow::Result<Keys> {
        let signer = match (&self.signing_key, &self.signing_key_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "give the signing key once: --signing-key or --signing-key-file, not both"
            ),
            (Some(text), None) => text
                .parse::<SignerKey>()
                .context("--signing-key (TRELLIS_SIGNING_KEY) is not a signing key")?,
            (None, Some(path)) => read_key_file(path)?,
            (None, None) => dev_key(data_dir, &self.log_origin)?,
        };
        let mut verifiers = vec![signer.verifier()];
        for text in &self.previous_public_keys {
            let key = text
                .parse::<VerifierKey>()
                .with_context(|| format!("--previous-public-key {text:?}"))?;
            if !verifiers.contains(&key) {
                verifiers.push(key);
            }
        }
        Ok(Keys { signer, verifiers })
    }

    pub fn stream(&self) -> StreamNames {
        StreamNames::new(&self.checkpoint_stream)
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<SignerKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key file {}", path.display()))?;
    text.parse::<SignerKey>()
        .with_context(|| format!("{} does not hold a signing key", path.display()))
}

fn dev_key(data_dir: &Path, origin: &str) -> anyhow::Result<SignerKey> {
    let path = data_dir.join(DEV_KEY_FILE);
    if path.exists() {
        return read_key_file(&path);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create {}", data_dir.display()))?;
    let key = SignerKey::generate(origin)?;
    write_secret(&path, &key.to_secret_text())?;
    tracing::warn!(
        path = %path.display(),
        public_key = %key.verifier(),
        "no TRELLIS_SIGNING_KEY given: generated a development checkpoint signing key; set one in production"
    );
    Ok(key)
}

/// Writes a new file only its owner can read.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "failed to create {} (it must not exist yet)",
            path.display()
        )
    })?;
    writeln!(file, "{text}")?;
    Ok(())
}

/// What the checkpoint worker needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub keys: Keys,
    pub origin: String,
    pub every_events: u64,
    pub every: Duration,
    pub lease: LeaseConfig,
    /// With NATS: where checkpoints are kept outside the database (the
    /// stream, made by the worker, with this many replicas).
    pub jetstream: Option<(jetstream::Context, StreamNames, usize)>,
    /// Webhook subscribers get each checkpoint too.
    pub webhooks: Option<trellis_webhooks::Webhooks>,
}

/// Grows the tree behind the log and signs it: after `every_events` new
/// events, or `every` after the last checkpoint when events came since.
/// One active worker across processes (a lease); the others stand by.
pub async fn run_worker(
    log: Arc<dyn EventStore>,
    config: WorkerConfig,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    tokio::pin!(stop);
    loop {
        let mut lease = tokio::select! {
            lease = Lease::acquire(&config.lease, "TRELLIS_TREE", Duration::from_secs(2)) => lease,
            () = &mut stop => return,
        };
        tokio::select! {
            outcome = sign_while_held(&log, &config) => {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "the checkpoint worker failed; starting again");
                }
            }
            () = lease.lost() => tracing::warn!("the checkpoint worker lost its lease"),
            () = &mut stop => return,
        }
        drop(lease);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn sign_while_held(log: &Arc<dyn EventStore>, config: &WorkerConfig) -> anyhow::Result<()> {
    // The stream first: a checkpoint is published only once it can be kept.
    // While NATS is not up yet this fails and the worker starts again.
    if let Some((js, names, replicas)) = &config.jetstream {
        ensure_stream(js, names, *replicas).await?;
    }
    let mut builder = TreeBuilder::load(&**log).await?;
    let mut signed = log.latest_tree_checkpoint().await?.map_or(0, |c| c.size);
    let mut last_signed = tokio::time::Instant::now();
    let mut appended = log.appended();
    loop {
        let size = builder.catch_up(&**log).await?;
        let due = size > signed
            && (size - signed >= config.every_events || last_signed.elapsed() >= config.every);
        if due {
            let checkpoint = builder
                .sign(
                    &**log,
                    &config.keys.signer,
                    &config.origin,
                    chrono::Utc::now(),
                )
                .await?;
            signed = size;
            last_signed = tokio::time::Instant::now();
            tracing::info!(size, "signed a checkpoint of the log");
            if let Some((js, names, _)) = &config.jetstream {
                publish(js, names, &checkpoint).await?;
            }
            if let Some(hooks) = &config.webhooks {
                trellis_webhooks::deliver_checkpoint(
                    hooks,
                    &checkpoint,
                    builder.read(),
                    chrono::Utc::now(),
                )
                .await?;
            }
        }
        // Wake on appends, and at least once a second for the time rule
        // (and for events another process appended); then let appends
        // gather, so a busy log is caught up in few writes.
        let _ = tokio::time::timeout(Duration::from_secs(1), appended.changed()).await;
        tokio::time::sleep(tree::CATCH_UP_INTERVAL).await;
    }
}

/// `trellis keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Make a new checkpoint signing key: writes the private key to a new
    /// file only you can read and prints its public key.
    Generate {
        /// The file to write the private key to (it must not exist).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// The key's name: the log's origin, a host and path.
        #[arg(long, default_value = "trellis.local/log")]
        name: String,
    },
    /// Print the public key of a signing key file.
    Public {
        #[arg(long, value_name = "PATH")]
        key_file: PathBuf,
    },
}

pub fn run_keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        KeysCommand::Generate { out: path, name } => {
            let key = SignerKey::generate(&name)?;
            write_secret(&path, &key.to_secret_text())?;
            writeln!(out, "{}", key.verifier())?;
            eprintln!(
                "trellis: wrote the private key to {} (keep it secret: give it to `serve` with \
                 --signing-key-file); the line above is its public key, for anyone who checks \
                 the log",
                path.display()
            );
        }
        KeysCommand::Public { key_file } => {
            writeln!(out, "{}", read_key_file(&key_file)?.verifier())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where anyone fetches the public keys of the log's checkpoints.
pub const KEYS_PATH: &str = "/.well-known/trellis/checkpoint-keys";

/// The public keys, one a line, the current signer's first: public, cached
/// for a few minutes (a rotation shows up soon after a restart).
pub fn keys_api(keys: &Keys) -> trellis_http::Api {
    use axum::http::header;
    let body: String = keys.verifiers.iter().map(|k| format!("{k}\n")).collect();
    let routes = axum::Router::new().route(
        KEYS_PATH,
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=300"),
                    ],
                    body,
                )
            }
        }),
    );
    trellis_http::Api { routes, doc: None }
}
