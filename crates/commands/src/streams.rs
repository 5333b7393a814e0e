//! Reading one stream of the log from a version on, page by page: the one
//! loop every reader of a single stream in the process uses (the write path
//! folding an aggregate, the read API's time travel, audit trail and review
//! packet, the dashboard's timeline and audit pages), so where a read starts,
//! when it stops and how a failure surfaces are decided in one place.

use trellis_domain::rep::RepEvent;
use trellis_domain::{Event, RepId};
use trellis_eventstore::{EventStore, RecordedEvent, StreamId};

/// Events per read of a stream, unless the caller picks another size.
pub const PAGE: usize = 1_000;

/// Calls `each` with every event of `stream` whose version is greater than
/// `after`, in version order, reading `page` events at a time. Returns the
/// last version read (`after` when there was nothing new). Stops at the
/// first error, from the store or from `each`.
pub async fn read_after<E>(
    store: &dyn EventStore,
    stream: &StreamId,
    after: u64,
    page: usize,
    mut each: impl FnMut(RecordedEvent) -> Result<(), E>,
) -> Result<u64, E>
where
    E: From<trellis_eventstore::Error>,
{
    let page = page.max(1);
    let mut after = after;
    loop {
        let batch = store.read_stream(stream, after, page).await?;
        let Some(last) = batch.last() else {
            return Ok(after);
        };
        after = last.stream_version;
        let full = batch.len() == page;
        for event in batch {
            each(event)?;
        }
        if !full {
            return Ok(after);
        }
    }
}

/// The rep's stream id, `rep-<uuid>`.
pub fn rep_stream(rep_id: RepId) -> Result<StreamId, trellis_eventstore::Error> {
    // A UUID always makes a valid stream id; should that ever change, this
    // is the service's fault, not the caller's.
    StreamId::new(rep_id.stream_id())
        .map_err(|e| trellis_eventstore::Error::Internal(e.to_string()))
}

/// [`read_after`] over the rep's stream.
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
    read_after(store, &rep_stream(rep_id)?, after, page, each).await
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
