//! What each person recorded lately through the forms, so that a form sent
//! a second time with the same content asks before it records twice.
//!
//! A form's idempotency key makes a double click record once. The browser's
//! Back does not keep it: the form comes again from the server, with a new
//! key, and the browser fills in what was typed. Sent again, it would be a
//! second feedback, a second coaching session, a second support request.
//! So a form whose person, method, path and body are those of one that made
//! a new record in the last [`WINDOW_SECS`] records nothing and says when
//! the first was recorded. Sent once more (the same form, whose key is now
//! known), it records: two identical records may be meant. A change (a
//! rep's role, their team) sent twice is not asked about: the second time
//! it is so already, and the write API says that.
//!
//! Kept in this process's memory, as digests of what was sent (no text),
//! keyed with a secret drawn when the process starts, so that a dump of the
//! memory does not let anyone test guesses of what was written; at most
//! [`CAPACITY`] of them. Behind a load balancer that sends one
//! person to several processes, a form sent again to another process is
//! not asked about.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// How long a recorded form is remembered: long enough for Back and Send.
pub(crate) const WINDOW_SECS: i64 = 30 * 60;

/// The most forms remembered at once.
const CAPACITY: usize = 4096;

/// One person's request to the write API, as a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The digest of who sent what where, keyed with `key`: `who` (the
    /// person), the method, the path and the body, each length-prefixed so
    /// no two split alike.
    pub(crate) fn of(key: &[u8; 32], who: &str, method: &str, path: &str, body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(key);
        for part in [who.as_bytes(), method.as_bytes(), path.as_bytes(), body] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Fingerprint(hash.finalize().into())
    }
}

#[derive(Debug)]
struct Entry {
    /// When it was recorded, in seconds since the epoch.
    at: i64,
    /// The idempotency key it was recorded under.
    key: String,
    /// The key of a form that was asked about it: sent again, it records.
    asked: Option<String>,
}

/// The forms recorded lately, by [`Fingerprint`].
#[derive(Debug)]
pub(crate) struct Sent {
    /// The secret the digests are keyed with, drawn at start.
    key: [u8; 32],
    entries: Mutex<HashMap<Fingerprint, Entry>>,
}

impl Default for Sent {
    fn default() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Sent {
            key,
            entries: Mutex::default(),
        }
    }
}

impl Sent {
    /// The digest of a request under this process's key ([`Fingerprint::of`]).
    pub(crate) fn print(&self, who: &str, method: &str, path: &str, body: &[u8]) -> Fingerprint {
        Fingerprint::of(&self.key, who, method, path, body)
    }

    /// Whether a form sent now under `key` repeats one recorded lately:
    /// when it was recorded, if so. A form is asked about once: the same
    /// form sent again goes through, and so does the very request that was
    /// recorded (a double click, which the write API answers as replayed).
    pub(crate) fn repeats(&self, print: Fingerprint, key: &str, now: i64) -> Option<i64> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(&print)?;
        if now - entry.at > WINDOW_SECS || entry.key == key || entry.asked.as_deref() == Some(key) {
            return None;
        }
        entry.asked = Some(key.to_owned());
        Some(entry.at)
    }

    /// Remembers that the form `print` was recorded under `key` at `now`.
    pub(crate) fn recorded(&self, print: Fingerprint, key: &str, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| now - e.at <= WINDOW_SECS);
        }
        if entries.len() >= CAPACITY
            && let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.at).map(|(p, _)| *p)
        {
            entries.remove(&oldest);
        }
        entries.insert(
            print,
            Entry {
                at: now,
                key: key.to_owned(),
                asked: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn print(body: &str) -> Fingerprint {
        Fingerprint::of(
            &KEY,
            "leader-1",
            "POST",
            "/v1/reps/r/feedback",
            body.as_bytes(),
        )
    }

    #[test]
    fn a_form_sent_again_with_a_new_key_is_asked_about_once() {
        let sent = Sent::default();
        assert_eq!(sent.repeats(print("a"), "k1", 100), None);
        sent.recorded(print("a"), "k1", 100);
        // The double click: the same key, which the API replays.
        assert_eq!(sent.repeats(print("a"), "k1", 101), None);
        // Back, then Send: a new key for the same content.
        assert_eq!(sent.repeats(print("a"), "k2", 160), Some(100));
        // The same form sent once more records.
        assert_eq!(sent.repeats(print("a"), "k2", 170), None);
        // Another form with other content is not asked about.
        assert_eq!(sent.repeats(print("b"), "k3", 170), None);
    }

    #[test]
    fn who_sent_it_where_and_when_all_count() {
        let sent = Sent::default();
        sent.recorded(print("a"), "k1", 100);
        let other_person = Fingerprint::of(&KEY, "leader-2", "POST", "/v1/reps/r/feedback", b"a");
        let other_rep = Fingerprint::of(&KEY, "leader-1", "POST", "/v1/reps/s/feedback", b"a");
        assert_eq!(sent.repeats(other_person, "k2", 110), None);
        assert_eq!(sent.repeats(other_rep, "k2", 110), None);
        assert_eq!(sent.repeats(print("a"), "k2", 100 + WINDOW_SECS + 1), None);
        // Parts split differently are other requests.
        assert_ne!(
            Fingerprint::of(&KEY, "ab", "POST", "/p", b""),
            Fingerprint::of(&KEY, "a", "bPOST", "/p", b"")
        );
        // Another process's key, another digest.
        assert_ne!(
            Fingerprint::of(&[8; 32], "leader-1", "POST", "/v1/reps/r/feedback", b"a"),
            print("a")
        );
    }

    #[test]
    fn it_keeps_at_most_its_capacity_dropping_the_oldest() {
        let sent = Sent::default();
        // All within the window: the oldest goes, not the expired.
        sent.recorded(print("0"), "k", 0);
        for n in 1..CAPACITY as i64 + 1 {
            sent.recorded(print(&n.to_string()), "k", 1 + n / 4);
        }
        let entries = sent.entries.lock().unwrap();
        assert_eq!(entries.len(), CAPACITY);
        assert!(!entries.contains_key(&print("0")));
        assert!(entries.contains_key(&print(&CAPACITY.to_string())));
    }
}
