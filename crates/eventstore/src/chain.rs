//! The hash chain: what is hashed, how, and how a whole log is verified.
//!
//! Every event's hash is `sha256(prev_hash ‖ stream_version as 8 big-endian
//! bytes ‖ content_digest)`, and `content_digest` is the SHA-256 of a canonical,
//! length-prefixed encoding of everything else the event carries (id, stream,
//! type, schema version, canonical JSON payload, actor, command, correlation and
//! causation ids, both times in microseconds). The link step is small on
//! purpose: PostgreSQL computes it inside the append function (`sha256()` is
//! built in) while Rust computes the digest, so the chain costs no extra round
//! trip. Verification recomputes both from the stored columns.
//!
//! What the digest leaves out: the event's `traceparent` (the W3C trace
//! context of the request that appended it, [`crate::Metadata::traceparent`]).
//! It is operational telemetry, not history: it says which trace to continue,
//! not what happened, so it is neither hashed, sealed nor a Merkle leaf's
//! content, and every hash made before it existed still holds. Whoever can
//! write to the database could change it undetected; nothing that decides or
//! proves anything reads it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{CommandMeta, ContentDigest, Hash, NewEvent, RecordedEvent, StreamId};

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes,
/// no insignificant whitespace, numbers as serde_json prints them (with -0.0
/// folded into 0.0, which PostgreSQL's jsonb cannot keep apart).
pub fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if n.as_f64() == Some(0.0) && n.is_f64() {
                out.extend_from_slice(b"0.0");
            } else {
                out.extend_from_slice(n.to_string().as_bytes());
            }
        }
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(key, out);
                out.push(b':');
                canonical_json(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's escaping is canonical for a given string.
    serde_json::to_writer(&mut *out, s).expect("writing a string into a Vec cannot fail");
}

impl RecordedEvent {
    /// The digest of the event's content as the log stores it (what its
    /// hash and seal are made over): kept from the read when the payload was
    /// decrypted, computed from the payload when it is as stored; `None`
    /// when it was decrypted by a scan of the log that did not keep it
    /// ([`ContentDigest::NotKept`]).
    pub fn stored_digest(&self, scratch: &mut Vec<u8>) -> Option<[u8; 32]> {
        match self.content_digest {
            ContentDigest::OfPayload => Some(DigestInput::of_recorded(self).digest(scratch)),
            ContentDigest::Kept(digest) => Some(digest),
            ContentDigest::NotKept => None,
        }
    }
}

/// The fields of an event that its content digest covers (all but its
/// `traceparent`: see the module's docs).
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    pub event_id: Uuid,
    pub stream_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub payload: &'a serde_json::Value,
    pub actor: &'a str,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub occurred_at_micros: i64,
    pub recorded_at_micros: i64,
}

impl<'a> DigestInput<'a> {
    pub fn of_new(stream: &'a StreamId, meta: &'a CommandMeta, event: &'a NewEvent) -> Self {
        DigestInput {
            event_id: event.event_id,
            stream_id: stream.as_str(),
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: &event.payload,
            actor: &meta.actor,
            command_id: meta.command_id,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            occurred_at_micros: event.occurred_at.timestamp_micros(),
            recorded_at_micros: meta.recorded_at.timestamp_micros(),
        }
    }

    pub fn of_recorded(event: &'a RecordedEvent) -> Self {
        Self::of_recorded_with(event, &event.payload)
    }

    /// The digest input of `event` with `payload` as its payload (an event
    /// read as JSON text, parsed).
    pub fn of_recorded_with<P>(
        event: &'a RecordedEvent<P>,
        payload: &'a serde_json::Value,
    ) -> Self {
        DigestInput {
            event_id: event.event_id,
            stream_id: event.stream_id.as_str(),
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload,
            actor: &event.metadata.actor,
            command_id: event.metadata.command_id,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            occurred_at_micros: event.metadata.occurred_at.timestamp_micros(),
            recorded_at_micros: event.metadata.recorded_at.timestamp_micros(),
        }
    }

    /// The canonical encoding, then its SHA-256. `scratch` is reused between
    /// calls to spare an allocation per event.
    pub fn digest(&self, scratch: &mut Vec<u8>) -> [u8; 32] {
        scratch.clear();
        scratch.extend_from_slice(b"trellis.event.v1");
        scratch.extend_from_slice(self.event_id.as_bytes());
        put_str(scratch, self.stream_id);
        put_str(scratch, self.event_type);
        scratch.extend_from_slice(&self.schema_version.to_be_bytes());
        let len_at = scratch.len();
        scratch.extend_from_slice(&[0; 4]);
        canonical_json(self.payload, scratch);
        let payload_len = u32::try_from(scratch.len() - len_at - 4).unwrap_or(u32::MAX);
        scratch[len_at..len_at + 4].copy_from_slice(&payload_len.to_be_bytes());
        put_str(scratch, self.actor);
        scratch.extend_from_slice(self.command_id.as_bytes());
        scratch.extend_from_slice(self.correlation_id.as_bytes());
        match self.causation_id {
            Some(id) => {
                scratch.push(1);
                scratch.extend_from_slice(id.as_bytes());
            }
            None => scratch.push(0),
        }
        scratch.extend_from_slice(&self.occurred_at_micros.to_be_bytes());
        scratch.extend_from_slice(&self.recorded_at_micros.to_be_bytes());
        Sha256::digest(&scratch[..]).into()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// One link of a stream's chain. PostgreSQL computes the same thing as
/// `sha256(prev || int8send(version) || digest)`.
pub fn link(prev: &Hash, stream_version: u64, digest: &[u8; 32]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(stream_version.to_be_bytes());
    h.update(digest);
    Hash(h.finalize().into())
}

/// What is wrong with the first bad event `audit verify` finds in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Its content no longer matches the hash recorded with it.
    Altered,
    /// The versions jump: the event with `expected_version` is gone.
    Missing { expected_version: u64 },
    /// It does not follow the event before it: its recorded predecessor hash
    /// is not that event's hash, or it sits earlier in the global log than
    /// its predecessor. Events were moved, or the one before was rewritten.
    Reordered,
    /// It was read decrypted, without the digest of its stored form, so it
    /// could not be checked: the verification was given the wrong reader.
    NotAsStored,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Altered => {
                f.write_str("altered: its content does not match its recorded hash")
            }
            Problem::Missing { expected_version } => write!(
                f,
                "missing: version {expected_version} of the stream is not in the log"
            ),
            Problem::Reordered => f.write_str(
                "reordered: it does not follow the event before it in the stream's chain",
            ),
            Problem::NotAsStored => f.write_str(
                "not checked: it was read decrypted, without the digest of its stored form; \
                 verify the log as stored",
            ),
        }
    }
}

/// One finding of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub stream_id: StreamId,
    pub stream_version: u64,
    pub global_position: u64,
    pub event_id: Uuid,
    pub problem: Problem,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stream {} version {} (event {}, position {}): {}",
            self.stream_id, self.stream_version, self.event_id, self.global_position, self.problem
        )
    }
}

/// The result of verifying a whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub streams: u64,
    /// The first problem of each broken stream, in stream order.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug)]
struct Tip {
    stream: StreamId,
    version: u64,
    position: u64,
    hash: Hash,
    broken: bool,
}

/// Checks every stream's chain. Feed it every event of the log grouped by
/// stream and in version order within each stream (what
/// [`crate::EventStore::scan_streams`] yields), then take the report.
/// It holds one stream's tip at a time, so any log size fits in memory.
#[derive(Debug, Default)]
pub struct Verifier {
    tip: Option<Tip>,
    report: VerifyReport,
    scratch: Vec<u8>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, event: &RecordedEvent) {
        self.report.events += 1;
        let same_stream = self
            .tip
            .as_ref()
            .is_some_and(|t| t.stream == event.stream_id);
        if !same_stream {
            self.report.streams += 1;
            self.tip = Some(Tip {
                stream: event.stream_id.clone(),
                version: 0,
                position: 0,
                hash: Hash::GENESIS,
                broken: false,
            });
        }
        let Some(tip) = self.tip.as_mut() else { return };
        if tip.broken {
            return;
        }
        let expected_version = tip.version + 1;
        let problem = if event.stream_version != expected_version {
            Some(Problem::Missing { expected_version })
        } else if event.prev_hash != tip.hash || event.global_position <= tip.position {
            Some(Problem::Reordered)
        } else {
            match event.stored_digest(&mut self.scratch) {
                Some(digest) => (link(&event.prev_hash, event.stream_version, &digest)
                    != event.hash)
                    .then_some(Problem::Altered),
                None => Some(Problem::NotAsStored),
            }
        };
        match problem {
            Some(problem) => {
                tip.broken = true;
                self.report.findings.push(Finding {
                    stream_id: event.stream_id.clone(),
                    stream_version: event.stream_version,
                    global_position: event.global_position,
                    event_id: event.event_id,
                    problem,
                });
            }
            None => {
                tip.version = event.stream_version;
                tip.position = event.global_position;
                tip.hash = event.hash;
            }
        }
    }

    pub fn finish(self) -> VerifyReport {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: serde_json::Value) -> String {
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        assert_eq!(
            canon(json!({"b": 1, "a": {"d": [1, 2], "c": "x"}})),
            r#"{"a":{"c":"x","d":[1,2]},"b":1}"#
        );
    }

    #[test]
    fn canonical_json_is_stable_across_a_text_round_trip_of_numbers() {
        // What PostgreSQL's jsonb gives back for these must canonicalize the same.
        for (original, as_jsonb_prints) in [
            (json!(100.0), "100.0"),
            (json!(0.1), "0.1"),
            (json!(1e20), "100000000000000000000"),
            (json!(-0.0), "0.0"),
            (json!(12), "12"),
        ] {
            let reparsed: serde_json::Value = serde_json::from_str(as_jsonb_prints).unwrap();
            assert_eq!(canon(original.clone()), canon(reparsed), "{original}");
        }
    }

    #[test]
    fn canonical_json_escapes_strings_like_serde_json() {
        assert_eq!(canon(json!("a\"b\n\u{1}é")), "\"a\\\"b\\n\\u0001é\"");
    }

    #[test]
    fn link_depends_on_predecessor_version_and_digest() {
        let d = [7u8; 32];
        let base = link(&Hash::GENESIS, 1, &d);
        assert_ne!(base, link(&Hash([1; 32]), 1, &d));
        assert_ne!(base, link(&Hash::GENESIS, 2, &d));
        assert_ne!(base, link(&Hash::GENESIS, 1, &[8; 32]));
        assert_eq!(base, link(&Hash::GENESIS, 1, &d));
    }
}
