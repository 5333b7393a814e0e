//! The log's Merkle tree as a store keeps it, how it grows, how it is signed
//! and how a log is checked against checkpoints kept outside the database.
//!
//! The tree is integrated behind the log, in global order: a
//! [`TreeBuilder`] follows the log (on PostgreSQL an event's place in the
//! global order is only known once every older transaction has ended, so no
//! append can put its own leaf in) and writes each leaf, the nodes it
//! completes and where it has read to, all or nothing. Building is
//! idempotent and single-writer: a builder whose store moved on under it
//! (another process building) reloads and carries on from there.

use chrono::{DateTime, Utc};

use crate::cores::on_cores;
use crate::merkle::{self, Frontier, NodeId};
use crate::note::{SignedCheckpoint, SignerKey, TreeHead, VerifierKey};
use crate::{Checkpoint, Error, EventStore, Hash, RecordedEvent};

/// The shortest time between two catch-ups of a builder that follows a
/// busy log. Each catch-up stores what it added in a write of its own; on
/// the embedded file that write holds the one writer while appends queue
/// behind it, so the fewer and larger they are, the less the appends lose
/// (`trellis-bench append`: `sqlite_append_1w_sealed` reached 0.71 of
/// `sqlite_append_1w` catching up every 250 ms, 0.91 every second).
/// Checkpoints are signed every so many events or seconds, and a packet's
/// evidence reaches the newest checkpoint only, so the tree may trail the
/// log by this much.
pub const CATCH_UP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the stored tree stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeState {
    /// Leaves integrated.
    pub size: u64,
    /// The read checkpoint of the last leaf's event.
    pub read: Checkpoint,
}

/// Leaves to add to the stored tree, with the nodes they complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeExtension {
    /// The tree's size before these leaves: the write is refused when the
    /// stored tree is no longer this size.
    pub from_size: u64,
    /// Each new leaf's event (its place in the global order, its global
    /// position, its hash), in leaf order.
    pub leaves: Vec<Leaf>,
    /// The nodes the new leaves complete that a store keeps: the leaves
    /// (level 0) and the nodes from [`merkle::STORED_LEVEL`] up. The ones
    /// between are hashed from the leaves when asked for.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The read checkpoint after the last new leaf.
    pub read: Checkpoint,
}

/// A signed checkpoint as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub key_id: String,
    pub signed_at: DateTime<Utc>,
    pub note: String,
}

/// What the tree takes of an event ([`EventStore::read_leaves`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub checkpoint: Checkpoint,
    pub global_position: u64,
    pub hash: Hash,
}

impl Leaf {
    pub fn of<P>(event: &RecordedEvent<P>) -> Leaf {
        Leaf {
            checkpoint: event.checkpoint,
            global_position: event.global_position,
            hash: event.hash,
        }
    }
}

/// Grows the stored tree behind the log.
#[derive(Debug)]
pub struct TreeBuilder {
    frontier: Frontier,
    read: Checkpoint,
}

impl TreeBuilder {
    /// Events read per batch while integrating.
    pub const BATCH: usize = 2_000;

    /// Loads where the stored tree stands.
    pub async fn load(store: &dyn EventStore) -> Result<Self, Error> {
        let state = store.tree_state().await?;
        let ids = Frontier::node_ids(state.size);
        let hashes = store.tree_nodes(&ids).await?;
        let hashes: Vec<Hash> = hashes
            .into_iter()
            .zip(&ids)
            .map(|(hash, id)| {
                hash.ok_or_else(|| {
                    Error::Internal(format!(
                        "the stored tree of {} leaves lacks its node {id:?}",
                        state.size
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let frontier = Frontier::from_nodes(state.size, &hashes)
            .ok_or_else(|| Error::Internal("the stored tree's edge does not add up".into()))?;
        Ok(TreeBuilder {
            frontier,
            read: state.read,
        })
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Where the builder has read the log to.
    pub fn read(&self) -> Checkpoint {
        self.read
    }

    /// Adds `leaves` (the next events in global order after
    /// [`Self::read`], as [`EventStore::read_leaves`] gives them) to the
    /// stored tree in one write.
    pub async fn extend(&mut self, store: &dyn EventStore, leaves: &[Leaf]) -> Result<(), Error> {
        let Some(last) = leaves.last() else {
            return Ok(());
        };
        let mut next = self.frontier.clone();
        let mut extension = TreeExtension {
            from_size: next.size(),
            leaves: leaves.to_vec(),
            // About one node a leaf, and one in eight above it.
            nodes: Vec::with_capacity(leaves.len() + leaves.len() / 8),
            read: last.checkpoint,
        };
        for leaf in leaves {
            extension.nodes.extend(
                next.push(&leaf.hash)
                    .into_iter()
                    .filter(|(id, _)| id.level == 0 || id.level >= merkle::STORED_LEVEL),
            );
        }
        store.extend_tree(&extension).await?;
        self.frontier = next;
        self.read = last.checkpoint;
        Ok(())
    }

    /// Integrates everything readable now; returns the tree's size.
    ///
    /// Each batch is read while the one before it is written, on another
    /// connection (the embedded file's readers do not wait for its writer).
    /// Reads were about two fifths of a catch-up's time on the file and a
    /// seventh on PostgreSQL; overlapped, the bench's catch-ups of about
    /// 5,000 events took about a tenth (file) and a twentieth (PostgreSQL)
    /// less per event.
    pub async fn catch_up(&mut self, store: &dyn EventStore) -> Result<u64, Error> {
        let mut leaves = store.read_leaves(self.read, Self::BATCH).await?;
        while let Some(last) = leaves.last() {
            let after = last.checkpoint;
            let (written, next) = futures_util::join!(
                self.extend(store, &leaves),
                store.read_leaves(after, Self::BATCH)
            );
            written?;
            leaves = next?;
        }
        Ok(self.size())
    }

    /// Signs the tree as it stands and records the checkpoint with the log.
    pub async fn sign(
        &self,
        store: &dyn EventStore,
        key: &SignerKey,
        origin: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedCheckpoint, Error> {
        let head = TreeHead {
            origin: origin.to_owned(),
            size: self.size(),
            root: self.root(),
            time: now.trunc_subsecs_secs(),
        };
        let signed = key.sign(&head);
        store
            .record_tree_checkpoint(&StoredCheckpoint {
                size: head.size,
                key_id: key.verifier().to_string(),
                signed_at: head.time,
                note: signed.text().to_owned(),
            })
            .await?;
        Ok(signed)
    }
}

trait TruncSecs {
    fn trunc_subsecs_secs(self) -> Self;
}

impl TruncSecs for DateTime<Utc> {
    fn trunc_subsecs_secs(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 0)
    }
}

/// What is wrong between the log and one kept checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointProblem {
    /// No known key signed it (or its signature does not match it).
    Signature(String),
    /// It is about another log.
    Origin { found: String },
    /// The log no longer has as many events as the checkpoint counted.
    Shorter { log_size: u64 },
    /// The log's first `size` events no longer hash to its root.
    RootDiffers,
}

/// One kept checkpoint that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFinding {
    pub size: u64,
    pub time: DateTime<Utc>,
    pub signers: Vec<String>,
    pub problem: CheckpointProblem,
}

impl std::fmt::Display for CheckpointFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the checkpoint of {} events signed {} by {} ",
            self.size,
            self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.signers.join(", ")
        )?;
        match &self.problem {
            CheckpointProblem::Signature(why) => write!(f, "is not trusted: {why}"),
            CheckpointProblem::Origin { found } => {
                write!(f, "is of another log ({found:?})")
            }
            CheckpointProblem::Shorter { log_size } => write!(
                f,
                "no longer holds: the log now has only {log_size} events (events were deleted)"
            ),
            CheckpointProblem::RootDiffers => f.write_str(
                "no longer holds: the log's first events no longer hash to its root (events were \
                 deleted, inserted, moved or rewritten)",
            ),
        }
    }
}

/// Where the log first differs from the tree as it was integrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstDifference {
    pub leaf: u64,
    /// The event the log has at that place now, if any.
    pub now: Option<(u64, String, u64)>,
    /// What the stored tree recorded there: the event's global position, if
    /// it still says.
    pub integrated_position: Option<u64>,
}

impl std::fmt::Display for FirstDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the first difference is event {} of the log",
            self.leaf + 1
        )?;
        match (&self.now, self.integrated_position) {
            (Some((position, stream, version)), Some(was)) if *position == was => write!(
                f,
                ": stream {stream} version {version} (position {position}) was rewritten"
            ),
            (Some((position, stream, version)), Some(was)) => write!(
                f,
                ": the log now has stream {stream} version {version} (position {position}) \
                 where it had the event at position {was}"
            ),
            (Some((position, stream, version)), None) => write!(
                f,
                ": stream {stream} version {version} (position {position}) differs from what \
                 was signed"
            ),
            (None, Some(was)) => write!(f, ": the event at position {was} is gone"),
            (None, None) => f.write_str(": events are missing from the end of the log"),
        }
    }
}

/// The outcome of checking the log against kept checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeReport {
    /// Events in the log.
    pub log_size: u64,
    /// The checkpoints that were checked.
    pub checkpoints: usize,
    /// The largest checkpoint that holds (0 when none).
    pub covered: u64,
    pub findings: Vec<CheckpointFinding>,
    /// Where the first difference must lie, from the checkpoints alone: after
    /// the first `.0` events (a checkpoint that holds) and within the first
    /// `.1` (the smallest one that does not).
    pub differs_within: Option<(u64, u64)>,
    /// Where the log first parts from the tree as it was integrated, when the
    /// stored tree still says: the first place they differ that is not a
    /// stored leaf altered under a checkpoint that holds.
    pub first_difference: Option<FirstDifference>,
    /// Events carrying a seal that verifies.
    pub sealed: u64,
    /// Events whose seal is missing (after sealed ones) or does not verify:
    /// the first [`MAX_SEAL_FINDINGS`] of them, in the log's order.
    pub seal_findings: Vec<SealFinding>,
    /// How many events in all have a seal missing or not verifying (a log
    /// checked with the wrong key has as many as it has events).
    pub unsealed: u64,
    /// Stored inner nodes of the tree that the events under them no longer
    /// hash to, wholly before the first difference; and stored leaves (level
    /// 0) that differ from events a kept checkpoint still vouches for. At
    /// most [`MAX_NODE_FINDINGS`], in the log's order.
    pub node_findings: Vec<NodeFinding>,
}

/// How many events without a good seal a report names (it counts them all).
pub const MAX_SEAL_FINDINGS: usize = 100;

/// How many altered stored nodes a report names.
pub const MAX_NODE_FINDINGS: usize = 100;

/// A stored node of the tree that differs from the hash of the events
/// under it (at level 0, a stored leaf that differs from its event): the
/// packets' inclusion proofs are built from stored nodes, so a proof
/// through it would not verify against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFinding {
    pub node: merkle::NodeId,
}

impl std::fmt::Display for NodeFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.node.level == 0 {
            return write!(
                f,
                "the stored tree's leaf for event {} of the log was altered: the event is as a \
                 kept checkpoint signed it, but the proofs review packets take from the stored \
                 tree would not verify",
                self.node.index + 1
            );
        }
        let first = (self.node.index << self.node.level) + 1;
        let last = (self.node.index + 1) << self.node.level;
        write!(
            f,
            "the stored tree node over events {first} to {last} of the log (level {}, index {}) \
             was altered: it is not the hash of those events, so the proofs review packets \
             take from it would not verify",
            self.node.level, self.node.index
        )
    }
}

/// An event the service did not seal: recorded by someone without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFinding {
    pub stream_id: String,
    pub stream_version: u64,
    pub global_position: u64,
    pub event_id: uuid::Uuid,
    /// True when it carries a seal that does not verify; false when it has
    /// none although events before it in the log do.
    pub bad_seal: bool,
}

impl std::fmt::Display for SealFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stream {} version {} (event {}, position {}): {}",
            self.stream_id,
            self.stream_version,
            self.event_id,
            self.global_position,
            if self.bad_seal {
                "forged or altered: its seal does not verify with any known key"
            } else {
                "forged: it has no seal, though the events before it do (it was not recorded by \
                 the service)"
            }
        )
    }
}

impl TreeReport {
    /// Nothing found: every kept checkpoint holds, every seal verifies,
    /// and the log is what its stored tree integrated, event for event.
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
            && self.unsealed == 0
            && self.node_findings.is_empty()
            && self.first_difference.is_none()
    }
}

/// Recomputes the tree from the log's events and checks that the log extends
/// every `kept` checkpoint: each must be signed by one of `keys`, be of this
/// `origin` (when given), and have the root the log's first `size` events
/// hash to now. Checks each event's seal against `keys` too: once an event
/// in global order is sealed, every later one must be. Reads the log once,
/// in pages of `page` events.
pub async fn verify_checkpoints(
    store: &dyn EventStore,
    kept: &[SignedCheckpoint],
    keys: &[VerifierKey],
    origin: Option<&str>,
    page: usize,
) -> Result<TreeReport, Error> {
    let mut report = TreeReport {
        checkpoints: kept.len(),
        ..TreeReport::default()
    };
    let finding = |c: &SignedCheckpoint, problem| CheckpointFinding {
        size: c.head.size,
        time: c.head.time,
        signers: c.signers(),
        problem,
    };
    // The trusted ones, by size.
    let mut pending: Vec<&SignedCheckpoint> = Vec::new();
    for checkpoint in kept {
        if let Err(e) = checkpoint.verify(keys) {
            report.findings.push(finding(
                checkpoint,
                CheckpointProblem::Signature(e.to_string()),
            ));
        } else if origin.is_some_and(|o| o != checkpoint.head.origin) {
            report.findings.push(finding(
                checkpoint,
                CheckpointProblem::Origin {
                    found: checkpoint.head.origin.clone(),
                },
            ));
        } else {
            pending.push(checkpoint);
        }
    }
    pending.sort_by_key(|c| c.head.size);
    let mut next = 0usize;
    let mut frontier = Frontier::new();
    let mut first_bad_size: Option<u64> = None;
    let check_at_size = |frontier: &Frontier,
                         next: &mut usize,
                         report: &mut TreeReport,
                         first_bad: &mut Option<u64>| {
        while let Some(c) = pending
            .get(*next)
            .filter(|c| c.head.size == frontier.size())
        {
            if c.head.root == frontier.root() {
                report.covered = report.covered.max(c.head.size);
            } else {
                report
                    .findings
                    .push(finding(c, CheckpointProblem::RootDiffers));
                first_bad.get_or_insert(c.head.size);
            }
            *next += 1;
        }
    };
    check_at_size(&frontier, &mut next, &mut report, &mut first_bad_size);
    // Each leaf is compared with the stored tree's, to name where they part,
    // and each node the store keeps with the one the events hash to. Which
    // differences are the stored tree's and which the log's is only known
    // once every kept checkpoint has been checked: they are kept until then
    // (a bounded number: once the log parts from the stored tree, every
    // later place may differ).
    let mut differences = Differences::default();
    let mut after = Checkpoint::START;
    let mut stored_leaves: Vec<(u64, u64, Hash)> = Vec::new();
    // On PostgreSQL, events committed a moment ago become readable once every
    // older transaction has ended: before calling a log shorter than a
    // checkpoint, give what was written 2 s to become readable.
    let mut waited = 0u32;
    let mut sealing = false;
    loop {
        let events = store.read_all(after, page.max(1)).await?;
        let Some(last) = events.last() else {
            if next < pending.len() && waited < 20 {
                waited += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            break;
        };
        after = last.checkpoint;
        let comparing = !differences.full();
        if comparing {
            stored_leaves = store.tree_leaf_range(frontier.size(), events.len()).await?;
        }
        // The inner nodes this page completes, to compare with the stored ones.
        let mut completed: Vec<(merkle::NodeId, Hash)> = Vec::new();
        let seals = if keys.is_empty() {
            Vec::new()
        } else {
            seal_verdicts(&events, keys)
        };
        for (i, event) in events.iter().enumerate() {
            let leaf = merkle::leaf_hash(&event.hash);
            // A log longer than the stored tree is only new events.
            if let Some(stored) = stored_leaves.get(i).filter(|_| comparing)
                && (stored.1 != event.global_position || stored.2 != leaf)
            {
                differences.leaves.push(FirstDifference {
                    leaf: frontier.size(),
                    now: Some((
                        event.global_position,
                        event.stream_id.to_string(),
                        event.stream_version,
                    )),
                    integrated_position: Some(stored.1),
                });
            }
            if let Some(verdict) = seals.get(i) {
                check_seal(event, *verdict, &mut sealing, &mut report);
            }
            let nodes = frontier.push(&event.hash);
            // Only the nodes a store keeps a row each: those below are hashed
            // from its leaves, just compared with the events.
            if comparing {
                completed.extend(
                    nodes
                        .into_iter()
                        .filter(|(id, _)| id.level >= merkle::STORED_LEVEL),
                );
            }
            check_at_size(&frontier, &mut next, &mut report, &mut first_bad_size);
        }
        if !completed.is_empty() {
            let ids: Vec<merkle::NodeId> = completed.iter().map(|(id, _)| *id).collect();
            let stored = store.tree_nodes(&ids).await?;
            for ((node, hash), stored) in completed.iter().zip(stored) {
                if stored.is_some_and(|stored| stored != *hash) {
                    differences.nodes.push(NodeFinding { node: *node });
                }
            }
        }
    }
    report.log_size = frontier.size();
    for c in &pending[next..] {
        report.findings.push(finding(
            c,
            CheckpointProblem::Shorter {
                log_size: report.log_size,
            },
        ));
        first_bad_size.get_or_insert(c.head.size);
    }
    differences.settle(&mut report);
    // The stored tree integrated events the log no longer has at its end
    // (the last events deleted, after every kept checkpoint): unless the log
    // grew meanwhile, and the builder integrated what this pass did not read.
    if report.first_difference.is_none()
        && let Some(&(leaf, position, _)) = store.tree_leaf_range(report.log_size, 1).await?.first()
        && store.read_all(after, 1).await?.is_empty()
    {
        report.first_difference = Some(FirstDifference {
            leaf,
            now: None,
            integrated_position: Some(position),
        });
    }
    if let Some(bad) = first_bad_size {
        report.differs_within = Some((
            pending
                .iter()
                .map(|c| c.head.size)
                .filter(|size| *size < bad && *size <= report.covered)
                .max()
                .unwrap_or(0),
            bad,
        ));
        if report.first_difference.is_none() && report.log_size < bad {
            // The log agrees with the stored tree as far as it goes: it ends early.
            let gone = store.tree_leaf_range(report.log_size, 1).await?;
            report.first_difference = Some(FirstDifference {
                leaf: report.log_size,
                now: None,
                integrated_position: gone.first().map(|l| l.1),
            });
        }
    }
    Ok(report)
}

/// What differed between the log and the stored tree in one pass, in the
/// order met: leaves, and the nodes a store keeps a row each.
#[derive(Default)]
struct Differences {
    leaves: Vec<FirstDifference>,
    nodes: Vec<NodeFinding>,
}

impl Differences {
    /// Enough is known: past the first difference the log does not explain,
    /// every later place may differ, and the report names at most
    /// [`MAX_NODE_FINDINGS`] altered places.
    fn full(&self) -> bool {
        self.leaves.len() + self.nodes.len() > MAX_NODE_FINDINGS
    }

    /// Names, in `report` (its checkpoints checked), where the stored tree
    /// was altered and where the log first differs from it. A leaf that
    /// differs under a kept checkpoint that still holds is the stored
    /// tree's: its event is as signed. The first that differs beyond what
    /// the checkpoints cover is where the log parts from the stored tree;
    /// past it nothing is compared, and a node counts only when wholly
    /// before it.
    fn settle(self, report: &mut TreeReport) {
        let mut altered = Vec::new();
        let mut first = None;
        for difference in self.leaves {
            if difference.leaf < report.covered {
                altered.push(NodeFinding {
                    node: merkle::NodeId {
                        level: 0,
                        index: difference.leaf,
                    },
                });
            } else {
                first = Some(difference);
                break;
            }
        }
        let parts_at = first.as_ref().map_or(u64::MAX, |d| d.leaf);
        altered.extend(self.nodes.into_iter().filter(|f| {
            (f.node.index + 1)
                .checked_shl(u32::from(f.node.level))
                .is_some_and(|end| end <= parts_at)
        }));
        altered.sort_by_key(|f| (f.node.index << f.node.level, f.node.level));
        altered.truncate(MAX_NODE_FINDINGS);
        report.node_findings = altered;
        report.first_difference = first;
    }
}

/// Whether each event's seal verifies with one of `keys` (`None`: it has no
/// seal), on every core: an Ed25519 verification costs far more than reading
/// the event.
fn seal_verdicts(events: &[RecordedEvent], keys: &[VerifierKey]) -> Vec<Option<bool>> {
    let mut verdicts: Vec<(&RecordedEvent, Option<bool>)> =
        events.iter().map(|event| (event, None)).collect();
    // A verification costs tens of microseconds: a few are worth a thread.
    on_cores(&mut verdicts, 16, |part| {
        let mut scratch = Vec::with_capacity(512);
        // A batch's events lie together: its signature is verified once.
        let mut check = crate::note::SealCheck::new(keys);
        for (event, verdict) in part {
            // An event read decrypted without its stored digest cannot be
            // checked, so its seal is not taken as good.
            *verdict = event.seal.as_ref().map(|seal| {
                event
                    .stored_digest(&mut scratch)
                    .is_some_and(|digest| check.verifies(&digest, &seal.0))
            });
        }
    });
    verdicts.into_iter().map(|(_, verdict)| verdict).collect()
}

fn check_seal(
    event: &RecordedEvent,
    verdict: Option<bool>,
    sealing: &mut bool,
    report: &mut TreeReport,
) {
    let bad_seal = match verdict {
        Some(true) => {
            *sealing = true;
            report.sealed += 1;
            return;
        }
        Some(false) => true,
        None if *sealing => false,
        None => return,
    };
    report.unsealed += 1;
    if report.seal_findings.len() >= MAX_SEAL_FINDINGS {
        return;
    }
    report.seal_findings.push(SealFinding {
        stream_id: event.stream_id.to_string(),
        stream_version: event.stream_version,
        global_position: event.global_position,
        event_id: event.event_id,
        bad_seal,
    });
}
