//! The vocabulary of the log: streams, versions, positions, the events
//! themselves, and what can go wrong ([`Error`]).

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything that can go wrong talking to the log.
///
/// The variants are what a caller must tell apart: a conflict is retried or
/// shown as 409; bad input is the caller's fault (4xx); unavailable is
/// transient (503 with `Retry-After`); internal is a bug or a damaged store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The stream moved on since the writer read it. Nothing was written.
    #[error(
        "stream {stream} is at version {current}, but the write expected version {expected}: \
         reload the stream and decide again"
    )]
    Conflict {
        stream: StreamId,
        expected: ExpectedVersion,
        current: u64,
    },

    /// The request itself is wrong; the message says what and how to fix it.
    #[error("{0}")]
    InvalidInput(String),

    /// The store cannot be reached or is overloaded right now. Nothing that
    /// was acknowledged before is lost; the same call may succeed later.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),

    /// A bug, or a store that holds something it should not.
    #[error("event store failure: {0}")]
    Internal(String),
}

/// Checks the name of a component that keeps its own tables beside the
/// log (the read models, the webhooks): a lowercase identifier chosen by
/// the caller, never user input, since it becomes part of a table's name.
pub fn check_component_name(component: &str) -> Result<(), Error> {
    if component
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
    {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{component:?} is not a component name"
        )))
    }
}

/// The longest stream id the log accepts.
pub const MAX_STREAM_ID_LEN: usize = 200;

/// The name of one stream, `<category>-<id>` by convention (`rep-0190…`).
///
/// A stream id is ASCII letters, digits, `-`, `_`, `.` and `:`, at most
/// [`MAX_STREAM_ID_LEN`] characters, and starts with a letter. The part before
/// the first `-` is the stream's category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Parses a stream id, saying what is wrong with it when it is not one.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        let problem = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_STREAM_ID_LEN {
            Some("it is longer than 200 characters")
        } else if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
            Some("it must start with a letter")
        } else if !id
            // Bytes, not chars: every allowed character is one ASCII byte, and
            // every byte of any other character is outside ASCII. (Every row
            // read from the log is checked again, so this runs per event.)
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            Some("only ASCII letters, digits, '-', '_', '.' and ':' are allowed")
        } else {
            None
        };
        match problem {
            Some(why) => Err(Error::InvalidInput(format!(
                "{id:?} is not a valid stream id: {why} (expected something like \"rep-<uuid>\")"
            ))),
            None => Ok(StreamId(id)),
        }
    }

    /// `<category>-<uuid>`, the conventional shape of every Trellis stream.
    pub fn for_entity(category: &str, id: Uuid) -> Result<Self, Error> {
        Self::new(format!("{category}-{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-` (the whole id when there is none).
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }

    /// The entity's UUID of a `<category>-<uuid>` id ([`entity_uuid`]).
    pub fn entity_uuid(&self) -> Option<Uuid> {
        entity_uuid(&self.0)
    }
}

/// The UUID after the first `-` of a stream id shaped `<category>-<uuid>`;
/// `None` for any other shape.
pub fn entity_uuid(stream_id: &str) -> Option<Uuid> {
    stream_id
        .split_once('-')
        .and_then(|(_, id)| Uuid::parse_str(id).ok())
}

impl TryFrom<String> for StreamId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StreamId::new(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer believes the stream's version is. Versions count events:
/// an empty stream is at version 0 and its first event has version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the current version is (the caller re-decided on fresh
    /// state or does not care).
    Any,
    /// Append only if the stream is exactly at this version (0: does not exist yet).
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// A place in the global log that a reader has reached.
///
/// The global order is `(tx, position)`: the commit-visible transaction id,
/// then the position inside it. See `docs/adr/0001-global-order.md` for why a
/// bare position is not enough on PostgreSQL. [`Checkpoint::START`] is before
/// every event. Checkpoints of one backend mean nothing to another.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Checkpoint {
    pub tx: u64,
    pub position: u64,
}

impl Checkpoint {
    pub const START: Checkpoint = Checkpoint { tx: 0, position: 0 };
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.tx, self.position)
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            Error::InvalidInput(format!(
                "{s:?} is not a checkpoint: expected two whole numbers joined by a dot, like \"1234.567\""
            ))
        };
        let (tx, position) = s.split_once('.').ok_or_else(bad)?;
        Ok(Checkpoint {
            tx: tx.parse().map_err(|_| bad())?,
            position: position.parse().map_err(|_| bad())?,
        })
    }
}

/// One event a command decided, before the log gave it a place.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// UUID v7, chosen by the writer so retries and the broker can deduplicate.
    pub event_id: Uuid,
    /// Stable type name, e.g. `FeedbackGiven`.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u16,
    pub payload: serde_json::Value,
    /// Business time: when the fact happened in the world.
    pub occurred_at: DateTime<Utc>,
}

impl NewEvent {
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u16,
        payload: serde_json::Value,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            payload,
            occurred_at,
        }
    }
}

/// Who appended, on behalf of which command, and when it was recorded.
/// The same for every event of one append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMeta {
    /// Appending the same command id twice records once (idempotency).
    pub command_id: Uuid,
    /// The authenticated subject that issued the command.
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// Recorded time. The log stores it at microsecond precision.
    pub recorded_at: DateTime<Utc>,
    /// A fingerprint of the request that carried the command, kept with the
    /// command id and given back on a replay, so the caller can tell a true
    /// retry from a different request reusing the id.
    pub request_hash: Option<Hash>,
    /// The W3C trace context of the request that carried the command, kept
    /// with each of its events so a subscriber continues the trace. Not
    /// covered by the hash chain: it is telemetry, not history.
    pub traceparent: Option<TraceParent>,
}

impl CommandMeta {
    /// A command that starts its own correlation, recorded at `recorded_at`.
    pub fn new(actor: impl Into<String>, recorded_at: DateTime<Utc>) -> Self {
        let command_id = Uuid::now_v7();
        CommandMeta {
            command_id,
            actor: actor.into(),
            correlation_id: command_id,
            causation_id: None,
            recorded_at,
            request_hash: None,
            traceparent: None,
        }
    }
}

/// The metadata the log keeps with every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Recorded time.
    pub recorded_at: DateTime<Utc>,
    /// The W3C `traceparent` of the request that appended the event, when
    /// it had one ([`CommandMeta::traceparent`]). Operational telemetry: the
    /// hash chain, the seals and the Merkle tree do not cover it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
}

/// A W3C Trace Context `traceparent` (version `00`):
/// `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex>`, lowercase,
/// with neither id all zeros (<https://www.w3.org/TR/trace-context/#traceparent-header>).
///
/// The log keeps one with each event a traced request appended, so that
/// whoever reads the event (the relay's CloudEvents `traceparent` header, a
/// webhook) continues the request's trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TraceParent(String);

impl TraceParent {
    /// The length of a version `00` traceparent.
    pub const LEN: usize = 55;

    /// Parses a version `00` traceparent, saying what is wrong with it
    /// when it is not one.
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        let hex = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let parts: Vec<&str> = text.split('-').collect();
        let ok = match parts.as_slice() {
            [version, trace, span, flags] => {
                *version == "00"
                    && hex(trace, 32)
                    && hex(span, 16)
                    && hex(flags, 2)
                    && trace.bytes().any(|b| b != b'0')
                    && span.bytes().any(|b| b != b'0')
            }
            _ => false,
        };
        if ok {
            Ok(TraceParent(text))
        } else {
            Err(Error::InvalidInput(format!(
                "{:?} is not a W3C traceparent (expected 00-<32 lowercase hex>-<16 lowercase \
                 hex>-<2 hex>, neither id all zeros)",
                text.chars().take(80).collect::<String>()
            )))
        }
    }

    /// One made of its parts: a trace id, a parent (span) id and the trace
    /// flags; `None` when either id is all zeros.
    pub fn from_parts(trace_id: u128, span_id: u64, flags: u8) -> Option<Self> {
        (trace_id != 0 && span_id != 0)
            .then(|| TraceParent(format!("00-{trace_id:032x}-{span_id:016x}-{flags:02x}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    /// The parent (span) id, 16 lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.0[36..52]
    }

    /// The trace flags, 2 hex digits (`01`: sampled).
    pub fn flags(&self) -> &str {
        &self.0[53..55]
    }
}

impl TryFrom<String> for TraceParent {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TraceParent::new(value)
    }
}

impl From<TraceParent> for String {
    fn from(value: TraceParent) -> Self {
        value.0
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A hash in a stream's chain (SHA-256).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The predecessor of every stream's first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; 32]>::try_from(bytes).ok().map(Hash)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// An event as the log holds it.
///
/// `P` is the form of the payload: parsed (`serde_json::Value`, the
/// default), or the JSON text the log holds (`String`, from
/// [`crate::EventStore::read_all_json`]) for a reader that decodes it into
/// types of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent<P = serde_json::Value> {
    /// Unique, increasing in append order; gaps are possible (rolled back appends).
    pub global_position: u64,
    /// Where a reader that has consumed this event stands.
    pub checkpoint: Checkpoint,
    pub event_id: Uuid,
    pub stream_id: StreamId,
    /// 1 for the stream's first event, contiguous after that.
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub payload: P,
    pub metadata: Metadata,
    pub prev_hash: Hash,
    pub hash: Hash,
    /// The service's signature of the event's content, made as it was
    /// appended, alone or with the rest of its batch
    /// ([`crate::note::SignerKey::seal_all`]); `None` when the store had
    /// no key.
    pub seal: Option<Seal>,
    /// What the event carries of the digest of its content as stored: see
    /// [`ContentDigest`] and `RecordedEvent::stored_digest` (in `chain`).
    pub content_digest: ContentDigest,
}

/// The digest of an event's content as the log stores it, which its hash,
/// seal and Merkle leaf are made over, as far as a read carries it. The
/// vault (`vault::Vault`) decrypts the personal data it reads, after which
/// the payload no longer gives the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentDigest {
    /// The payload is as stored: the digest is computed from it.
    #[default]
    OfPayload,
    /// The payload was decrypted; this is the digest of its stored form, so
    /// chains, seals and proofs still check against what the log holds. A
    /// stream read through the vault carries it (the read side's packets,
    /// audit trail and time travel), and so does a scan of streams
    /// (`audit verify`).
    Kept([u8; 32]),
    /// The payload was decrypted and the digest of its stored form was not
    /// kept: a scan of the whole log (`read_all`, `read_all_json`) through
    /// the vault, whose readers fold, publish or deliver events and never
    /// check one against its hash. Computing it for them cost as much as
    /// decrypting. To check an event, read its stream or the log as stored.
    NotKept,
}

/// An event's seal: the signing key's 4-byte id and an Ed25519 signature,
/// of the event's digest alone (68 bytes) or of the batch it was written in,
/// followed by its place and audit path in that batch
/// ([`crate::note::SignerKey::seal_all`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Seal(pub Box<[u8]>);

impl Seal {
    /// The length of a single event's seal: key id and signature.
    pub const SINGLE_LEN: usize = 68;
    /// The length of a batch seal before its audit path: key id,
    /// signature, index and size.
    pub const BATCH_HEAD_LEN: usize = Self::SINGLE_LEN + 8;

    /// Whether `bytes` has the shape of a seal: a single event's, or a batch
    /// seal with whole hashes after its head. Whether it verifies is another
    /// matter ([`crate::note::seal_verifies`]).
    pub fn is_shaped(bytes: &[u8]) -> bool {
        bytes.len() == Self::SINGLE_LEN
            || (bytes.len() >= Self::BATCH_HEAD_LEN
                && (bytes.len() - Self::BATCH_HEAD_LEN).is_multiple_of(32))
    }

    /// The seal in `bytes`, if they have a seal's shape.
    pub fn from_slice(bytes: &[u8]) -> Option<Seal> {
        Self::is_shaped(bytes).then(|| Seal(bytes.into()))
    }

    /// The seal in `bytes`, kept without a copy, if they have a seal's shape.
    pub fn from_vec(bytes: Vec<u8>) -> Option<Seal> {
        Self::is_shaped(&bytes).then(|| Seal(bytes.into_boxed_slice()))
    }
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seal({})", hex::encode(&self.0[..4]))
    }
}

impl<P> RecordedEvent<P> {
    /// The same event with its payload in another form.
    pub fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> RecordedEvent<Q> {
        RecordedEvent {
            global_position: self.global_position,
            checkpoint: self.checkpoint,
            event_id: self.event_id,
            stream_id: self.stream_id,
            stream_version: self.stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload: f(self.payload),
            metadata: self.metadata,
            prev_hash: self.prev_hash,
            hash: self.hash,
            seal: self.seal,
            content_digest: self.content_digest,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append (the version of its last new event).
    pub stream_version: u64,
    /// Global positions of the first and last event appended.
    pub first_position: u64,
    pub last_position: u64,
    /// True when the command id had been recorded before: nothing new was
    /// written and this is the first append's outcome.
    pub replayed: bool,
    /// The request hash recorded with the command (the first request's, on a replay).
    pub request_hash: Option<Hash>,
}

/// One command's append to one stream, as [`crate::EventStore::append_batch`]
/// takes several independent ones: the arguments of
/// [`crate::EventStore::append`], owned.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub meta: CommandMeta,
    pub events: Vec<NewEvent>,
}

/// One stream's part of an atomic multi-stream append.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamWrite {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// Timestamps are kept at microsecond precision (PostgreSQL's), so what is
/// hashed is exactly what is stored and read back.
pub(crate) fn to_micros_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

// ---- migrations --------------------------------------------------------------

/// The migrations of one component that keeps tables in the log's database
/// or file (the log itself, the read models, the sign-in and webhook
/// tables), run by `postgres::migrate` / `sqlite::migrate`. Each applied
/// migration is recorded in `<component>_migrations` with the SHA-256 of its
/// text: a file changed after it was applied, or a database holding a
/// migration this binary does not know (a newer schema), is refused.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// Names the record table: a lowercase identifier ([`check_component_name`]).
    pub component: &'static str,
    /// The files' folder from the workspace root, to name a file in messages.
    pub dir: &'static str,
    /// `(version, name, text)` of each file `<dir>/<version:04>_<name>.sql`,
    /// in increasing version, embedded with `include_str!`. A file is never
    /// edited once released: a change is a new file.
    pub steps: &'static [(i32, &'static str, &'static str)],
}

impl Migrations {
    /// The file of one step, from the workspace root.
    pub fn file(&self, version: i32, name: &str) -> String {
        format!("{}/{version:04}_{name}.sql", self.dir)
    }

    /// The latest version this binary knows (0 for none).
    pub fn latest(&self) -> i32 {
        self.steps.last().map_or(0, |step| step.0)
    }

    /// The SHA-256 of a migration's text, in hex. Line endings count as
    /// `\n`, so a checkout with Windows line endings is the same migration.
    pub fn checksum(text: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(text.replace("\r\n", "\n").as_bytes()))
    }

    /// What is left to do, given what the database records: the steps to
    /// apply and the records (made before checksums were kept) to give
    /// their checksum. A recorded version this binary does not know (the
    /// schema is newer) or a recorded checksum the file no longer has (the
    /// file was edited) is an error that says so.
    pub(crate) fn plan(&self, recorded: &[Recorded]) -> Result<Plan, Error> {
        check_component_name(self.component)?;
        if !self.steps.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(Error::Internal(format!(
                "the {} migrations are not in increasing version order",
                self.component
            )));
        }
        let mut plan = Plan::default();
        for record in recorded {
            let Some(&(version, name, text)) =
                self.steps.iter().find(|step| step.0 == record.version)
            else {
                return Err(self.newer(record));
            };
            let checksum = Self::checksum(text);
            match &record.checksum {
                Some(recorded) if *recorded == checksum => {}
                Some(recorded) => {
                    return Err(Error::Internal(format!(
                        "{} was changed after it was applied to this database (its checksum \
                         was {}…, it is now {}…): a migration is never edited once applied; \
                         restore the file and put the change in a new migration",
                        self.file(version, name),
                        recorded.get(..12).unwrap_or(recorded),
                        &checksum[..12],
                    )));
                }
                None => plan
                    .unchecked
                    .push((version, self.file(version, name), checksum)),
            }
        }
        plan.pending = self
            .steps
            .iter()
            .filter(|step| !recorded.iter().any(|r| r.version == step.0))
            .copied()
            .collect();
        Ok(plan)
    }

    fn newer(&self, record: &Recorded) -> Error {
        let named = record
            .name
            .as_deref()
            .map(|name| format!(" ({:04}_{name}.sql)", record.version))
            .unwrap_or_default();
        Error::Internal(format!(
            "the database's schema is newer than this trellis: it holds {} migration {}{named}, \
             and this binary knows {} migrations up to {}; upgrade trellis to the release that \
             applied it",
            self.component,
            record.version,
            self.component,
            self.latest(),
        ))
    }
}

/// One applied migration as the database records it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub version: i32,
    pub name: Option<String>,
    /// Absent on records made before checksums were kept.
    pub checksum: Option<String>,
}

/// What [`Migrations::plan`] found left to do.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Steps to apply, in order.
    pub pending: Vec<(i32, &'static str, &'static str)>,
    /// `(version, file, checksum)` of records without a checksum yet.
    pub unchecked: Vec<(i32, String, String)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.unchecked.is_empty()
    }
}

/// What bringing one component's tables up to date did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub component: &'static str,
    /// The files applied now, in order.
    pub applied: Vec<String>,
    /// Files applied before checksums were kept, whose checksum was recorded
    /// now (as this binary has them).
    pub checksummed: Vec<String>,
    /// The latest version the database holds now.
    pub version: i32,
}

impl Outcome {
    pub(crate) fn new(migrations: &Migrations, recorded: &[Recorded]) -> Outcome {
        Outcome {
            component: migrations.component,
            applied: Vec::new(),
            checksummed: Vec::new(),
            version: recorded.iter().map(|r| r.version).max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    const STEPS: Migrations = Migrations {
        component: "sample",
        dir: "crates/sample/migrations/postgres",
        steps: &[
            (1, "tables", "CREATE TABLE a (x int);\n"),
            (2, "more", "SELECT 1;\n"),
        ],
    };

    fn recorded(version: i32, text: Option<&str>) -> Recorded {
        Recorded {
            version,
            name: Some("tables".to_owned()),
            checksum: text.map(Migrations::checksum),
        }
    }

    #[test]
    fn what_is_recorded_with_the_same_text_is_done_and_the_rest_is_pending() {
        let plan = STEPS
            .plan(&[recorded(1, Some("CREATE TABLE a (x int);\r\n"))])
            .expect("a plan");
        assert_eq!(plan.pending, [STEPS.steps[1]]);
        assert!(plan.unchecked.is_empty());
        let plan = STEPS.plan(&[recorded(1, None)]).expect("a plan");
        assert_eq!(
            plan.unchecked,
            [(
                1,
                "crates/sample/migrations/postgres/0001_tables.sql".to_owned(),
                Migrations::checksum(STEPS.steps[0].2)
            )]
        );
    }

    #[test]
    fn a_changed_file_and_an_unknown_version_are_refused_saying_which() {
        let changed = STEPS
            .plan(&[recorded(1, Some("CREATE TABLE a (x bigint);\n"))])
            .expect_err("a changed file")
            .to_string();
        assert!(
            changed.contains("crates/sample/migrations/postgres/0001_tables.sql was changed"),
            "{changed}"
        );
        let newer = STEPS
            .plan(&[recorded(3, Some("whatever"))])
            .expect_err("a newer schema")
            .to_string();
        assert!(
            newer.contains("it holds sample migration 3 (0003_tables.sql)")
                && newer.contains("knows sample migrations up to 2"),
            "{newer}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_category_is_the_part_before_the_first_dash() {
        let id = StreamId::new("rep-0190a0b1-0000-7000-8000-000000000000").unwrap();
        assert_eq!(id.category(), "rep");
        assert_eq!(StreamId::new("framework").unwrap().category(), "framework");
    }

    #[test]
    fn the_entity_uuid_is_the_uuid_after_the_first_dash_or_none() {
        let uuid = Uuid::parse_str("0190a0b1-0000-7000-8000-000000000000").unwrap();
        let id = StreamId::for_entity("rep", uuid).unwrap();
        assert_eq!(id.entity_uuid(), Some(uuid));
        assert_eq!(StreamId::new("framework").unwrap().entity_uuid(), None);
        assert_eq!(StreamId::new("rep-not-a-uuid").unwrap().entity_uuid(), None);
    }

    #[test]
    fn stream_id_rejects_bad_input_with_the_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("-rep", "start with a letter"),
            ("rep 1", "only ASCII"),
            ("rép-1", "only ASCII"),
        ] {
            let err = StreamId::new(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
        let long = "a".repeat(MAX_STREAM_ID_LEN + 1);
        assert!(
            StreamId::new(long)
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
    }

    #[test]
    fn a_traceparent_is_a_version_00_w3c_header_with_its_parts() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::new(text).unwrap();
        assert_eq!(parent.as_str(), text);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.parent_id(), "00f067aa0ba902b7");
        assert_eq!(parent.flags(), "01");
        assert_eq!(
            TraceParent::from_parts(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, 1),
            Some(parent)
        );
        assert_eq!(TraceParent::from_parts(0, 1, 1), None);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",
        ] {
            let err = TraceParent::new(bad).unwrap_err().to_string();
            assert!(err.contains("not a W3C traceparent"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn checkpoint_orders_by_transaction_then_position_and_round_trips_as_text() {
        let a = Checkpoint {
            tx: 5,
            position: 900,
        };
        let b = Checkpoint {
            tx: 6,
            position: 10,
        };
        assert!(a < b);
        assert_eq!("5.900".parse::<Checkpoint>().unwrap(), a);
        assert_eq!(a.to_string(), "5.900");
        assert!("5".parse::<Checkpoint>().is_err());
        assert!("x.1".parse::<Checkpoint>().is_err());
    }
}

/// A count or position as the databases store it (`bigint`, SQLite's
/// INTEGER), refused when too large.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidInput(format!("{what} {value} is too large for the log")))
}

/// A read's `LIMIT`: at least 1, at most 100,000 rows.
pub(crate) fn limit(max: usize) -> i64 {
    i64::try_from(max.clamp(1, 100_000)).unwrap_or(100_000)
}

/// A stored time in microseconds since the epoch.
pub(crate) fn micros_to_time(micros: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::Internal(format!("the log holds an invalid timestamp {micros}")))
}
