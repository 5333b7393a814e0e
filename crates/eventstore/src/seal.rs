//! Sealing appended events, with seals made ahead of the write.
//!
//! A store that seals signs each event's content digest (an Ed25519
//! signature, about 18 µs). Made inside a batch, that work sits between one
//! commit and the next: on the embedded file, whose one writer commits one
//! batch at a time, every seal of a batch delays the batch after it. So
//! [`crate::GroupCommit`] asks the store to seal a command as it queues it
//! ([`crate::EventStore::prepare_append`]), on the caller's task, while the
//! batch ahead of it commits; the batch then takes the seals it finds
//! ready and signs only what was not.
//!
//! A seal made ahead is the seal of a digest, and the digest covers every
//! field the seal vouches for, so one taken for a digest is that event's
//! seal whoever made it. One made for a command that never reaches the
//! store is never taken; the store forgets them all past
//! [`MAX_AHEAD`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::chain::DigestInput;
use crate::note::SignerKey;
use crate::types::{AppendRequest, CommandMeta, NewEvent, StreamId, to_micros_precision};

/// The most seals kept ahead (about 100 bytes each).
const MAX_AHEAD: usize = 65_536;

/// The most events of a command sealed ahead: a larger command is sealed
/// when written, rather than hold its caller's task for long.
const MAX_EVENTS_AHEAD: usize = 64;

/// A store's signing key, and the seals made ahead with it.
#[derive(Debug)]
pub(crate) struct Sealer {
    key: SignerKey,
    ahead: Mutex<HashMap<[u8; 32], Vec<u8>>>,
    /// Seals the write had to make itself (none was made ahead).
    made_at_write: AtomicU64,
}

impl Sealer {
    pub(crate) fn new(key: SignerKey) -> Self {
        Sealer {
            key,
            ahead: Mutex::default(),
            made_at_write: AtomicU64::new(0),
        }
    }

    /// The seal of `digest`: the one made ahead if there is one, else made now.
    pub(crate) fn seal(&self, digest: &[u8; 32]) -> Vec<u8> {
        let made = self.lock().remove(digest);
        made.unwrap_or_else(|| {
            self.made_at_write.fetch_add(1, Ordering::Relaxed);
            self.key.seal(digest)
        })
    }

    /// Seals the events of `request` and keeps the seals for its write.
    pub(crate) fn seal_ahead(&self, request: &AppendRequest) {
        if request.events.len() > MAX_EVENTS_AHEAD {
            return;
        }
        let (meta, mut scratch) = (&request.meta, Vec::with_capacity(512));
        let seals: Vec<([u8; 32], Vec<u8>)> = request
            .events
            .iter()
            .map(|event| {
                let digest =
                    digest_of_new(&request.stream, meta, meta.command_id, event, &mut scratch);
                (digest, self.key.seal(&digest))
            })
            .collect();
        let mut ahead = self.lock();
        if ahead.len() + seals.len() > MAX_AHEAD {
            ahead.clear();
        }
        ahead.extend(seals);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Vec<u8>>> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub(crate) fn made_at_write(&self) -> u64 {
        self.made_at_write.load(Ordering::Relaxed)
    }
}

/// The content digest of `event` appended under `meta` and `command_id`,
/// its times at the log's precision (microseconds) whether or not they
/// already are: no caller need copy `meta` to truncate them first.
pub(crate) fn digest_of_new(
    stream: &StreamId,
    meta: &CommandMeta,
    command_id: uuid::Uuid,
    event: &NewEvent,
    scratch: &mut Vec<u8>,
) -> [u8; 32] {
    DigestInput {
        command_id,
        occurred_at_micros: to_micros_precision(event.occurred_at).timestamp_micros(),
        recorded_at_micros: to_micros_precision(meta.recorded_at).timestamp_micros(),
        ..DigestInput::of_new(stream, meta, event)
    }
    .digest(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ExpectedVersion;

    fn request(events: usize) -> AppendRequest {
        let stream = StreamId::for_entity("rep", uuid::Uuid::now_v7()).expect("a stream id");
        AppendRequest {
            stream,
            expected: ExpectedVersion::Exact(0),
            meta: CommandMeta::new("user-1", chrono::Utc::now()),
            events: (0..events)
                .map(|i| {
                    NewEvent::new(
                        "FeedbackGiven",
                        1,
                        serde_json::json!({ "n": i }),
                        chrono::Utc::now(),
                    )
                })
                .collect(),
        }
    }

    fn digests(request: &AppendRequest) -> Vec<[u8; 32]> {
        let meta = &request.meta;
        let mut scratch = Vec::new();
        request
            .events
            .iter()
            .map(|e| digest_of_new(&request.stream, meta, meta.command_id, e, &mut scratch))
            .collect()
    }

    #[test]
    fn a_seal_made_ahead_is_the_seal_made_at_the_write_and_is_taken_once() {
        let key = SignerKey::generate("trellis.test/seal").expect("a key");
        let sealer = Sealer::new(key.clone());
        let request = request(3);
        sealer.seal_ahead(&request);
        assert_eq!(sealer.kept(), 3);
        for digest in digests(&request) {
            assert_eq!(sealer.seal(&digest), key.seal(&digest));
        }
        assert_eq!(sealer.kept(), 0, "each seal made ahead is taken once");
        assert_eq!(sealer.made_at_write(), 0);
        sealer.seal(&digests(&request)[0]);
        assert_eq!(sealer.made_at_write(), 1, "a second ask signs anew");
    }

    #[test]
    fn a_large_command_is_sealed_at_the_write_only() {
        let sealer = Sealer::new(SignerKey::generate("trellis.test/seal").expect("a key"));
        sealer.seal_ahead(&request(MAX_EVENTS_AHEAD + 1));
        assert_eq!(sealer.kept(), 0);
        sealer.seal_ahead(&request(MAX_EVENTS_AHEAD));
        assert_eq!(sealer.kept(), MAX_EVENTS_AHEAD);
    }
}
