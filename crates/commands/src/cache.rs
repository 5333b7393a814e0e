//! Aggregate states this process has folded, kept between commands so a
//! command does not re-read a stream's whole history ([`StateCache`]).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use trellis_eventstore::StreamId;

/// An aggregate's state and the stream version it was folded from.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    pub state: S,
    pub version: u64,
}

/// What an aggregate's state must be to be cached between commands.
pub trait Cacheable: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Cacheable for T {}

/// Aggregate states this process has folded, by stream, so a command does
/// not re-read a stream's whole history. An entry may be stale (another
/// process appended): that is safe, because every append carries the version
/// the decision was made on, and a conflict reloads from the store.
///
/// A command takes its aggregate's state out (no copy of a long history) and
/// puts the new state back after its append; facts about other streams (a
/// competency's status) are peeked at and re-read when older than a second.
#[derive(Debug)]
pub struct StateCache {
    entries: Mutex<HashMap<StreamId, Entry>>,
    capacity: usize,
}

#[derive(Debug)]
struct Entry {
    version: u64,
    loaded_at: Instant,
    state: Box<dyn Any + Send + Sync>,
}

impl StateCache {
    /// An empty cache of at most `capacity` states.
    pub fn new(capacity: usize) -> Self {
        StateCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of `stream`, taken out (the caller puts the new one back).
    pub(crate) fn take<S: Cacheable>(&self, stream: &StreamId) -> Option<Loaded<S>> {
        let entry = self.lock().remove(stream)?;
        let state = entry.state.downcast::<S>().ok()?;
        Some(Loaded {
            state: *state,
            version: entry.version,
        })
    }

    /// A copy of the state of `stream`, if it was read in the last `max_age`.
    pub(crate) fn peek<S: Cacheable>(
        &self,
        stream: &StreamId,
        max_age: std::time::Duration,
    ) -> Option<Loaded<S>> {
        let entries = self.lock();
        let entry = entries
            .get(stream)
            .filter(|e| e.loaded_at.elapsed() <= max_age)?;
        let state = entry.state.downcast_ref::<S>()?.clone();
        Some(Loaded {
            state,
            version: entry.version,
        })
    }

    /// Keeps `state` as `stream` at `version`, unless a newer one is kept.
    pub(crate) fn put<S: Cacheable>(&self, stream: &StreamId, version: u64, state: S) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(stream) {
            // Evict an arbitrary entry: a miss only costs one full read.
            if let Some(key) = entries.keys().next().cloned() {
                entries.remove(&key);
            }
        }
        if entries.get(stream).is_some_and(|e| e.version > version) {
            // Never replace a newer state with an older one.
            return;
        }
        entries.insert(
            stream.clone(),
            Entry {
                version,
                loaded_at: Instant::now(),
                state: Box::new(state),
            },
        );
    }
}
