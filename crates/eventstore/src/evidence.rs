//! Evidence that events are in the log, checkable with no database: for each
//! event, what its chain hash is made of and its audit path to the root of a
//! signed checkpoint, plus that checkpoint. Review packets carry it.
//!
//! # Format (`trellis-evidence/1`), for a verifier in any language
//!
//! ```json
//! {
//!   "format": "trellis-evidence/1",
//!   "checkpoint": "<a signed note: see note.rs>",
//!   "events": [{
//!     "event_id": "…", "stream_id": "rep-…", "stream_version": 3,
//!     "event_type": "FeedbackGiven", "occurred_at": "2026-03-02T09:30:00Z",
//!     "content_digest": "<hex>", "prev_hash": "<hex>", "hash": "<hex>",
//!     "leaf_index": 41, "proof": ["<hex>", …]
//!   }],
//!   "not_yet_covered": ["<event id>", …]
//! }
//! ```
//!
//! To verify: check the checkpoint's Ed25519 signature with a public key you
//! trust (note.rs: the signed body is every byte up to the blank line; the
//! signature line is `— <name> base64(key id ‖ signature)`); read its tree
//! size `n` (second line) and root (third line, base64). Then for each event:
//! 1. `hash == SHA-256(prev_hash ‖ stream_version as 8 big-endian bytes ‖
//!    content_digest)`;
//! 2. `leaf = SHA-256(0x00 ‖ hash)`;
//! 3. fold `proof` into `leaf` as RFC 9162 §2.1.3.2 says, with
//!    `node(l, r) = SHA-256(0x01 ‖ l ‖ r)`, `leaf_index < n`, and compare with
//!    the root.
//!
//! The content digest covers everything the event says (chain.rs); the
//! evidence leaves the payloads out, so a packet shows no note text to
//! anyone it is shown to. Whoever holds the log can recompute each digest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain::link;
use crate::merkle::{self, NodeId, inclusion_proof, nodes_needed, verify_inclusion};
use crate::note::{SignedCheckpoint, VerifierKey};
use crate::{Error, EventStore, Hash, RecordedEvent};

/// The format's name, in every evidence document.
pub const FORMAT: &str = "trellis-evidence/1";

/// Evidence for a set of events against one signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub format: String,
    /// The signed note every proof is against.
    pub checkpoint: String,
    pub events: Vec<EventProof>,
    /// Events the document rests on that no signed checkpoint covers yet
    /// (appended since the last one): ask again after the next checkpoint.
    pub not_yet_covered: Vec<Uuid>,
}

/// One event's place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProof {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub content_digest: String,
    pub prev_hash: String,
    pub hash: String,
    pub leaf_index: u64,
    pub proof: Vec<String>,
}

/// What a verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub origin: String,
    pub tree_size: u64,
    pub signed_at: DateTime<Utc>,
    pub signed_by: String,
    pub events: usize,
}

/// Why evidence could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Store(#[from] Error),
    /// The stored tree lacks a node a proof needs. Nodes are written with
    /// their leaves, all or nothing, before a checkpoint of them is signed:
    /// one missing was removed or moved since.
    #[error(
        "the stored Merkle tree lacks its node at level {}, index {}, which proofs against the \
         signed checkpoint of {size} events need: the tree was altered or cut short after it was \
         built. Run `trellis audit verify --checkpoints FILE --public-key KEY` with the \
         checkpoints kept outside the database to check the log",
        node.level,
        node.index
    )]
    MissingNode { node: NodeId, size: u64 },
}

/// Gathers the evidence for `events` against the newest signed checkpoint.
/// `None` when no checkpoint has been signed yet.
pub async fn gather(
    store: &dyn EventStore,
    events: &[&RecordedEvent],
) -> Result<Option<Evidence>, GatherError> {
    let Some(latest) = store.latest_tree_checkpoint().await? else {
        return Ok(None);
    };
    let checkpoint = SignedCheckpoint::parse(&latest.note)
        .map_err(|e| Error::Internal(format!("a recorded checkpoint is unreadable: {e}")))?;
    let size = checkpoint.head.size;
    let positions: Vec<u64> = events.iter().map(|e| e.global_position).collect();
    let indexes = store.tree_leaf_indexes(&positions).await?;
    let covered: Vec<(&RecordedEvent, u64)> = events
        .iter()
        .zip(&indexes)
        .filter_map(|(e, i)| i.filter(|i| *i < size).map(|i| (*e, i)))
        .collect();
    let mut ids: Vec<NodeId> = covered
        .iter()
        .flat_map(|(_, index)| nodes_needed(|get| inclusion_proof(*index, size, get)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let hashes = store.tree_nodes(&ids).await?;
    let mut nodes = std::collections::HashMap::with_capacity(ids.len());
    for (id, hash) in ids.iter().zip(hashes) {
        let hash = hash.ok_or(GatherError::MissingNode { node: *id, size })?;
        nodes.insert(*id, hash);
    }
    let mut scratch = Vec::with_capacity(512);
    let proofs = covered
        .iter()
        .map(|(event, index)| {
            let digest = event.stored_digest(&mut scratch).ok_or_else(|| {
                Error::Internal(format!(
                    "event {} was read decrypted without the digest of its stored form; \
                     evidence is gathered for events read from their stream",
                    event.event_id
                ))
            })?;
            Ok(EventProof {
                event_id: event.event_id,
                stream_id: event.stream_id.to_string(),
                stream_version: event.stream_version,
                event_type: event.event_type.clone(),
                occurred_at: event.metadata.occurred_at,
                content_digest: hex::encode(digest),
                prev_hash: hex::encode(event.prev_hash.0),
                hash: hex::encode(event.hash.0),
                leaf_index: *index,
                proof: inclusion_proof(*index, size, &mut |id| nodes[&id])
                    .iter()
                    .map(|h| hex::encode(h.0))
                    .collect(),
            })
        })
        .collect::<Result<_, Error>>()?;
    let not_yet_covered = events
        .iter()
        .zip(&indexes)
        .filter(|(_, i)| i.is_none_or(|i| i >= size))
        .map(|(e, _)| e.event_id)
        .collect();
    Ok(Some(Evidence {
        format: FORMAT.to_owned(),
        checkpoint: latest.note,
        events: proofs,
        not_yet_covered,
    }))
}

/// Reads evidence from its JSON, refusing a document of another format, or
/// one whose fields are not as `trellis-evidence/1` says, with the field
/// that is wrong (`events[3].leaf_index: invalid type…`).
pub fn from_json(value: &serde_json::Value) -> Result<Evidence, String> {
    let not_valid = |why: String| format!("the evidence is not valid {FORMAT}: {why}");
    let Some(object) = value.as_object() else {
        return Err(not_valid(format!("it is {value}, not a JSON object")));
    };
    match object.get("format") {
        Some(serde_json::Value::String(format)) if format == FORMAT => {}
        Some(serde_json::Value::String(format)) => {
            return Err(format!(
                "the evidence is in format {format:?}; this verifier reads {FORMAT}"
            ));
        }
        Some(other) => {
            return Err(not_valid(format!(
                "its field `format` is {other}, not \"{FORMAT}\""
            )));
        }
        None => return Err(not_valid("it has no field `format`".into())),
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            not_valid(e.inner().to_string())
        } else {
            not_valid(format!("field `{path}`: {}", e.inner()))
        }
    })
}

/// The hash written in the field `field` of the `index`th event.
fn hash_of(text: &str, index: usize, field: &str, event: &EventProof) -> Result<Hash, String> {
    hex::decode(text)
        .ok()
        .and_then(|b| Hash::from_slice(&b))
        .ok_or_else(|| {
            format!(
                "the evidence is not valid {FORMAT}: field `events[{index}].{field}` (event {}, \
                 {} version {}) is not 64 hex digits",
                event.event_id, event.stream_id, event.stream_version
            )
        })
}

/// Checks evidence with no database: the checkpoint's signature by one of
/// `keys`, then every event's hash and audit path against its root. The
/// error names what failed.
pub fn verify(evidence: &Evidence, keys: &[VerifierKey]) -> Result<Verified, String> {
    if evidence.format != FORMAT {
        return Err(format!(
            "the evidence is in format {:?}; this verifier reads {FORMAT}",
            evidence.format
        ));
    }
    let checkpoint = SignedCheckpoint::parse(&evidence.checkpoint)
        .map_err(|e| format!("the evidence's checkpoint: {e}"))?;
    let key = checkpoint
        .verify(keys)
        .map_err(|e| format!("the evidence's checkpoint is not trusted: {e}"))?;
    let (size, root) = (checkpoint.head.size, checkpoint.head.root);
    for (index, event) in evidence.events.iter().enumerate() {
        let name = || {
            format!(
                "event {} ({} version {}, leaf {})",
                event.event_id, event.stream_id, event.stream_version, event.leaf_index
            )
        };
        let digest = hash_of(&event.content_digest, index, "content_digest", event)?;
        let prev = hash_of(&event.prev_hash, index, "prev_hash", event)?;
        let hash = hash_of(&event.hash, index, "hash", event)?;
        if link(&prev, event.stream_version, &digest.0) != hash {
            return Err(format!(
                "{}: its hash is not made of its previous hash, version and content digest",
                name()
            ));
        }
        let proof = event
            .proof
            .iter()
            .enumerate()
            .map(|(at, p)| hash_of(p, index, &format!("proof[{at}]"), event))
            .collect::<Result<Vec<_>, _>>()?;
        if !verify_inclusion(
            event.leaf_index,
            size,
            &merkle::leaf_hash(&hash),
            &proof,
            &root,
        ) {
            return Err(format!(
                "{}: its audit path does not lead to the checkpoint's root (tree of {size} events)",
                name()
            ));
        }
    }
    Ok(Verified {
        origin: checkpoint.head.origin.clone(),
        tree_size: size,
        signed_at: checkpoint.head.time,
        signed_by: key.to_string(),
        events: evidence.events.len(),
    })
}
