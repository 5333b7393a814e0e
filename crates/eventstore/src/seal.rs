//! Sealing appended events: one signature for each write.
//!
//! A store that seals signs what it writes with the service's key
//! ([`SignerKey::seal_all`]). An Ed25519 signature costs about 18 µs, and a
//! group commit's batch of eight one-event commands used to pay for eight of
//! them, on the two cores its next commands were being made on. Now the
//! batch's digests go into a small Merkle tree whose root is signed once,
//! and each event's seal carries its path to that root (ADR 8).
//!
//! A store seals after every command of the write has its digest and before
//! it takes its connection (PostgreSQL) or the file's writer (the embedded
//! store), so the signature is never made while the log is held.

use crate::chain::DigestInput;
use crate::note::SignerKey;
use crate::types::{CommandMeta, NewEvent, StreamId, to_micros_precision};

/// The seals of `digests`, one per digest in order, or `None` for each
/// when the store has no key.
pub(crate) fn seals_for(key: Option<&SignerKey>, digests: &[[u8; 32]]) -> Vec<Option<Vec<u8>>> {
    match key {
        Some(key) => key.seal_all(digests).into_iter().map(Some).collect(),
        None => vec![None; digests.len()],
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
    use crate::note::seal_verifies;

    #[test]
    fn a_write_s_seals_verify_for_their_own_digests_only() {
        let key = SignerKey::generate("trellis.test/seal").expect("a key");
        for n in [1usize, 2, 3, 7, 8, 9, 64] {
            let digests: Vec<[u8; 32]> = (0..n).map(|i| [i as u8; 32]).collect();
            let seals = seals_for(Some(&key), &digests);
            assert_eq!(seals.len(), n);
            for (i, seal) in seals.iter().enumerate() {
                let seal = seal.as_deref().expect("sealed");
                assert!(
                    seal_verifies(&[key.verifier()], &digests[i], seal),
                    "seal {i} of {n}"
                );
                let other = [(i + 1) as u8; 32];
                assert!(
                    !seal_verifies(&[key.verifier()], &other, seal),
                    "seal {i} of {n} vouched for another digest"
                );
            }
        }
        assert_eq!(seals_for(None, &[[0; 32]; 3]), vec![None, None, None]);
    }
}
