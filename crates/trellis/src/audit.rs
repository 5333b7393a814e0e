//! `trellis audit`: checks the log's integrity, against checkpoints kept
//! outside the database, and prints the latest signed checkpoint for anyone
//! to keep.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use trellis_eventstore::note::{SignedCheckpoint, VerifierKey, parse_many};
use trellis_eventstore::tree::{TreeBuilder, TreeReport, verify_checkpoints};
use trellis_eventstore::{EventStore, VerifyReport};

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
    /// Make the stored Merkle tree again from the log, when `audit verify`
    /// found it altered (the proofs review packets take from it would not
    /// verify). Needs the kept checkpoints, to show first that the log
    /// itself still holds, and the schema owner's connection on PostgreSQL.
    /// Refuses, and changes nothing, while the log itself does not hold.
    /// Exits 0 when the tree agrees with the log, 1 when it does not, 2 when
    /// it could not check or rebuild.
    RebuildTree(VerifyArgs),
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
        AuditCommand::RebuildTree(args) => rebuild_tree(store_args, args).await,
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
    Ok(could_not(e))
}

/// Says why the log could not be checked; the exit code that says so.
fn could_not(e: anyhow::Error) -> ExitCode {
    eprintln!("error: could not check the log: {e:#}");
    ExitCode::from(2)
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

/// The public keys a check accepts signatures of, and the checkpoints kept
/// outside the database.
type Trust = (Vec<VerifierKey>, Vec<SignedCheckpoint>);

/// What a check trusts: the public keys given, and the checkpoints kept
/// where the arguments say. The exit code 2 instead when they cannot be
/// had or used: why has been printed.
async fn trusted(args: &VerifyArgs) -> Result<Trust, ExitCode> {
    let keys: Vec<VerifierKey> = args
        .public_keys
        .iter()
        .map(|k| {
            k.parse::<VerifierKey>()
                .with_context(|| format!("--public-key {k:?}"))
        })
        .collect::<anyhow::Result<_>>()
        .map_err(could_not)?;
    let kept = kept_checkpoints(args).await.map_err(could_not)?;
    let asked_for_checkpoints =
        !args.checkpoint_files.is_empty() || args.checkpoints_from_nats.is_some();
    if asked_for_checkpoints && keys.is_empty() {
        return Err(could_not(anyhow::anyhow!(
            "checking kept checkpoints needs the public key they were signed with: give \
             --public-key (the line `trellis keys generate` printed, or GET \
             /.well-known/trellis/checkpoint-keys)"
        )));
    }
    if asked_for_checkpoints && kept.is_empty() {
        return Err(could_not(anyhow::anyhow!(
            "no checkpoints were found where you said they are kept"
        )));
    }
    Ok((keys, kept))
}

/// Every check `audit verify` makes, over the log as stored.
struct Checked {
    report: VerifyReport,
    tree: TreeReport,
    seconds: f64,
}

impl Checked {
    async fn of(
        store: &dyn EventStore,
        args: &VerifyArgs,
        (keys, kept): &Trust,
    ) -> anyhow::Result<Checked> {
        let started = std::time::Instant::now();
        let report = trellis_eventstore::verify(store, args.page).await?;
        // The tree pass recomputes the Merkle tree from the events: it checks
        // the kept checkpoints, the stored tree's nodes and, with keys, every
        // event's seal.
        let tree = verify_checkpoints(store, kept, keys, args.origin.as_deref(), args.page).await?;
        Ok(Checked {
            report,
            tree,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn is_intact(&self) -> bool {
        self.report.is_intact() && self.tree.is_intact()
    }

    /// Whether the log itself holds, whatever the stored tree says: every
    /// chain, every kept checkpoint and every seal.
    fn log_holds(&self) -> bool {
        self.report.is_intact()
            && self.tree.findings.is_empty()
            && self.tree.unsealed == 0
            && self.tree.first_difference.is_none()
            && self.tree.differs_within.is_none()
    }

    /// The lines that say it is intact.
    fn write_intact(&self, out: &mut impl Write, store: &str, keyed: bool) -> std::io::Result<()> {
        let (report, tree, seconds) = (&self.report, &self.tree, self.seconds);
        writeln!(
            out,
            "intact: {} events in {} streams of {store} verified in {seconds:.1} s",
            report.events, report.streams,
        )?;
        if tree.checkpoints > 0 {
            writeln!(
                out,
                "the log extends all {} kept checkpoints (the largest covers {} of its {} events)",
                tree.checkpoints, tree.covered, tree.log_size
            )?;
        }
        if keyed {
            writeln!(
                out,
                "{} of its {} events carry the service's seal",
                tree.sealed, tree.log_size
            )?;
        }
        // What "intact" did not cover, said, so that a pass is not read as
        // more than it is.
        let mut unchecked = Vec::new();
        if tree.checkpoints == 0 {
            unchecked.push(
                "against no kept checkpoint (give --checkpoints FILE or \
                 --checkpoints-from-nats URL): a rewrite of the whole log would pass",
            );
        }
        if !keyed {
            unchecked.push(
                "without the service's public key (give --public-key): seals were not checked, \
                 so forged events with correct hashes would pass",
            );
        }
        for what in unchecked {
            writeln!(out, "checked {what}")?;
        }
        Ok(())
    }

    /// The lines that say what is wrong, after `verdict` ("NOT INTACT").
    fn write_findings(&self, out: &mut impl Write, verdict: &str) -> std::io::Result<()> {
        let (report, tree) = (&self.report, &self.tree);
        // A leaf is the stored tree's hash of one event, a node the hash of
        // several: counted apart, as each finding's own line names it.
        let leaves = tree
            .node_findings
            .iter()
            .filter(|f| f.node.level == 0)
            .count();
        let nodes = tree.node_findings.len() - leaves;
        writeln!(
            out,
            "{verdict}: {} of {} streams are broken, {} kept checkpoints no longer hold, {} \
             events are not sealed by the service, {leaves} stored tree leaves and {nodes} \
             stored tree nodes were altered ({} events checked in {:.1} s)",
            report.findings.len(),
            report.streams,
            tree.findings.len(),
            tree.unsealed,
            report.events,
            self.seconds
        )?;
        // Not one seal verifies, though events carry them: the key given is
        // most likely not the one that sealed the log.
        if tree.sealed == 0 && tree.seal_findings.iter().all(|f| f.bad_seal) && tree.unsealed > 0 {
            writeln!(
                out,
                "no seal in the log verifies with the public keys given: if none of its events \
                 was forged, the key given is not the one that sealed it (check --public-key \
                 against the key the service signs with; earlier keys may be given too)"
            )?;
        }
        let mut lines = report
            .findings
            .iter()
            .map(ToString::to_string)
            .chain(tree.findings.iter().map(ToString::to_string))
            .chain(tree.seal_findings.iter().map(ToString::to_string))
            .chain(tree.node_findings.iter().map(ToString::to_string));
        let Some(first) = lines.next() else {
            // Nothing else is wrong: the log parts from its stored tree
            // after every kept checkpoint (events deleted or rewritten since).
            if let Some(difference) = &tree.first_difference {
                writeln!(
                    out,
                    "first problem: the log is not what its stored tree integrated: {difference}"
                )?;
            }
            return Ok(());
        };
        writeln!(out, "first problem: {first}")?;
        for line in lines {
            writeln!(out, "also: {line}")?;
        }
        let unnamed = tree.unsealed - tree.seal_findings.len() as u64;
        if unnamed > 0 {
            writeln!(
                out,
                "and {unnamed} more events not sealed by the service, after the {} named above",
                tree.seal_findings.len()
            )?;
        }
        if let Some(difference) = &tree.first_difference {
            writeln!(out, "{difference}")?;
        } else if let Some((good, bad)) = tree.differs_within {
            writeln!(
                out,
                "the first difference lies between event {} and event {bad} of the log",
                good + 1
            )?;
        }
        Ok(())
    }
}

/// Opens the log as stored and makes every check `audit verify` makes; the
/// log, what trusting it rests on, and what the checks found. The exit code
/// 2 instead when it could not check: why has been printed.
async fn open_and_check(
    store_args: &StoreArgs,
    args: &VerifyArgs,
) -> Result<(Arc<dyn EventStore>, Trust, Checked), ExitCode> {
    let trust = trusted(args).await?;
    // Every check is over the stored form: nothing needs decrypting.
    let store = store_args.open_stored().await.map_err(could_not)?;
    let checked = Checked::of(&*store, args, &trust)
        .await
        .map_err(could_not)?;
    Ok((store, trust, checked))
}

async fn verify(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (_, (keys, _), checked) = match open_and_check(store_args, &args).await {
        Ok(checked) => checked,
        Err(code) => return Ok(code),
    };
    let guards = store_args.guard_findings().await;
    let mut out = std::io::stdout().lock();
    let code = if checked.is_intact() {
        checked.write_intact(&mut out, &store_args.describe(), !keys.is_empty())?;
        ExitCode::SUCCESS
    } else {
        checked.write_findings(&mut out, "NOT INTACT")?;
        ExitCode::from(1)
    };
    // Not history: what the checks above found stands, whatever the guards.
    match guards {
        Ok(findings) => {
            for finding in findings {
                writeln!(
                    out,
                    "warning: {finding}; `trellis migrate`, run as the schema's owner, puts it back"
                )?;
            }
        }
        Err(e) => writeln!(out, "warning: could not check the log's guards: {e:#}")?,
    }
    Ok(code)
}

/// Makes the stored tree again from the log, once the log is shown to hold
/// against the kept checkpoints and only the stored tree is found altered.
/// Refuses while the log itself does not hold: the stored tree is then the
/// evidence of where it changed, and is left as it is.
async fn rebuild_tree(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.checkpoint_files.is_empty() && args.checkpoints_from_nats.is_none() {
        return cannot(anyhow::anyhow!(
            "rebuilding the stored tree needs the kept checkpoints, to show first that the log \
             still extends them: give --checkpoints FILE or --checkpoints-from-nats URL, with \
             --public-key"
        ));
    }
    let (store, trust, before) = match open_and_check(store_args, &args).await {
        Ok(checked) => checked,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    if !before.log_holds() {
        before.write_findings(&mut out, "NOT REBUILT, the log itself does not hold")?;
        writeln!(
            out,
            "the stored tree is left as it is: it is the evidence of what the log was before it \
             changed"
        )?;
        return Ok(ExitCode::from(1));
    }
    if before.is_intact() {
        before.write_intact(&mut out, &store_args.describe(), true)?;
        writeln!(
            out,
            "the stored tree agrees with the log: nothing to rebuild"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    before.write_findings(&mut out, "rebuilding the stored tree, which was altered")?;
    drop(out);
    if let Err(e) = store_args.discard_stored_tree().await {
        return cannot(e);
    }
    if let Err(e) = integrate_with_progress(&*store, before.tree.log_size).await {
        eprintln!();
        return cannot(anyhow::Error::from(e).context(
            "the stored tree was discarded and only partly made again: `trellis serve`'s \
             checkpoint worker makes the rest from the log when it runs",
        ));
    }
    let after = match Checked::of(&*store, &args, &trust).await {
        Ok(checked) => checked,
        Err(e) => return cannot(e),
    };
    let mut out = std::io::stdout().lock();
    if after.is_intact() {
        writeln!(
            out,
            "rebuilt: the stored tree was made again from the log's {} events, and it agrees \
             with them",
            after.tree.log_size
        )?;
        after.write_intact(&mut out, &store_args.describe(), true)?;
        return Ok(ExitCode::SUCCESS);
    }
    after.write_findings(&mut out, "NOT INTACT after the rebuild")?;
    Ok(ExitCode::from(1))
}

/// Makes the stored tree from the log's first event, drawing how far it
/// has come (of about `events`) on one line of stderr.
async fn integrate_with_progress(
    store: &dyn EventStore,
    events: u64,
) -> Result<(), trellis_eventstore::Error> {
    let mut builder = TreeBuilder::load(store).await?;
    let draw = |size: u64| {
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rrebuilding the stored tree: {size} of {} events ({:.0}%)",
            events.max(size),
            100.0 * size as f64 / events.max(size).max(1) as f64
        );
        let _ = err.flush();
    };
    let mut last_draw = std::time::Instant::now();
    draw(0);
    loop {
        let leaves = store
            .read_leaves(builder.read(), TreeBuilder::BATCH)
            .await?;
        if leaves.is_empty() {
            break;
        }
        match builder.extend(store, &leaves).await {
            Ok(()) => {}
            // `trellis serve`'s worker is making it too: go on from where
            // the two of them have got to.
            Err(trellis_eventstore::Error::Unavailable(_)) => {
                builder = TreeBuilder::load(store).await?;
            }
            Err(e) => return Err(e),
        }
        // At most ten times a second, on one line.
        if last_draw.elapsed().as_millis() >= 100 {
            last_draw = std::time::Instant::now();
            draw(builder.size());
        }
    }
    draw(builder.size());
    eprintln!();
    Ok(())
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
