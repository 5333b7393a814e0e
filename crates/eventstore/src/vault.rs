//! Personal data encrypted per person, so that it can be erased without
//! touching the log (crypto-shredding).
//!
//! A [`Vault`] wraps a store. On the way in it encrypts every personal string
//! of an event's payload (which ones, and whose, a [`PersonalData`] says:
//! the domain knows, this crate does not) with its person's data key, an
//! 32-byte key kept by a [`KeyStore`] in a table beside the log,
//! never in it. The log, its hashes, seals, Merkle tree and checkpoints are
//! all over the ciphertext. On the way out it decrypts; once a person's key
//! is destroyed ([`KeyStore::erase_data_key`]) their strings read as erased
//! ([`PersonalData::erased`]) while everything else — ids, dates, figures —
//! reads as before, and every hash and proof still holds.
//!
//! A personal string is stored as
//! `enc:v2:<kind>:<base64url(person ‖ nonce ‖ ciphertext ‖ tag)>`, `kind`
//! being `n` (a name) or `t` (free text), `person` the 16 bytes of the
//! person's id and `nonce` 12 random bytes. The cipher is AES-256-GCM under
//! `HMAC-SHA256(data key, "trellis/personal/v2 AES-256-GCM")`; the
//! associated data is `trellis/personal/v2 ‖ person ‖ event id ‖ kind`, so a
//! ciphertext cannot be moved to another event or person, nor read as the
//! other kind. Strings written before version 2, `enc:v1:…` with a 24-byte
//! nonce, are XChaCha20-Poly1305 under the data key itself with associated
//! data `trellis/personal/v1 ‖ person ‖ event id`; they are still read.
//! Version 2 exists for speed: with hardware AES a short string opens in
//! about a quarter of the time (ADR 11). Reading needs no knowledge of the
//! domain: every string of either shape is opened.
//!
//! An event decrypted by a read of its stream, or by a scan of streams,
//! keeps the digest of its stored form ([`ContentDigest::Kept`]), so chains,
//! seals and packet evidence check against what the log holds. A scan of
//! the whole log (`read_all`, `read_all_json`) does not
//! ([`ContentDigest::NotKept`]): its readers fold, publish and deliver
//! events and never check one, and computing it cost them as much as
//! decrypting.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

use crate::cores::on_cores;
use crate::types::{
    AppendOutcome, AppendRequest, Checkpoint, CommandMeta, ContentDigest, Error, ExpectedVersion,
    Hash, NewEvent, RecordedEvent, StreamId, StreamWrite,
};
use crate::{EventStore, merkle, tree, validate_append, validate_many};

/// Where an encrypted string starts (version 2, AES-256-GCM).
pub const PREFIX: &str = "enc:v2:";
/// Where a string encrypted before version 2 starts (XChaCha20-Poly1305).
pub const PREFIX_V1: &str = "enc:v1:";
const AAD_LABEL: &[u8] = b"trellis/personal/v2";
const AAD_LABEL_V1: &[u8] = b"trellis/personal/v1";
/// What the AES-256-GCM key is derived from a data key with.
const KEY_LABEL: &[u8] = b"trellis/personal/v2 AES-256-GCM";
const NONCE_LEN: usize = 12;
const NONCE_LEN_V1: usize = 24;

/// The prefix a stored string starts with when it is an encrypted one.
fn sealed_prefix(text: &str) -> Option<&'static str> {
    [PREFIX, PREFIX_V1]
        .into_iter()
        .find(|prefix| text.starts_with(prefix))
}

/// What a personal string is, so that an erased one reads sensibly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A person's name.
    Name,
    /// Free text about a person.
    Text,
}

impl Kind {
    fn tag(self) -> char {
        match self {
            Kind::Name => 'n',
            Kind::Text => 't',
        }
    }
}

/// Which strings of a payload are personal data, and whose: the domain's
/// knowledge, handed to the store.
pub trait PersonalData: Send + Sync + fmt::Debug {
    /// The person whose data an event of `event_type` in `stream` holds, if any.
    fn owner(&self, stream: &str, event_type: &str, payload: &Value) -> Option<Uuid>;
    /// Calls `each` with every personal string of the payload and its kind.
    fn visit(&self, event_type: &str, payload: &mut Value, each: &mut dyn FnMut(Kind, &mut Value));
    /// What is read where an erased string of `kind` was.
    fn erased(&self, kind: Kind) -> &'static str;
}

/// A person's data key: 32 bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey(pub [u8; 32]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// The ciphers this key opens and seals strings with.
    fn ciphers(&self) -> Ciphers {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(KEY_LABEL);
        let derived: [u8; 32] = mac.finalize().into_bytes().into();
        Ciphers {
            aes: Aes256Gcm::new(&derived.into()),
            key: self.clone(),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<DataKey, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| Error::Internal(format!("no randomness for a data key: {e}")))?;
        Ok(DataKey(key))
    }
}

/// A person's key as the key store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Live(DataKey),
    /// Destroyed at this time: the person's personal data is erased.
    Erased(DateTime<Utc>),
}

/// A live key made ready: the AES-256-GCM cipher of version 2 strings,
/// and the key itself for version 1 ones.
struct Ciphers {
    aes: Aes256Gcm,
    key: DataKey,
}

impl fmt::Debug for Ciphers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ciphers(…)")
    }
}

/// What a person's new strings are sealed with.
#[derive(Clone)]
enum Sealing {
    Live(Arc<Ciphers>),
    /// Erased at this time: nothing personal is recorded about them again.
    Erased(DateTime<Utc>),
}

/// What a person's sealed strings open with.
enum Opening {
    Live(Box<Ciphers>),
    Erased,
}

/// Where data keys live: a table beside the log on both backends, which
/// the service may add to and erase from, but never read back an erased key.
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The keys of `persons` (missing ones left out), each made first when
    /// `make_missing` and the person has none yet.
    async fn data_keys(
        &self,
        persons: &[Uuid],
        make_missing: bool,
    ) -> Result<HashMap<Uuid, KeyState>, Error>;

    /// Destroys `person`'s key for good (or records that they have none to
    /// have), so their personal data reads as erased from now on and
    /// nothing personal can be recorded about them again. Doing it twice
    /// keeps the first time. Returns when the key is erased.
    async fn erase_data_key(&self, person: Uuid, at: DateTime<Utc>)
    -> Result<DateTime<Utc>, Error>;
}

/// Something beside the log that holds a person's data in the clear (their
/// sign-in account, say), and forgets it when the person is erased.
#[async_trait]
pub trait ForgetsPeople: Send + Sync + fmt::Debug {
    /// What it holds, for messages: "sign-in accounts".
    fn holds(&self) -> &'static str;
    /// Deletes what it holds about `person`. Doing it twice is harmless.
    async fn forget(&self, person: Uuid) -> Result<(), Error>;
}

/// A store that encrypts personal data on the way in and decrypts it on the
/// way out (see the module's docs).
#[derive(Debug, Clone)]
pub struct Vault {
    inner: Arc<dyn EventStore>,
    keys: Arc<dyn KeyStore>,
    personal: Arc<dyn PersonalData>,
    /// Live keys this process encrypted with, made ready (their cipher
    /// derived and expanded once, not for every command), so an append costs
    /// no extra round trip (on the embedded file, no extra commit). Only
    /// writes use it: a read always asks the key store, so a key erased by
    /// any process reads as erased at once. A key erased elsewhere may still
    /// encrypt a write here, which then reads as erased too; the rep
    /// aggregate refuses writes about an erased rep anyway.
    write_keys: Arc<std::sync::Mutex<HashMap<Uuid, Arc<Ciphers>>>>,
}

/// The most keys a vault keeps for writing (about 1 KiB each, with their
/// expanded ciphers); past it the cache starts afresh.
const WRITE_KEYS: usize = 16_384;

impl Vault {
    pub fn new(
        inner: Arc<dyn EventStore>,
        keys: Arc<dyn KeyStore>,
        personal: Arc<dyn PersonalData>,
    ) -> Self {
        Vault {
            inner,
            keys,
            personal,
            write_keys: Arc::default(),
        }
    }

    /// The keys to encrypt `persons`' data with: from this process's cache,
    /// the rest from the key store in one call (made when missing). An
    /// erased person's is there as erased; the caller refuses their data.
    async fn write_keys_of(
        &self,
        persons: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Sealing>, Error> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.write_keys.lock().unwrap_or_else(|p| p.into_inner());
            for person in persons {
                match cache.get(&person) {
                    Some(ciphers) => {
                        found.insert(person, Sealing::Live(ciphers.clone()));
                    }
                    None => missing.push(person),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        // A person named twice (one command's events about the same rep)
        // is asked for once: the key store makes each missing key once.
        missing.sort_unstable();
        missing.dedup();
        let fetched: Vec<(Uuid, Sealing)> = self
            .keys
            .data_keys(&missing, true)
            .await?
            .into_iter()
            .map(|(person, state)| {
                let sealing = match state {
                    KeyState::Live(key) => Sealing::Live(Arc::new(key.ciphers())),
                    KeyState::Erased(at) => Sealing::Erased(at),
                };
                (person, sealing)
            })
            .collect();
        let mut cache = self.write_keys.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() + missing.len() > WRITE_KEYS {
            cache.clear();
        }
        for (person, sealing) in fetched {
            if let Sealing::Live(ciphers) = &sealing {
                cache.insert(person, ciphers.clone());
            }
            found.insert(person, sealing);
        }
        Ok(found)
    }

    /// The key store, for erasing.
    pub fn keys(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    /// Encrypts the personal data of commands' events in place, fetching
    /// every key they need at once: a batch of commands about new people
    /// (an import hands the vault one) costs one call to the key store,
    /// not one a command. Each command is answered on its own: `Err` when
    /// its payload or its person is refused, or the keys could not be had.
    async fn seal_all<'a>(
        &self,
        commands: impl IntoIterator<Item = (&'a StreamId, &'a mut [NewEvent])>,
    ) -> Vec<Result<(), Error>> {
        let mut owned = Vec::new();
        for (stream, events) in commands {
            let owners = self.owners(stream, events);
            owned.push((owners, events));
        }
        let persons: HashSet<Uuid> = owned
            .iter()
            .filter_map(|(owners, _)| owners.as_ref().ok())
            .flatten()
            .flatten()
            .copied()
            .collect();
        let keys = if persons.is_empty() {
            Ok(HashMap::new())
        } else {
            self.write_keys_of(persons).await
        };
        owned
            .into_iter()
            .map(|(owners, events)| {
                let owners = owners?;
                if owners.iter().all(Option::is_none) {
                    return Ok(());
                }
                let keys = keys.as_ref().map_err(Clone::clone)?;
                self.seal_with(keys, &owners, events)
            })
            .collect()
    }

    /// Encrypts the personal data of one command, whose events' owners are
    /// `owners` (not all `None`), and appends it.
    async fn seal_one(
        &self,
        mut request: AppendRequest,
        owners: Vec<Option<Uuid>>,
    ) -> Result<AppendOutcome, Error> {
        let keys = self.write_keys_of(owners.iter().flatten().copied()).await?;
        self.seal_with(&keys, &owners, &mut request.events)?;
        self.inner.append_owned(request).await
    }

    /// Encrypts the personal data of one command's events with `keys`.
    fn seal_with(
        &self,
        keys: &HashMap<Uuid, Sealing>,
        owners: &[Option<Uuid>],
        events: &mut [NewEvent],
    ) -> Result<(), Error> {
        for (event, owner) in events.iter_mut().zip(owners) {
            let Some(person) = *owner else { continue };
            let cipher = match keys.get(&person) {
                Some(Sealing::Live(ciphers)) => &ciphers.aes,
                Some(Sealing::Erased(at)) => {
                    return Err(Error::InvalidInput(format!(
                        "the personal data of {person} was erased on {}, so nothing personal \
                         can be recorded about them again",
                        at.date_naive()
                    )));
                }
                None => {
                    return Err(Error::Internal(format!(
                        "no data key was made for {person}"
                    )));
                }
            };
            let event_id = event.event_id;
            let mut failed = None;
            self.personal
                .visit(&event.event_type, &mut event.payload, &mut |kind, value| {
                    if let Value::String(text) = value {
                        match encrypt(cipher, person, event_id, kind, text) {
                            Ok(sealed) => *text = sealed,
                            Err(e) => failed = Some(e),
                        }
                    }
                });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Each event's owner, refusing a payload that already holds a string
    /// shaped like a sealed one (it would be read as one).
    fn owners(&self, stream: &StreamId, events: &[NewEvent]) -> Result<Vec<Option<Uuid>>, Error> {
        events
            .iter()
            .map(|event| {
                if let Some(prefix) = find_sealed(&event.payload) {
                    return Err(Error::InvalidInput(format!(
                        "a text of the {} event starts with {prefix:?}, which the log keeps for \
                         encrypted personal data; change its first characters",
                        event.event_type
                    )));
                }
                Ok(self
                    .personal
                    .owner(stream.as_str(), &event.event_type, &event.payload))
            })
            .collect()
    }

    /// What the sealed strings of `persons` open with.
    async fn keys_of(&self, persons: HashSet<Uuid>) -> Result<HashMap<Uuid, Opening>, Error> {
        let persons: Vec<Uuid> = persons.into_iter().collect();
        let keys = self.keys.data_keys(&persons, false).await?;
        Ok(keys
            .into_iter()
            .map(|(person, state)| {
                let opening = match state {
                    KeyState::Live(key) => Opening::Live(Box::new(key.ciphers())),
                    KeyState::Erased(_) => Opening::Erased,
                };
                (person, opening)
            })
            .collect())
    }

    /// Decrypts the personal data of events read from the log, in place,
    /// keeping the digest of each one's stored form when `digests` says.
    async fn open(&self, events: &mut [RecordedEvent], digests: Digests) -> Result<(), Error> {
        let mut persons = HashSet::new();
        for event in events.iter() {
            collect_persons(&event.payload, &mut persons);
        }
        if persons.is_empty() {
            return Ok(());
        }
        let keys = self.keys_of(persons).await?;
        on_cores(events, EVENTS_PER_PART, |part| {
            let mut scratch = Vec::new();
            for event in part {
                if find_sealed(&event.payload).is_none() {
                    continue;
                }
                event.content_digest = match digests {
                    Digests::Keep => event
                        .stored_digest(&mut scratch)
                        .map_or(ContentDigest::NotKept, ContentDigest::Kept),
                    Digests::Drop => ContentDigest::NotKept,
                };
                let event_id = event.event_id;
                open_value(&mut event.payload, &mut |text| {
                    self.open_text(&keys, event_id, text)
                });
            }
        });
        Ok(())
    }

    /// [`Vault::open`] for payloads read as JSON text, by a scan of the
    /// log: the stored forms' digests are not kept.
    async fn open_json(&self, events: &mut [RecordedEvent<String>]) -> Result<(), Error> {
        let markers = [format!("\"{PREFIX}"), format!("\"{PREFIX_V1}")];
        let mut parsed = Vec::new();
        let mut persons = HashSet::new();
        for (i, event) in events.iter().enumerate() {
            if markers
                .iter()
                .any(|marker| event.payload.contains(marker.as_str()))
            {
                let value: Value = serde_json::from_str(&event.payload)
                    .map_err(|e| Error::Internal(format!("a stored payload is not JSON: {e}")))?;
                collect_persons(&value, &mut persons);
                parsed.push(Opened { index: i, value });
            }
        }
        if parsed.is_empty() {
            return Ok(());
        }
        let keys = self.keys_of(persons).await?;
        let stored: &[RecordedEvent<String>] = events;
        on_cores(&mut parsed, EVENTS_PER_PART, |part| {
            for opened in part {
                let event = &stored[opened.index];
                open_value(&mut opened.value, &mut |text| {
                    self.open_text(&keys, event.event_id, text)
                });
            }
        });
        for opened in parsed {
            let event = &mut events[opened.index];
            event.content_digest = ContentDigest::NotKept;
            event.payload = opened.value.to_string();
        }
        Ok(())
    }

    /// The plaintext of one sealed string, or what an erased one reads as.
    fn open_text(&self, keys: &HashMap<Uuid, Opening>, event_id: Uuid, sealed: &str) -> String {
        let Some(envelope) = Envelope::parse(sealed) else {
            tracing::error!(%event_id, "an encrypted string of the log is malformed");
            return self.personal.erased(Kind::Text).to_owned();
        };
        match keys.get(&envelope.person) {
            Some(Opening::Live(ciphers)) => match envelope.decrypt(ciphers, event_id) {
                Some(text) => text,
                None => {
                    tracing::error!(%event_id, person = %envelope.person,
                        "an encrypted string of the log does not open with its person's key; \
                         run `trellis audit verify`");
                    self.personal.erased(envelope.kind).to_owned()
                }
            },
            Some(Opening::Erased) => self.personal.erased(envelope.kind).to_owned(),
            None => {
                tracing::error!(%event_id, person = %envelope.person,
                    "the data key of a person with encrypted data is missing");
                self.personal.erased(envelope.kind).to_owned()
            }
        }
    }
}

/// The vault's own keys, so that erasing through it also drops the key it
/// kept for writing.
#[async_trait]
impl KeyStore for Vault {
    async fn data_keys(
        &self,
        persons: &[Uuid],
        make_missing: bool,
    ) -> Result<HashMap<Uuid, KeyState>, Error> {
        self.keys.data_keys(persons, make_missing).await
    }

    async fn erase_data_key(
        &self,
        person: Uuid,
        at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Error> {
        self.write_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&person);
        self.keys.erase_data_key(person, at).await
    }
}

/// A payload read as text, parsed to be opened.
struct Opened {
    index: usize,
    value: Value,
}

/// Whether a read through the vault keeps the digest of each decrypted
/// event's stored form ([`ContentDigest`]).
#[derive(Debug, Clone, Copy)]
enum Digests {
    /// Reads of a stream, and scans of streams: what packets, the audit
    /// trail, time travel and `audit verify` read, and check.
    Keep,
    /// Scans of the whole log, whose readers never check a hash.
    Drop,
}

/// The fewest events worth a thread of their own: decrypting costs a few
/// microseconds an event, starting a thread tens.
const EVENTS_PER_PART: usize = 128;

/// The associated data of a version 2 string.
fn aad(person: Uuid, event_id: Uuid, kind: Kind) -> [u8; 52] {
    let mut aad = [0u8; 52];
    aad[..19].copy_from_slice(AAD_LABEL);
    aad[19..35].copy_from_slice(person.as_bytes());
    aad[35..51].copy_from_slice(event_id.as_bytes());
    aad[51] = kind.tag() as u8;
    aad
}

/// The associated data of a version 1 string.
fn aad_v1(person: Uuid, event_id: Uuid) -> [u8; 51] {
    let mut aad = [0u8; 51];
    aad[..19].copy_from_slice(AAD_LABEL_V1);
    aad[19..35].copy_from_slice(person.as_bytes());
    aad[35..].copy_from_slice(event_id.as_bytes());
    aad
}

/// `text`, sealed as a version 2 string of `person`'s in event `event_id`.
fn encrypt(
    cipher: &Aes256Gcm,
    person: Uuid,
    event_id: Uuid,
    kind: Kind,
    text: &str,
) -> Result<String, Error> {
    let nonce = random_nonce()?;
    let sealed = cipher
        .encrypt(
            &aes_gcm::Nonce::from(nonce),
            Payload {
                msg: text.as_bytes(),
                aad: &aad(person, event_id, kind),
            },
        )
        .map_err(|_| Error::Internal("encrypting personal data failed".into()))?;
    let mut bytes = Vec::with_capacity(16 + NONCE_LEN + sealed.len());
    bytes.extend_from_slice(person.as_bytes());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    Ok(format!(
        "{PREFIX}{}:{}",
        kind.tag(),
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Random bytes from the operating system for nonces, drawn 4 KiB at a time
/// on each thread: a system call for every 12-byte nonce cost an append
/// more than encrypting did. Each byte is handed out once. (The process
/// never forks; a child would hand out its parent's bytes again.)
struct Randomness {
    bytes: [u8; 4096],
    used: usize,
}

thread_local! {
    static RANDOMNESS: std::cell::RefCell<Randomness> = const {
        std::cell::RefCell::new(Randomness { bytes: [0; 4096], used: 4096 })
    };
}

/// A fresh random nonce.
fn random_nonce() -> Result<[u8; NONCE_LEN], Error> {
    RANDOMNESS.with_borrow_mut(|pool| {
        if pool.used + NONCE_LEN > pool.bytes.len() {
            getrandom::fill(&mut pool.bytes)
                .map_err(|e| Error::Internal(format!("no randomness for a nonce: {e}")))?;
            pool.used = 0;
        }
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&pool.bytes[pool.used..pool.used + NONCE_LEN]);
        pool.used += NONCE_LEN;
        Ok(nonce)
    })
}

/// A sealed string, parsed: `bytes` is `person ‖ nonce ‖ ciphertext ‖ tag`.
struct Envelope {
    v1: bool,
    kind: Kind,
    person: Uuid,
    bytes: Vec<u8>,
}

impl Envelope {
    fn parse(text: &str) -> Option<Envelope> {
        let (v1, rest) = match text.strip_prefix(PREFIX) {
            Some(rest) => (false, rest),
            None => (true, text.strip_prefix(PREFIX_V1)?),
        };
        let (tag, body) = rest.split_once(':')?;
        let kind = match tag {
            "n" => Kind::Name,
            "t" => Kind::Text,
            _ => return None,
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        let nonce_len = if v1 { NONCE_LEN_V1 } else { NONCE_LEN };
        if bytes.len() < 16 + nonce_len + 16 {
            return None;
        }
        Some(Envelope {
            v1,
            kind,
            person: Uuid::from_slice(&bytes[..16]).ok()?,
            bytes,
        })
    }

    fn decrypt(&self, ciphers: &Ciphers, event_id: Uuid) -> Option<String> {
        let plain = if self.v1 {
            let (nonce, msg) = self.bytes[16..].split_first_chunk::<NONCE_LEN_V1>()?;
            XChaCha20Poly1305::new(&ciphers.key.0.into())
                .decrypt(
                    &XNonce::from(*nonce),
                    Payload {
                        msg,
                        aad: &aad_v1(self.person, event_id),
                    },
                )
                .ok()?
        } else {
            let (nonce, msg) = self.bytes[16..].split_first_chunk::<NONCE_LEN>()?;
            ciphers
                .aes
                .decrypt(
                    &aes_gcm::Nonce::from(*nonce),
                    Payload {
                        msg,
                        aad: &aad(self.person, event_id, self.kind),
                    },
                )
                .ok()?
        };
        String::from_utf8(plain).ok()
    }
}

/// The person of a sealed string, read from its first bytes.
fn person_of(text: &str) -> Option<Uuid> {
    let rest = text.strip_prefix(sealed_prefix(text)?)?;
    let (_, body) = rest.split_once(':')?;
    // 16 bytes are the first 22 base64 characters (rounded up to 24 for whole groups).
    let head = URL_SAFE_NO_PAD.decode(body.get(..24)?).ok()?;
    Uuid::from_slice(head.get(..16)?).ok()
}

/// The prefix of the first encrypted string in `value`, if it holds one.
fn find_sealed(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(s) => sealed_prefix(s),
        Value::Array(items) => items.iter().find_map(find_sealed),
        Value::Object(map) => map.values().find_map(find_sealed),
        _ => None,
    }
}

fn collect_persons(value: &Value, persons: &mut HashSet<Uuid>) {
    match value {
        Value::String(s) => {
            if let Some(person) = person_of(s) {
                persons.insert(person);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_persons(v, persons)),
        Value::Object(map) => map.values().for_each(|v| collect_persons(v, persons)),
        _ => {}
    }
}

fn open_value(value: &mut Value, open: &mut dyn FnMut(&str) -> String) {
    match value {
        Value::String(s) if sealed_prefix(s).is_some() => *s = open(s),
        Value::Array(items) => items.iter_mut().for_each(|v| open_value(v, open)),
        Value::Object(map) => map.values_mut().for_each(|v| open_value(v, open)),
        _ => {}
    }
}

#[async_trait]
impl EventStore for Vault {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        meta: &CommandMeta,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Error> {
        // Checked in the clear: the store below sees ciphertext, where a
        // NUL in a personal text would pass unseen.
        validate_append(events, meta)?;
        let owners = self.owners(stream, events)?;
        if owners.iter().all(Option::is_none) {
            return self.inner.append(stream, expected, meta, events).await;
        }
        self.seal_one(
            AppendRequest {
                stream: stream.clone(),
                expected,
                meta: meta.clone(),
                events: events.to_vec(),
            },
            owners,
        )
        .await
    }

    async fn append_owned(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        validate_append(&request.events, &request.meta)?;
        let owners = self.owners(&request.stream, &request.events)?;
        if owners.iter().all(Option::is_none) {
            return self.inner.append_owned(request).await;
        }
        self.seal_one(request, owners).await
    }

    async fn append_many(
        &self,
        meta: &CommandMeta,
        writes: &[StreamWrite],
    ) -> Result<Vec<AppendOutcome>, Error> {
        validate_many(meta, writes)?;
        let mut owners = Vec::with_capacity(writes.len());
        for write in writes {
            owners.push(self.owners(&write.stream, &write.events)?);
        }
        if owners.iter().flatten().all(Option::is_none) {
            return self.inner.append_many(meta, writes).await;
        }
        let mut writes = writes.to_vec();
        let sealed = self
            .seal_all(
                writes
                    .iter_mut()
                    .map(|write| (&write.stream, write.events.as_mut_slice())),
            )
            .await;
        for sealed in sealed {
            sealed?;
        }
        self.inner.append_many(meta, &writes).await
    }

    async fn append_batch(
        &self,
        mut requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, Error>> {
        let invalid: Vec<Option<Error>> = requests
            .iter()
            .map(|r| validate_append(&r.events, &r.meta).err())
            .collect();
        let sealed = self
            .seal_all(
                requests
                    .iter_mut()
                    .zip(&invalid)
                    .filter(|(_, invalid)| invalid.is_none())
                    .map(|(request, _)| (&request.stream, request.events.as_mut_slice())),
            )
            .await;
        let mut sealed = sealed.into_iter();
        let refused: Vec<Option<Error>> = invalid
            .into_iter()
            .map(|invalid| invalid.or_else(|| sealed.next().and_then(Result::err)))
            .collect();
        if refused.iter().all(Option::is_none) {
            return self.inner.append_batch(requests).await;
        }
        let sealed: Vec<AppendRequest> = requests
            .into_iter()
            .zip(&refused)
            .filter(|(_, refused)| refused.is_none())
            .map(|(request, _)| request)
            .collect();
        let mut outcomes = self.inner.append_batch(sealed).await.into_iter();
        refused
            .into_iter()
            .map(|refused| match refused {
                Some(e) => Err(e),
                None => outcomes.next().unwrap_or_else(|| {
                    Err(Error::Internal(
                        "the store answered fewer commands than it was given".into(),
                    ))
                }),
            })
            .collect()
    }

    async fn recorded_command(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, Error> {
        self.inner.recorded_command(command_id).await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, Error> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), Error> {
        self.inner.save_checkpoint(name, checkpoint).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, Error> {
        self.inner.stream_version(stream).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let mut events = self.inner.read_stream(stream, after_version, max).await?;
        self.open(&mut events, Digests::Keep).await?;
        Ok(events)
    }

    async fn read_all(&self, after: Checkpoint, max: usize) -> Result<Vec<RecordedEvent>, Error> {
        let mut events = self.inner.read_all(after, max).await?;
        self.open(&mut events, Digests::Drop).await?;
        Ok(events)
    }

    async fn read_all_json(
        &self,
        after: Checkpoint,
        max: usize,
    ) -> Result<Vec<RecordedEvent<String>>, Error> {
        let mut events = self.inner.read_all_json(after, max).await?;
        self.open_json(&mut events).await?;
        Ok(events)
    }

    async fn head(&self) -> Result<Checkpoint, Error> {
        self.inner.head().await
    }

    async fn settled_head(&self) -> Result<Checkpoint, Error> {
        self.inner.settled_head().await
    }

    async fn scan_streams(
        &self,
        after: Option<(StreamId, u64)>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let mut events = self.inner.scan_streams(after, max).await?;
        self.open(&mut events, Digests::Keep).await?;
        Ok(events)
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.inner.appended()
    }

    async fn ping(&self) -> Result<(), Error> {
        self.inner.ping().await
    }

    async fn read_leaves(&self, after: Checkpoint, max: usize) -> Result<Vec<tree::Leaf>, Error> {
        self.inner.read_leaves(after, max).await
    }

    async fn tree_state(&self) -> Result<tree::TreeState, Error> {
        self.inner.tree_state().await
    }

    async fn extend_tree(&self, extension: &tree::TreeExtension) -> Result<(), Error> {
        self.inner.extend_tree(extension).await
    }

    async fn tree_nodes(&self, ids: &[merkle::NodeId]) -> Result<Vec<Option<Hash>>, Error> {
        self.inner.tree_nodes(ids).await
    }

    async fn tree_leaf_range(&self, from: u64, max: usize) -> Result<Vec<(u64, u64, Hash)>, Error> {
        self.inner.tree_leaf_range(from, max).await
    }

    async fn tree_leaf_indexes(&self, positions: &[u64]) -> Result<Vec<Option<u64>>, Error> {
        self.inner.tree_leaf_indexes(positions).await
    }

    async fn record_tree_checkpoint(
        &self,
        checkpoint: &tree::StoredCheckpoint,
    ) -> Result<(), Error> {
        self.inner.record_tree_checkpoint(checkpoint).await
    }

    async fn tree_checkpoints(
        &self,
        after_size: u64,
        max: usize,
    ) -> Result<Vec<tree::StoredCheckpoint>, Error> {
        self.inner.tree_checkpoints(after_size, max).await
    }

    async fn latest_tree_checkpoint(&self) -> Result<Option<tree::StoredCheckpoint>, Error> {
        self.inner.latest_tree_checkpoint().await
    }

    async fn exclusive(&self, scope: &str) -> Result<crate::Exclusive, Error> {
        self.inner.exclusive(scope).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey([7; 32])
    }

    fn seal(key: &DataKey, person: Uuid, event: Uuid, kind: Kind, text: &str) -> String {
        encrypt(&key.ciphers().aes, person, event, kind, text).expect("encrypts")
    }

    /// A string as the vault wrote it before version 2.
    fn seal_v1(key: &DataKey, person: Uuid, event: Uuid, kind: Kind, text: &str) -> String {
        let nonce = [9u8; NONCE_LEN_V1];
        let sealed = XChaCha20Poly1305::new(&key.0.into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: text.as_bytes(),
                    aad: &aad_v1(person, event),
                },
            )
            .expect("encrypts");
        let bytes = [person.as_bytes().as_slice(), &nonce, &sealed].concat();
        format!(
            "{PREFIX_V1}{}:{}",
            kind.tag(),
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    #[test]
    fn a_sealed_string_opens_with_its_key_and_names_its_person() {
        let person = Uuid::from_u128(42);
        let event = Uuid::from_u128(1);
        let sealed = seal(&key(), person, event, Kind::Name, "Ada Lovelace");
        assert!(sealed.starts_with("enc:v2:n:"));
        // Random base64 holds any three letters now and then ("Ada" did,
        // once in CI): the whole name is what must not be there.
        assert!(!sealed.contains("Ada Lovelace"));
        assert!(!sealed.contains("Lovelace"));
        assert_eq!(person_of(&sealed), Some(person));
        let envelope = Envelope::parse(&sealed).expect("parses");
        assert_eq!(envelope.kind, Kind::Name);
        assert_eq!(
            envelope.decrypt(&key().ciphers(), event).as_deref(),
            Some("Ada Lovelace")
        );
    }

    #[test]
    fn a_string_sealed_before_version_2_still_opens_and_names_its_person() {
        let person = Uuid::from_u128(42);
        let event = Uuid::from_u128(1);
        let sealed = seal_v1(&key(), person, event, Kind::Text, "Asked sharp questions");
        assert!(sealed.starts_with("enc:v1:t:"));
        assert_eq!(person_of(&sealed), Some(person));
        assert_eq!(sealed_prefix(&sealed), Some(PREFIX_V1));
        let envelope = Envelope::parse(&sealed).expect("parses");
        assert_eq!(
            envelope.decrypt(&key().ciphers(), event).as_deref(),
            Some("Asked sharp questions")
        );
        assert_eq!(envelope.decrypt(&key().ciphers(), Uuid::from_u128(2)), None);
    }

    #[test]
    fn a_sealed_string_moved_to_another_event_or_kind_or_opened_with_another_key_does_not_open() {
        let person = Uuid::from_u128(42);
        let sealed = seal(&key(), person, Uuid::from_u128(1), Kind::Text, "note");
        let envelope = Envelope::parse(&sealed).expect("parses");
        assert_eq!(
            envelope
                .decrypt(&key().ciphers(), Uuid::from_u128(1))
                .as_deref(),
            Some("note")
        );
        assert_eq!(envelope.decrypt(&key().ciphers(), Uuid::from_u128(2)), None);
        assert_eq!(
            envelope.decrypt(&DataKey([8; 32]).ciphers(), Uuid::from_u128(1)),
            None
        );
        let as_name = sealed.replacen("enc:v2:t:", "enc:v2:n:", 1);
        let envelope = Envelope::parse(&as_name).expect("parses");
        assert_eq!(envelope.decrypt(&key().ciphers(), Uuid::from_u128(1)), None);
    }

    #[test]
    fn the_same_text_sealed_twice_reads_differently() {
        let person = Uuid::from_u128(42);
        let event = Uuid::from_u128(1);
        let one = seal(&key(), person, event, Kind::Text, "same");
        let two = seal(&key(), person, event, Kind::Text, "same");
        assert_ne!(one, two);
    }

    #[test]
    fn nonces_drawn_past_many_refills_of_the_pool_never_repeat() {
        // 4,096 bytes make 341 nonces: ten pools' worth crosses nine refills,
        // and a pool that handed out a byte twice, or refilled with what it
        // had, would repeat a nonce.
        let drawn: Vec<[u8; NONCE_LEN]> = (0..3_410).map(|_| random_nonce().unwrap()).collect();
        let distinct: HashSet<[u8; NONCE_LEN]> = drawn.iter().copied().collect();
        assert_eq!(distinct.len(), drawn.len());
        // Another thread draws from a pool of its own, which overlaps none.
        let elsewhere = std::thread::spawn(|| {
            (0..341)
                .map(|_| random_nonce().unwrap())
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert!(elsewhere.iter().all(|nonce| !distinct.contains(nonce)));
    }
}
