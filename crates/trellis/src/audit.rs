//! `trellis audit`: checks the log's integrity, against checkpoints kept
//! outside the database, and prints the latest signed checkpoint for anyone
//! to keep.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use trellis_eventstore::note::{SignedCheckpoint, VerifierKey, parse_many};
use trellis_eventstore::tree::{TreeReport, verify_checkpoints};

use crate::store::StoreArgs;
use trellis_notifications::checkpoints::{self, DEFAULT_STREAM, StreamNames};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify every stream's hash chain and, given kept checkpoints, that the
    /// log still extends each of them; name the first altered, missing or
    /// reordered event and every checkpoint that no longer holds. Exits 0
    /// when the log is intact, 1 when it is not, 2 when it could not be
    /// checked.
    Verify(VerifyArgs),
    /// Print the newest signed checkpoint of the log (a signed note) for
    /// anyone to keep; `audit verify --checkpoints FILE` later proves the log
    /// still extends it.
    Checkpoint {
        /// Print every recorded checkpoint, oldest first.
        #[arg(long)]
        all: bool,
    },
    /// Verify a saved review packet (the JSON body of GET
    /// /v1/reps/{rep}/review-packet) with no database: its SHA-256, the
    /// signature of the checkpoint it carries, and that every event it rests
    /// on is in the log that checkpoint signs. Exits 0 when it holds, 1 when
    /// it does not, 2 when it could not be read.
    VerifyPacket {
        /// The packet file.
        file: PathBuf,
        /// A public key the checkpoint may be signed with. Repeatable.
        #[arg(long = "public-key", value_name = "KEY", required = true)]
        public_keys: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Events read per page.
    #[arg(long, default_value_t = 5_000)]
    page: usize,
    /// A file of kept checkpoints (signed notes, one after another), as
    /// `trellis audit checkpoint` prints them. Repeatable.
    #[arg(long = "checkpoints", value_name = "FILE")]
    checkpoint_files: Vec<PathBuf>,
    /// Read the kept checkpoints from this NATS server's checkpoint stream.
    #[arg(long, value_name = "URL")]
    checkpoints_from_nats: Option<String>,
    /// The JetStream stream to read them from.
    #[arg(long, default_value = DEFAULT_STREAM)]
    checkpoint_stream: String,
    /// A public key the checkpoints may be signed with (name+id+key, as
    /// `trellis keys generate` prints it). Repeatable; needed with kept
    /// checkpoints.
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
    /// The log's origin: refuse checkpoints of another log.
    #[arg(long)]
    origin: Option<String>,
}

pub async fn run(store_args: &StoreArgs, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify(args) => verify(store_args, args).await,
        AuditCommand::Checkpoint { all } => print_checkpoints(store_args, all).await,
        AuditCommand::VerifyPacket { file, public_keys } => verify_packet(&file, &public_keys),
    }
}

/// What is wrong with a packet, or why it could not be checked.
enum PacketProblem {
    Unreadable(String),
    Broken(String),
}

/// Checks a saved packet; returns what it established.
fn check_packet(file: &std::path::Path, keys: &[VerifierKey]) -> Result<String, PacketProblem> {
    use PacketProblem::{Broken, Unreadable};
    use sha2::Digest;
    let text = std::fs::read_to_string(file)
        .map_err(|e| Unreadable(format!("cannot read {}: {e}", file.display())))?;
    let body: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Unreadable(format!("{} is not JSON: {e}", file.display())))?;
    let (Some(packet), Some(sha256)) = (body.get("packet"), body["sha256"].as_str()) else {
        return Err(Unreadable(format!(
            "{} is not a review packet: it needs \"packet\" and \"sha256\" (save the JSON of \
             GET /v1/reps/{{rep}}/review-packet)",
            file.display()
        )));
    };
    let mut canonical = Vec::new();
    trellis_eventstore::chain::canonical_json(packet, &mut canonical);
    let actual = hex::encode(sha2::Sha256::digest(&canonical));
    if actual != sha256 {
        return Err(Broken(format!(
            "the packet was altered: its content hashes to {actual}, the document says {sha256}"
        )));
    }
    let Some(evidence) = body.get("evidence") else {
        return Err(Broken(
            "the packet carries no evidence: it was made before the log's first checkpoint; \
             fetch it again"
                .into(),
        ));
    };
    let evidence = trellis_eventstore::evidence::from_json(evidence).map_err(Broken)?;
    let verified = trellis_eventstore::evidence::verify(&evidence, keys).map_err(Broken)?;
    if !evidence.not_yet_covered.is_empty() {
        return Err(Broken(format!(
            "{} events the packet rests on were not yet covered by a signed checkpoint when it \
             was made; fetch the packet again after the next checkpoint",
            evidence.not_yet_covered.len()
        )));
    }
    let rep_stream = format!("rep-{}", packet["rep_id"].as_str().unwrap_or_default());
    let rep_events = evidence
        .events
        .iter()
        .filter(|e| e.stream_id == rep_stream)
        .count() as u64;
    let replayed = packet["events_replayed"].as_u64().unwrap_or(u64::MAX);
    if rep_events != replayed {
        return Err(Broken(format!(
            "the packet rests on {replayed} events of {rep_stream}, its evidence proves {rep_events}"
        )));
    }
    Ok(format!(
        "verified: packet {sha256} ({} events of the rep, {} in all) is in the log {} of {} \
         events, checkpoint signed {} by {}",
        rep_events,
        verified.events,
        verified.origin,
        verified.tree_size,
        verified
            .signed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        verified.signed_by
    ))
}

fn verify_packet(file: &std::path::Path, public_keys: &[String]) -> anyhow::Result<ExitCode> {
    let keys: Vec<VerifierKey> = match public_keys
        .iter()
        .map(|k| {
            k.parse::<VerifierKey>()
                .with_context(|| format!("--public-key {k:?}"))
        })
        .collect::<anyhow::Result<_>>()
    {
        Ok(keys) => keys,
        Err(e) => return cannot(e),
    };
    match check_packet(file, &keys) {
        Ok(line) => {
            writeln!(std::io::stdout().lock(), "{line}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(PacketProblem::Broken(why)) => {
            writeln!(std::io::stdout().lock(), "NOT VERIFIED: {why}")?;
            Ok(ExitCode::from(1))
        }
        Err(PacketProblem::Unreadable(why)) => cannot(anyhow::anyhow!(why)),
    }
}

/// Could not check: the caller exits 2.
fn cannot(e: anyhow::Error) -> anyhow::Result<ExitCode> {
    eprintln!("error: could not check the log: {e:#}");
    Ok(ExitCode::from(2))
}

async fn kept_checkpoints(args: &VerifyArgs) -> anyhow::Result<Vec<SignedCheckpoint>> {
    let mut kept = Vec::new();
    for path in &args.checkpoint_files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        kept.extend(parse_many(&text).with_context(|| format!("in {}", path.display()))?);
    }
    if let Some(url) = &args.checkpoints_from_nats {
        let client = async_nats::connect(url.as_str())
            .await
            .with_context(|| format!("cannot connect to NATS at {url}"))?;
        let js = async_nats::jetstream::new(client);
        kept.extend(
            checkpoints::read_stream(&js, &StreamNames::new(&args.checkpoint_stream)).await?,
        );
    }
    Ok(kept)
}

async fn verify(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keys: Vec<VerifierKey> = match args
        .public_keys
        .iter()
        .map(|k| {
            k.parse::<VerifierKey>()
                .with_context(|| format!("--public-key {k:?}"))
        })
        .collect::<anyhow::Result<_>>()
    {
        Ok(keys) => keys,
        Err(e) => return cannot(e),
    };
    let kept = match kept_checkpoints(&args).await {
        Ok(kept) => kept,
        Err(e) => return cannot(e),
    };
    let asked_for_checkpoints =
        !args.checkpoint_files.is_empty() || args.checkpoints_from_nats.is_some();
    if asked_for_checkpoints && keys.is_empty() {
        return cannot(anyhow::anyhow!(
            "checking kept checkpoints needs the public key they were signed with: give \
             --public-key (the line `trellis keys generate` printed, or GET \
             /.well-known/trellis/checkpoint-keys)"
        ));
    }
    if asked_for_checkpoints && kept.is_empty() {
        return cannot(anyhow::anyhow!(
            "no checkpoints were found where you said they are kept"
        ));
    }
    // Every check is over the stored form: nothing needs decrypting.
    let store = match store_args.open_stored().await {
        Ok(store) => store,
        Err(e) => return cannot(e),
    };
    let started = std::time::Instant::now();
    let report = match trellis_eventstore::verify(&*store, args.page).await {
        Ok(report) => report,
        Err(e) => return cannot(e.into()),
    };
    // The tree pass recomputes the Merkle tree from the events: it checks
    // the kept checkpoints, the stored tree's nodes and, with keys, every
    // event's seal.
    let tree =
        match verify_checkpoints(&*store, &kept, &keys, args.origin.as_deref(), args.page).await {
            Ok(tree) => Some(tree),
            Err(e) => return cannot(e.into()),
        };
    let mut out = std::io::stdout().lock();
    let seconds = started.elapsed().as_secs_f64();
    let tree_intact = tree.as_ref().is_none_or(TreeReport::is_intact);
    if report.is_intact() && tree_intact {
        writeln!(
            out,
            "intact: {} events in {} streams of {} verified in {seconds:.1} s",
            report.events,
            report.streams,
            store_args.describe()
        )?;
        if let Some(tree) = tree.as_ref().filter(|t| t.checkpoints > 0) {
            writeln!(
                out,
                "the log extends all {} kept checkpoints (the largest covers {} of its {} events)",
                tree.checkpoints, tree.covered, tree.log_size
            )?;
        }
        if let Some(tree) = tree.as_ref().filter(|_| !keys.is_empty()) {
            writeln!(
                out,
                "{} of its {} events carry the service's seal",
                tree.sealed, tree.log_size
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "NOT INTACT: {} of {} streams are broken, {} kept checkpoints no longer hold, {} events \
         are not sealed by the service, {} stored tree nodes were altered ({} events checked in \
         {seconds:.1} s)",
        report.findings.len(),
        report.streams,
        tree.as_ref().map_or(0, |t| t.findings.len()),
        tree.as_ref().map_or(0, |t| t.seal_findings.len()),
        tree.as_ref().map_or(0, |t| t.node_findings.len()),
        report.events
    )?;
    let mut lines = report
        .findings
        .iter()
        .map(ToString::to_string)
        .chain(
            tree.iter()
                .flat_map(|t| t.findings.iter().map(ToString::to_string)),
        )
        .chain(
            tree.iter()
                .flat_map(|t| t.seal_findings.iter().map(ToString::to_string)),
        )
        .chain(
            tree.iter()
                .flat_map(|t| t.node_findings.iter().map(ToString::to_string)),
        );
    if let Some(first) = lines.next() {
        writeln!(out, "first problem: {first}")?;
    }
    for line in lines {
        writeln!(out, "also: {line}")?;
    }
    if let Some(tree) = &tree {
        if let Some(difference) = &tree.first_difference {
            writeln!(out, "{difference}")?;
        } else if let Some((good, bad)) = tree.differs_within {
            writeln!(
                out,
                "the first difference lies between event {} and event {bad} of the log",
                good + 1
            )?;
        }
    }
    Ok(ExitCode::from(1))
}

async fn print_checkpoints(store_args: &StoreArgs, all: bool) -> anyhow::Result<ExitCode> {
    let store = match store_args.open().await {
        Ok(store) => store,
        Err(e) => return cannot(e),
    };
    let mut out = std::io::stdout().lock();
    if all {
        let mut after = 0;
        let mut any = false;
        loop {
            let page = store.tree_checkpoints(after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = last.size;
            for checkpoint in &page {
                if any {
                    writeln!(out)?;
                }
                write!(out, "{}", checkpoint.note)?;
                any = true;
            }
        }
        if any {
            return Ok(ExitCode::SUCCESS);
        }
    } else if let Some(latest) = store.latest_tree_checkpoint().await? {
        write!(out, "{}", latest.note)?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "trellis: no checkpoint has been signed yet; `trellis serve` signs one once events are \
         appended (every --checkpoint-every-events events or --checkpoint-every-seconds)"
    );
    Ok(ExitCode::from(2))
}
