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

/// Seals the events of one write with one signature: each slot is an
/// event's content digest and the place its seal goes, in the write's order.
/// Both stores seal through here; nothing happens when the store has no key.
pub(crate) fn seal_write<'a>(
    key: Option<&SignerKey>,
    slots: impl IntoIterator<Item = (&'a [u8; 32], &'a mut Option<Vec<u8>>)>,
) {
    let Some(key) = key else {
        return;
    };
    let (digests, places): (Vec<[u8; 32]>, Vec<&mut Option<Vec<u8>>>) = slots
        .into_iter()
        .map(|(digest, place)| (*digest, place))
        .unzip();
    for (place, seal) in places.into_iter().zip(key.seal_all(&digests)) {
        *place = Some(seal);
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
            let mut seals = vec![None; n];
            seal_write(Some(&key), digests.iter().zip(seals.iter_mut()));
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
        let mut unsealed = vec![None; 3];
        seal_write(None, [[0; 32]; 3].iter().zip(unsealed.iter_mut()));
        assert_eq!(unsealed, vec![None, None, None]);
    }
}
