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
///
/// It is bounded twice: by how many states it keeps, and by how many events
/// those states were folded from in all, since a state grows with its
/// history (a rep's facts, measurements and feedback): two years of a
/// 5,000-rep organisation kept by count alone held gigabytes.
#[derive(Debug)]
pub struct StateCache {
    entries: Mutex<Entries>,
    capacity: usize,
    max_events: u64,
}

#[derive(Debug, Default)]
struct Entries {
    by_stream: HashMap<StreamId, Entry>,
    /// The sum of the kept states' versions: the events they hold.
    events: u64,
}

impl Entries {
    fn remove(&mut self, stream: &StreamId) -> Option<Entry> {
        let entry = self.by_stream.remove(stream)?;
        self.events -= entry.version;
        Some(entry)
    }
}

#[derive(Debug)]
struct Entry {
    version: u64,
    loaded_at: Instant,
    state: Box<dyn Any + Send + Sync>,
}

impl StateCache {
    /// An empty cache of at most `capacity` states, folded from at most
    /// `max_events` events in all.
    pub fn new(capacity: usize, max_events: u64) -> Self {
        StateCache {
            entries: Mutex::new(Entries::default()),
            capacity: capacity.max(1),
            max_events,
        }
    }

    /// How many states are kept, and from how many events they were folded.
    pub fn size(&self) -> (usize, u64) {
        let entries = self.lock();
        (entries.by_stream.len(), entries.events)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
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
            .by_stream
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
        if entries
            .by_stream
            .get(stream)
            .is_some_and(|e| e.version > version)
        {
            // Never replace a newer state with an older one.
            return;
        }
        entries.remove(stream);
        if version > self.max_events {
            // Larger than the whole cache: read again each time.
            return;
        }
        // Evict arbitrary entries until it fits: a miss only costs one full read.
        while entries.by_stream.len() >= self.capacity || entries.events + version > self.max_events
        {
            let Some(key) = entries.by_stream.keys().next().cloned() else {
                break;
            };
            entries.remove(&key);
        }
        entries.events += version;
        entries.by_stream.insert(
            stream.clone(),
            Entry {
                version,
                loaded_at: Instant::now(),
                state: Box::new(state),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::StateCache;
    use trellis_eventstore::StreamId;

    fn stream(n: u32) -> StreamId {
        StreamId::new(format!("rep-{n}")).unwrap()
    }

    #[test]
    fn the_cache_keeps_under_its_count_and_its_event_budget() {
        let cache = StateCache::new(3, 100);
        for n in 0..10 {
            cache.put(&stream(n), 30, n);
            let (count, events) = cache.size();
            assert!(
                count <= 3 && events <= 100,
                "{count} states of {events} events"
            );
        }
        // Three of 30 fit the budget of 100; a fourth would not.
        assert_eq!(cache.size(), (3, 90));
        cache.put(&stream(99), 60, 99u32);
        let (count, events) = cache.size();
        assert!(events <= 100, "{events}");
        assert!(count <= 2, "{count}");
        let kept = cache.take::<u32>(&stream(99)).expect("the newest is kept");
        assert_eq!((kept.state, kept.version), (99, 60));
        assert_eq!(cache.size().1, events - 60, "taking gives the events back");
    }

    #[test]
    fn a_state_larger_than_the_budget_is_not_kept_and_a_newer_one_replaces_an_older() {
        let cache = StateCache::new(10, 100);
        cache.put(&stream(1), 101, 1u32);
        assert_eq!(cache.size(), (0, 0));
        cache.put(&stream(1), 5, 5u32);
        cache.put(&stream(1), 4, 4u32);
        cache.put(&stream(1), 7, 7u32);
        assert_eq!(cache.size(), (1, 7));
        let kept = cache.take::<u32>(&stream(1)).unwrap();
        assert_eq!((kept.state, kept.version), (7, 7));
    }
}
