//! Signed checkpoints in the format transparency logs share: C2SP's
//! `tlog-checkpoint` body inside a C2SP `signed-note`, signed with Ed25519.
//!
//! ```text
//! trellis.example.com/log          ← origin: names the log
//! 12345                            ← tree size
//! Hr0ToZfP9ev1AsILfiQNo4k2Y1bvdkm5KzqX6N1V9yM=   ← root hash, base64
//! time 2026-12-03T07:41:09Z        ← extension line: when it was signed
//!
//! — trellis.example.com/log Az3grl…  ← key name, base64(key id ‖ signature)
//! ```
//!
//! The signature is over every byte of the body, its last newline included.
//! The key id is the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖
//! public key)`. Keys are written as the Go `note` package writes them:
//! `name+hexid+base64(0x01 ‖ public key)` for a verifier key and
//! `PRIVATE+KEY+name+hexid+base64(0x01 ‖ seed)` for a signer key, so any
//! tool of that family can check Trellis's checkpoints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Hash, Seal};

/// The algorithm byte of an Ed25519 key in the note formats.
const ED25519: u8 = 0x01;
/// What starts each signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// What is wrong with a key, a note or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a key: {0}")]
    BadKey(String),
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    #[error("no signature by a known key: signed by {signers}; known keys: {known}")]
    UnknownSigner { signers: String, known: String },
    #[error("the signature by {0} does not match the checkpoint: it was altered or forged")]
    BadSignature(String),
}

/// A key's four-byte id.
fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadKey(format!(
            "the key name {name:?} must be non-empty, without spaces or '+' (a host and path, like \
             trellis.example.com/log)"
        )));
    }
    Ok(())
}

/// A public key that checks checkpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(bytes))
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;
    fn from_str(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| {
            NoteError::BadKey(format!(
                "{why}; a public key looks like name+1a2b3c4d+AQ… (see `trellis keys generate`)"
            ))
        };
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("it does not have three parts joined by '+'"));
        };
        if text.starts_with("PRIVATE+KEY+") {
            return Err(bad("this is a private signing key, not a public key"));
        }
        check_name(name)?;
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("its id is not 8 hex digits"))?;
        let bytes = B64.decode(key).map_err(|_| bad("its key is not base64"))?;
        let (&[ED25519], public) = bytes.split_at(1.min(bytes.len())) else {
            return Err(bad("it is not an Ed25519 key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("its key is not 32 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("its key is not a valid point"))?;
        if key_id(name, &public) != id {
            return Err(bad("its id does not match its name and key"));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id,
            key,
        })
    }
}

impl VerifierKey {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// The raw Ed25519 public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` (64 bytes) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// A private key that signs checkpoints. Its text form is a secret: it never
/// appears in `Debug` output.
#[derive(Clone)]
pub struct SignerKey {
    key: SigningKey,
    /// The public half, its name and key id, derived once when the key is
    /// made or read: sealing an event costs only its signature.
    verifier: VerifierKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({}, private)", self.verifier)
    }
}

impl std::str::FromStr for SignerKey {
    type Err = NoteError;
    fn from_str(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| {
            NoteError::BadKey(format!(
                "{why}; a signing key looks like PRIVATE+KEY+name+1a2b3c4d+AQ… (made by `trellis \
                 keys generate`)"
            ))
        };
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("it does not start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(seed)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                "it does not have a name, an id and a key joined by '+'",
            ));
        };
        check_name(name)?;
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("its id is not 8 hex digits"))?;
        let bytes = B64.decode(seed).map_err(|_| bad("its key is not base64"))?;
        let (&[ED25519], seed) = bytes.split_at(1.min(bytes.len())) else {
            return Err(bad("it is not an Ed25519 key"));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("its key is not 32 bytes"))?;
        let key = SignerKey::new(name, SigningKey::from_bytes(&seed));
        if key.verifier.id != id {
            return Err(bad("its id does not match its name and key"));
        }
        Ok(key)
    }
}

impl SignerKey {
    /// The key `key` named `name` (a checked name), with its public half.
    fn new(name: &str, key: SigningKey) -> Self {
        let public = key.verifying_key();
        let verifier = VerifierKey {
            name: name.to_owned(),
            id: key_id(name, public.as_bytes()),
            key: public,
        };
        SignerKey { key, verifier }
    }

    /// A new key named `name` from 32 bytes of the system's randomness.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| NoteError::BadKey(format!("no randomness from the system: {e}")))?;
        Ok(SignerKey::new(name, SigningKey::from_bytes(&seed)))
    }

    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The public half.
    pub fn verifier(&self) -> VerifierKey {
        self.verifier.clone()
    }

    /// The secret text form, for a key file.
    pub fn to_secret_text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.verifier.name,
            self.verifier.id,
            B64.encode(bytes)
        )
    }

    /// The seal of an event: this key's id, then its signature of the
    /// event's content digest (under a prefix no checkpoint body can start
    /// with, so a seal is never a valid signature of a note, nor the
    /// reverse). 68 bytes.
    pub fn seal(&self, digest: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEAL_LEN);
        out.extend_from_slice(&self.verifier.id.to_be_bytes());
        out.extend_from_slice(&self.key.sign(&seal_message(digest)).to_bytes());
        out
    }

    /// The seals of the events one write appends, in order, with one
    /// signature for all of them: a Merkle tree is made over their content
    /// digests (leaf `i` the `i`-th digest, hashed as the log's tree hashes,
    /// [`crate::merkle`]) and its size and root are signed once. Each
    /// event's seal is this key's id, that signature, then the event's
    /// place in the tree and its audit path there:
    ///
    /// ```text
    /// key id (4) ‖ signature (64) ‖ index (u32, big-endian) ‖ size (u32) ‖ path (32 each)
    /// ```
    ///
    /// One digest gets the single event's [`SignerKey::seal`]. A signature
    /// costs some 18 µs, hashing a path well under one: a batch of eight
    /// commands pays for one signature, not eight.
    pub fn seal_all(&self, digests: &[[u8; 32]]) -> Vec<Vec<u8>> {
        match digests {
            [] => Vec::new(),
            [only] => vec![self.seal(only)],
            _ => {
                let tree = DigestTree::new(digests);
                let size = tree.size();
                let root = tree.root;
                let signature = self.key.sign(&batch_seal_message(size, &root)).to_bytes();
                (0..size)
                    .map(|index| {
                        let path = tree.path(index);
                        let mut out = Vec::with_capacity(BATCH_SEAL_HEAD + 32 * path.len());
                        out.extend_from_slice(&self.verifier.id.to_be_bytes());
                        out.extend_from_slice(&signature);
                        out.extend_from_slice(&index.to_be_bytes());
                        out.extend_from_slice(&size.to_be_bytes());
                        for hash in &path {
                            out.extend_from_slice(&hash.0);
                        }
                        out
                    })
                    .collect()
            }
        }
    }

    /// Signs a checkpoint of the tree; returns the whole signed note.
    pub fn sign(&self, head: &TreeHead) -> SignedCheckpoint {
        let body = head.body();
        let (signature, line) = self.sign_note(&body);
        SignedCheckpoint {
            head: head.clone(),
            signatures: vec![signature],
            text: format!("{body}\n{line}"),
            body,
        }
    }

    /// Signs the text of a note, `body` (its last newline included): the
    /// signature, and its line as the note carries it after a blank line.
    fn sign_note(&self, body: &str) -> (NoteSignature, String) {
        let signature = self.key.sign(body.as_bytes()).to_bytes();
        let VerifierKey { name, id, .. } = &self.verifier;
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&id.to_be_bytes());
        blob.extend_from_slice(&signature);
        let line = format!("{SIGNATURE_PREFIX}{name} {}\n", B64.encode(blob));
        let signature = NoteSignature {
            name: name.clone(),
            id: *id,
            signature: signature.to_vec(),
        };
        (signature, line)
    }
}

/// The length of a single event's seal: key id and signature.
pub const SEAL_LEN: usize = Seal::SINGLE_LEN;

/// The length of a batch seal before its audit path: key id, signature,
/// index and size.
const BATCH_SEAL_HEAD: usize = Seal::BATCH_HEAD_LEN;

/// The most events one batch seal covers: its index and size are `u32`.
const MAX_BATCH_SEAL: usize = u32::MAX as usize;

/// What a single event's seal signs.
fn seal_message(digest: &[u8; 32]) -> [u8; 52] {
    let mut message = [0u8; 52];
    message[..20].copy_from_slice(b"\0trellis.event.seal\n");
    message[20..].copy_from_slice(digest);
    message
}

/// What a batch seal signs: the size and root of the tree over the batch's
/// digests, under a prefix of its own (neither a note body, which starts
/// with its origin, nor a single event's seal can be taken for it).
fn batch_seal_message(size: u32, root: &Hash) -> [u8; 56] {
    let mut message = [0u8; 56];
    message[..20].copy_from_slice(b"\0trellis.batch.seal\n");
    message[20..24].copy_from_slice(&size.to_be_bytes());
    message[24..].copy_from_slice(&root.0);
    message
}

/// The Merkle tree over one batch's digests, grown as the log's own tree is
/// ([`crate::merkle::Frontier`]), with every complete subtree kept (a batch
/// is small: a few hundred events at most).
struct DigestTree {
    /// `levels[l][i]`: the hash of leaves `i·2^l .. (i+1)·2^l`.
    levels: Vec<Vec<Hash>>,
    root: Hash,
}

impl DigestTree {
    fn new(digests: &[[u8; 32]]) -> Self {
        assert!(
            digests.len() <= MAX_BATCH_SEAL,
            "a batch seal covers at most u32::MAX events"
        );
        let mut frontier = crate::merkle::Frontier::new();
        let mut levels: Vec<Vec<Hash>> = Vec::new();
        for digest in digests {
            // A level's nodes complete in index order.
            for (id, hash) in frontier.push(&Hash(*digest)) {
                let level = usize::from(id.level);
                if levels.len() <= level {
                    levels.push(Vec::new());
                }
                levels[level].push(hash);
            }
        }
        DigestTree {
            levels,
            root: frontier.root(),
        }
    }

    fn size(&self) -> u32 {
        // At most u32::MAX leaves, checked in `new`.
        self.levels.first().map_or(0, Vec::len) as u32
    }

    fn path(&self, index: u32) -> Vec<Hash> {
        crate::merkle::inclusion_proof(u64::from(index), u64::from(self.size()), &mut |id| {
            self.levels[usize::from(id.level)][id.index as usize]
        })
    }
}

/// Whether `seal` is a valid seal of an event with content `digest` by one
/// of `keys`, in either form ([`SignerKey::seal`], [`SignerKey::seal_all`]).
pub fn seal_verifies(keys: &[VerifierKey], digest: &[u8; 32], seal: &[u8]) -> bool {
    SealCheck::new(keys).verifies(digest, seal)
}

/// Checks seals one after another, remembering the last batch signature it
/// found good: the events of one batch lie together in the log, and each
/// then costs a few hashes instead of a signature's verification.
#[derive(Debug)]
pub struct SealCheck<'k> {
    keys: &'k [VerifierKey],
    /// The signed message and the seal's head (key id and signature) of the
    /// last batch signature that verified.
    last_good: Option<([u8; 56], [u8; SEAL_LEN])>,
}

impl<'k> SealCheck<'k> {
    pub fn new(keys: &'k [VerifierKey]) -> Self {
        SealCheck {
            keys,
            last_good: None,
        }
    }

    /// Whether `seal` is a valid seal of an event with content `digest`.
    pub fn verifies(&mut self, digest: &[u8; 32], seal: &[u8]) -> bool {
        if seal.len() == SEAL_LEN {
            return self.signed(&seal[..SEAL_LEN], &seal_message(digest));
        }
        if !Seal::is_shaped(seal) {
            return false;
        }
        let (head, rest) = seal.split_at(SEAL_LEN);
        let (place, path) = rest.split_at(8);
        let index = u32::from_be_bytes([place[0], place[1], place[2], place[3]]);
        let size = u32::from_be_bytes([place[4], place[5], place[6], place[7]]);
        if size < 2 {
            return false;
        }
        let path = path
            .chunks_exact(32)
            .map(|h| Hash(h.try_into().expect("chunks of 32")));
        let leaf = crate::merkle::leaf_hash(&Hash(*digest));
        // The root the path leads to, its shape checked against the index
        // and size on the way; the signature then says whether it is the
        // root this key signed.
        let Some(root) =
            crate::merkle::root_from_inclusion(u64::from(index), u64::from(size), &leaf, path)
        else {
            return false;
        };
        let message = batch_seal_message(size, &root);
        let head: [u8; SEAL_LEN] = head.try_into().expect("a seal's head");
        if self.last_good == Some((message, head)) {
            return true;
        }
        let good = self.signed(&head, &message);
        if good {
            self.last_good = Some((message, head));
        }
        good
    }

    /// Whether `head` (key id and signature) signs `message` by a known key.
    fn signed(&self, head: &[u8], message: &[u8]) -> bool {
        let Some((id, signature)) = head.split_first_chunk::<4>() else {
            return false;
        };
        let id = u32::from_be_bytes(*id);
        self.keys
            .iter()
            .filter(|k| k.id == id)
            .any(|k| k.verifies(message, signature))
    }
}

/// What a checkpoint says: the log, its size, its root and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time: DateTime<Utc>,
}

impl TreeHead {
    /// The signed body: origin, size, root, then the time extension line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0),
            self.time.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NoteSignature {
    name: String,
    id: u32,
    signature: Vec<u8>,
}

/// A checkpoint with its signatures, as kept and passed around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub head: TreeHead,
    body: String,
    signatures: Vec<NoteSignature>,
    text: String,
}

impl SignedCheckpoint {
    /// The whole note, as it is kept.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The key ids that signed it, as `name+hexid`.
    pub fn signers(&self) -> Vec<String> {
        self.signatures
            .iter()
            .map(|s| format!("{}+{:08x}", s.name, s.id))
            .collect()
    }

    /// Checks the signature of one of `keys`; returns the key that verified
    /// it. A signature by a known key that does not verify is an error even
    /// when another signature does.
    pub fn verify<'k>(&self, keys: &'k [VerifierKey]) -> Result<&'k VerifierKey, NoteError> {
        let mut verified = None;
        for signature in &self.signatures {
            let Some(key) = keys
                .iter()
                .find(|k| k.id == signature.id && k.name == signature.name)
            else {
                continue;
            };
            if !key.verifies(self.body.as_bytes(), &signature.signature) {
                return Err(NoteError::BadSignature(format!(
                    "{}+{:08x}",
                    key.name, key.id
                )));
            }
            verified.get_or_insert(key);
        }
        verified.ok_or_else(|| NoteError::UnknownSigner {
            signers: self.signers().join(", "),
            known: if keys.is_empty() {
                "none".into()
            } else {
                keys.iter()
                    .map(|k| format!("{}+{:08x}", k.name, k.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// Reads one signed note.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut all = parse_many(text)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            n => Err(NoteError::Malformed(format!(
                "expected one checkpoint, found {n}"
            ))),
        }
    }
}

/// Reads every signed note of a file of checkpoints kept one after another
/// (each one's signature lines end it; blank lines between them are fine).
pub fn parse_many(text: &str) -> Result<Vec<SignedCheckpoint>, NoteError> {
    let mut notes = Vec::new();
    let mut lines = text.split_inclusive('\n').peekable();
    loop {
        while lines.peek().is_some_and(|l| l.trim().is_empty()) {
            lines.next();
        }
        if lines.peek().is_none() {
            return Ok(notes);
        }
        let number = notes.len() + 1;
        let bad = |why: String| NoteError::Malformed(format!("checkpoint {number}: {why}"));
        let mut body = String::new();
        for line in lines.by_ref() {
            if line == "\n" {
                break;
            }
            if !line.ends_with('\n') {
                return Err(bad("it ends before its signature".into()));
            }
            body.push_str(line);
        }
        let mut signatures = Vec::new();
        let mut sig_text = String::new();
        while let Some(line) = lines.next_if(|l| l.starts_with(SIGNATURE_PREFIX)) {
            sig_text.push_str(line);
            let rest = line[SIGNATURE_PREFIX.len()..].trim_end_matches('\n');
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| bad(format!("signature line {rest:?} has no key name")))?;
            let blob = B64
                .decode(blob)
                .map_err(|_| bad(format!("the signature by {name} is not base64")))?;
            if blob.len() != 68 {
                return Err(bad(format!(
                    "the signature by {name} is {} bytes, not 4 + 64",
                    blob.len()
                )));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
                signature: blob[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(bad("it has no signature line (starting with \"— \")".into()));
        }
        let head = parse_body(&body).map_err(bad)?;
        notes.push(SignedCheckpoint {
            head,
            text: format!("{body}\n{sig_text}"),
            body,
            signatures,
        });
    }
}

fn parse_body(body: &str) -> Result<TreeHead, String> {
    let mut lines = body.lines();
    let origin = lines
        .next()
        .filter(|l| !l.is_empty())
        .ok_or("no origin line")?;
    let size = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or("its second line is not a tree size")?;
    let root: [u8; 32] = lines
        .next()
        .and_then(|l| B64.decode(l).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or("its third line is not a base64 SHA-256 root hash")?;
    let time = lines
        .find_map(|l| l.strip_prefix("time "))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or("it has no \"time\" line")?;
    Ok(TreeHead {
        origin: origin.to_owned(),
        size,
        root: Hash(root),
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(size: u64) -> TreeHead {
        TreeHead {
            origin: "trellis.test/log".into(),
            size,
            root: Hash([size as u8; 32]),
            time: DateTime::parse_from_rfc3339("2026-12-03T07:41:09Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_signed_checkpoint_round_trips_and_verifies_with_its_key_only() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let other = SignerKey::generate("trellis.test/log").unwrap();
        let note = key.sign(&head(42));
        let parsed = SignedCheckpoint::parse(note.text()).unwrap();
        assert_eq!(parsed, note);
        assert_eq!(parsed.head, head(42));
        assert!(parsed.verify(&[key.verifier()]).is_ok());
        let err = parsed.verify(&[other.verifier()]).unwrap_err();
        assert!(matches!(err, NoteError::UnknownSigner { .. }), "{err}");
    }

    #[test]
    fn an_altered_body_fails_its_signature() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let text = key.sign(&head(42)).text().replace("\n42\n", "\n43\n");
        let parsed = SignedCheckpoint::parse(&text).unwrap();
        assert_eq!(parsed.head.size, 43);
        assert!(matches!(
            parsed.verify(&[key.verifier()]),
            Err(NoteError::BadSignature(_))
        ));
    }

    #[test]
    fn keys_round_trip_through_their_text_and_ids_are_checked() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let again: SignerKey = key.to_secret_text().parse().unwrap();
        assert_eq!(again.verifier(), key.verifier());
        let public = key.verifier().to_string();
        assert_eq!(public.parse::<VerifierKey>().unwrap(), key.verifier());
        let wrong_id = format!(
            "trellis.test/log+{:08x}+{}",
            key.verifier().id() ^ 1,
            public.splitn(3, '+').nth(2).unwrap()
        );
        assert!(wrong_id.parse::<VerifierKey>().is_err());
        assert!(key.to_secret_text().parse::<VerifierKey>().is_err());
        assert!(!format!("{key:?}").contains(&key.to_secret_text()));
    }

    #[test]
    fn a_seal_verifies_for_its_digest_and_key_only_and_is_no_note_signature() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let other = SignerKey::generate("trellis.test/log").unwrap();
        let seal = key.seal(&[7; 32]);
        assert_eq!(seal.len(), 68);
        assert!(seal_verifies(
            &[other.verifier(), key.verifier()],
            &[7; 32],
            &seal
        ));
        assert!(!seal_verifies(&[key.verifier()], &[8; 32], &seal));
        assert!(!seal_verifies(&[other.verifier()], &[7; 32], &seal));
        assert!(!seal_verifies(&[key.verifier()], &[7; 32], &seal[..40]));
        assert!(!key.verifier().verifies(&[7; 32], &seal[4..]));
    }

    #[test]
    fn a_batch_seal_verifies_for_its_own_digest_place_and_key_only() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let other = SignerKey::generate("trellis.test/log").unwrap();
        let keys = [key.verifier()];
        let digests: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
        let seals = key.seal_all(&digests);
        assert_eq!(seals.len(), 5);
        // Five leaves: the first four have three hashes on their path, the
        // fifth one (the first four's root).
        let lengths: Vec<usize> = seals.iter().map(Vec::len).collect();
        assert_eq!(lengths, [172, 172, 172, 172, 108]);
        assert!(seals.iter().all(|s| s[..SEAL_LEN] == seals[0][..SEAL_LEN]));
        for (i, seal) in seals.iter().enumerate() {
            assert!(seal_verifies(&keys, &digests[i], seal), "seal {i}");
            let next = &digests[(i + 1) % 5];
            assert!(
                !seal_verifies(&keys, next, seal),
                "seal {i} for another digest"
            );
            assert!(!seal_verifies(&[other.verifier()], &digests[i], seal));
            // Its signature alone is no single event's seal.
            assert!(!seal_verifies(&keys, &digests[i], &seal[..SEAL_LEN]));
        }
        let altered = |at: usize| {
            let mut seal = seals[1].clone();
            seal[at] ^= 1;
            seal
        };
        assert!(
            !seal_verifies(&keys, &digests[1], &altered(10)),
            "signature"
        );
        assert!(!seal_verifies(&keys, &digests[1], &altered(71)), "index");
        assert!(!seal_verifies(&keys, &digests[1], &altered(75)), "size");
        assert!(!seal_verifies(&keys, &digests[1], &altered(100)), "path");
        let short = &seals[1][..seals[1].len() - 32];
        assert!(!seal_verifies(&keys, &digests[1], short), "a hash missing");
        assert!(
            !seal_verifies(&keys, &digests[1], &seals[1][..150]),
            "a partial hash"
        );
        // One event alone gets the single seal.
        assert_eq!(key.seal_all(&digests[..1]), vec![key.seal(&digests[0])]);
        assert!(key.seal_all(&[]).is_empty());
    }

    #[test]
    fn a_check_remembers_a_good_batch_signature_and_still_checks_each_path() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let keys = [key.verifier()];
        let digests: Vec<[u8; 32]> = (0..3u8).map(|i| [i; 32]).collect();
        let seals = key.seal_all(&digests);
        let mut check = SealCheck::new(&keys);
        assert!(check.verifies(&digests[0], &seals[0]));
        assert!(check.last_good.is_some());
        // The same signature with a wrong digest or path is still refused.
        assert!(!check.verifies(&digests[2], &seals[1]));
        let mut bent = seals[1].clone();
        let last = bent.len() - 1;
        bent[last] ^= 1;
        assert!(!check.verifies(&digests[1], &bent));
        assert!(check.verifies(&digests[1], &seals[1]));
        assert!(check.verifies(&digests[2], &seals[2]));
    }

    #[test]
    fn many_checkpoints_parse_from_one_file() {
        let key = SignerKey::generate("trellis.test/log").unwrap();
        let file = format!(
            "{}\n{}",
            key.sign(&head(1)).text(),
            key.sign(&head(2)).text()
        );
        let all = parse_many(&file).unwrap();
        assert_eq!(all.iter().map(|c| c.head.size).collect::<Vec<_>>(), [1, 2]);
        assert!(parse_many("trellis.test/log\n1\n").is_err());
    }

    // The example of Go's golang.org/x/mod/sumdb/note: its package
    // documentation (note.go) and its tests (note_test.go, TestNewSigner,
    // TestNewVerifier, TestSign, TestOpen). Values copied from there, not
    // computed here.
    const GO_SIGNER_KEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER_KEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIGNATURE_LINE: &str = "\u{2014} PeterNeumann \
        x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn a_note_signed_by_go_verifies_with_our_verifier() {
        let key: VerifierKey = GO_VERIFIER_KEY.parse().unwrap();
        assert_eq!((key.name(), key.id()), ("PeterNeumann", 0xc74f20a3));
        assert_eq!(key.to_string(), GO_VERIFIER_KEY);
        let (name, blob) = GO_SIGNATURE_LINE
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|l| l.trim_end().split_once(' '))
            .unwrap();
        let blob = B64.decode(blob).unwrap();
        assert_eq!(
            (name, &blob[..4]),
            ("PeterNeumann", &0xc74f20a3u32.to_be_bytes()[..])
        );
        assert!(key.verifies(GO_TEXT.as_bytes(), &blob[4..]));
        let altered = GO_TEXT.replace("don't", "do");
        assert!(!key.verifies(altered.as_bytes(), &blob[4..]));
    }

    #[test]
    fn our_signer_with_go_s_private_key_has_its_public_key_and_id_and_signs_as_go_does() {
        let signer: SignerKey = GO_SIGNER_KEY.parse().unwrap();
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.verifier().id(), 0xc74f20a3);
        assert_eq!(signer.verifier().to_string(), GO_VERIFIER_KEY);
        assert_eq!(signer.to_secret_text(), GO_SIGNER_KEY);
        // Ed25519 signatures are deterministic: the same note, byte for byte.
        let (_, line) = signer.sign_note(GO_TEXT);
        assert_eq!(
            format!("{GO_TEXT}\n{line}"),
            format!("{GO_TEXT}\n{GO_SIGNATURE_LINE}")
        );
    }
}
