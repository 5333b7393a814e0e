//! Reading and decoding a rep's stream: the one place the read side (the
//! read API and the dashboard) reads a rep's history from the log.
//!
//! Decoded streams are kept in a bounded [`StreamCache`]: the log is
//! append-only, so a later query reads only what was appended since
//! (usually nothing) and folds the rest from memory — a 10,000-event history
//! is a fold of a few milliseconds, not a re-read of the stream.
//! [`readable_stream`] is how every read about one rep starts: the checks
//! that need nothing loaded, then the stream, then who may read it.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use trellis_domain::rep::RepEvent;
use trellis_domain::{Event, RepId, TeamId};
use trellis_eventstore::{EventStore, RecordedEvent, StreamId, scan_streams_after};
use trellis_http::auth::Claims;
use trellis_http::problem::ApiError;
use trellis_projections::projection::Envelope;

use crate::access::{self, View};

/// Events per read of a stream.
pub const PAGE: usize = 2_000;

/// The rep's stream id, `rep-<uuid>`.
pub fn rep_stream(rep_id: RepId) -> Result<StreamId, trellis_eventstore::Error> {
    // A UUID always makes a valid stream id; should that ever change, this
    // is the service's fault, not the caller's.
    StreamId::new(rep_id.stream_id())
        .map_err(|e| trellis_eventstore::Error::Internal(e.to_string()))
}

/// Calls `each` with every event of the rep's stream after version `after`,
/// in order, `page` at a time ([`trellis_eventstore::read_stream_after`]).
pub async fn read_rep_stream<E>(
    store: &dyn EventStore,
    rep_id: RepId,
    after: u64,
    page: usize,
    each: impl FnMut(RecordedEvent) -> Result<(), E>,
) -> Result<u64, E>
where
    E: From<trellis_eventstore::Error>,
{
    trellis_eventstore::read_stream_after(store, &rep_stream(rep_id)?, after, page, each).await
}

/// Every event of the rep's stream, as stored, oldest first.
pub async fn rep_events(
    store: &dyn EventStore,
    rep_id: RepId,
) -> Result<Vec<RecordedEvent>, trellis_eventstore::Error> {
    let mut events = vec![];
    read_rep_stream(store, rep_id, 0, trellis_eventstore::STREAM_PAGE, |e| {
        events.push(e);
        Ok::<_, trellis_eventstore::Error>(())
    })
    .await?;
    Ok(events)
}

/// Each stored event of a rep's stream decoded (upcast to the current
/// schema), in order: `None` for one that is not a rep event or does not
/// decode, so the result lines up with `events` index for index.
pub fn decode_rep_events(events: &[RecordedEvent]) -> Vec<Option<RepEvent>> {
    events
        .iter()
        .map(
            |e| match Event::from_stored_ref(&e.event_type, e.schema_version, &e.payload) {
                Ok(Event::Rep(event)) => Some(event),
                _ => None,
            },
        )
        .collect()
}

/// Decodes a stored event into what a projection folds, taking its payload
/// (upcasting old schema versions).
pub fn envelope(recorded: RecordedEvent) -> Result<Envelope, ApiError> {
    Envelope::decode_owned(recorded).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Every event of every stream of `category` (e.g. `standard`), stream by
/// stream. The catalogue categories are small.
pub async fn category_events(
    store: &dyn EventStore,
    category: &str,
) -> Result<Vec<RecordedEvent>, ApiError> {
    let first = StreamId::new(category).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut out = Vec::new();
    scan_streams_after(store, Some((first, 0)), PAGE, |event| {
        if event.stream_id.category() != category {
            return Ok::<_, ApiError>(ControlFlow::Break(()));
        }
        out.push(event);
        Ok(ControlFlow::Continue(()))
    })
    .await?;
    Ok(out)
}

/// A rep's stream, decoded.
#[derive(Debug, Default)]
pub struct RepStream {
    /// The version of the last event held.
    pub version: u64,
    /// The rep's team after the last event held.
    pub team: Option<TeamId>,
    chunks: Vec<Arc<[Envelope]>>,
    len: usize,
}

impl RepStream {
    /// The events, in version order.
    pub fn events(&self) -> impl Iterator<Item = &Envelope> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

/// Decoded rep streams, kept between queries. The log is append-only, so
/// what was read once never changes: a query reads only the events appended
/// since (usually none) and folds the rest from memory. Bounded by a number
/// of events; the least recently used streams go first.
#[derive(Debug)]
pub struct StreamCache {
    max_events: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    tick: u64,
    events: usize,
    streams: HashMap<RepId, (u64, Arc<RepStream>)>,
}

/// Chunks a cached stream may grow to before it is compacted into one.
const MAX_CHUNKS: usize = 32;

impl Default for StreamCache {
    fn default() -> Self {
        StreamCache::new(250_000)
    }
}

impl StreamCache {
    /// A cache of at most `max_events` decoded events (0: no caching).
    pub fn new(max_events: usize) -> Self {
        StreamCache {
            max_events,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, rep_id: RepId) -> Option<Arc<RepStream>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner.streams.get_mut(&rep_id).map(|(used, stream)| {
            *used = tick;
            stream.clone()
        })
    }

    fn put(&self, rep_id: RepId, stream: Arc<RepStream>) {
        if stream.len > self.max_events {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((_, old)) = inner.streams.insert(rep_id, (tick, stream.clone())) {
            inner.events -= old.len;
        }
        inner.events += stream.len;
        while inner.events > self.max_events {
            let Some(oldest) = inner
                .streams
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((_, gone)) = inner.streams.remove(&oldest) {
                inner.events -= gone.len;
            }
        }
    }

    fn forget(&self, rep_id: RepId) {
        let mut inner = self.lock();
        if let Some((_, gone)) = inner.streams.remove(&rep_id) {
            inner.events -= gone.len;
        }
    }

    /// The rep's stream: what is cached, and whatever was appended since.
    pub async fn load(
        &self,
        store: &dyn EventStore,
        rep_id: RepId,
    ) -> Result<Arc<RepStream>, ApiError> {
        let cached = self.get(rep_id).unwrap_or_default();
        let mut team = cached.team;
        let mut new = Vec::new();
        let mut erased = false;
        let version = read_rep_stream(store, rep_id, cached.version, PAGE, |event| {
            let envelope = envelope(event)?;
            match &envelope.event {
                Event::Rep(RepEvent::Joined(e)) if team.is_none() => team = Some(e.team_id),
                Event::Rep(RepEvent::MovedTeam(e)) => team = Some(e.to),
                Event::Rep(RepEvent::PersonalDataErased(_)) => erased = true,
                _ => {}
            }
            new.push(envelope);
            Ok::<_, ApiError>(())
        })
        .await?;
        if new.is_empty() {
            return Ok(cached);
        }
        if erased && cached.version > 0 {
            // What is cached was decrypted before the rep's key was
            // destroyed: read the whole stream again, as erased.
            self.forget(rep_id);
            return Box::pin(self.load(store, rep_id)).await;
        }
        let mut chunks = cached.chunks.clone();
        chunks.push(new.into());
        if chunks.len() > MAX_CHUNKS {
            let all: Vec<Envelope> = chunks.iter().flat_map(|c| c.iter().cloned()).collect();
            chunks = vec![all.into()];
        }
        let stream = Arc::new(RepStream {
            version,
            team,
            len: chunks.iter().map(|c| c.len()).sum(),
            chunks,
        });
        self.put(rep_id, stream.clone());
        Ok(stream)
    }
}

/// A rep's decoded stream for `claims`, and how much of it they see: the
/// checks that need nothing loaded first (so nothing leaks about another
/// rep's existence), then the stream through `cache`, then the rule for the
/// rep's current team. 404 when there is no such rep.
pub async fn readable_stream(
    store: &dyn EventStore,
    cache: &StreamCache,
    claims: &Claims,
    rep_id: RepId,
) -> Result<(Arc<RepStream>, View), ApiError> {
    access::rep_precheck(claims, rep_id)?;
    let stream = cache.load(store, rep_id).await?;
    let team = stream
        .team
        .ok_or_else(|| ApiError::NotFound(format!("no rep {rep_id}")))?;
    let view = access::rep_read(claims, rep_id, team)?;
    Ok((stream, view))
}
