//! What a projection is: a pure, deterministic fold over the global log whose
//! state is a set of JSON documents.

use std::any::Any;

use chrono::{DateTime, Utc};
use trellis_domain::Event;
use trellis_eventstore::RecordedEvent;
use uuid::Uuid;

use crate::Error;

/// One decoded event as a projection sees it: the domain event and the log's
/// facts about it. Deliberately without the global position: positions differ
/// between backends and between a log and its copy, documents must not.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub event: Event,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub actor: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Recorded time.
    pub recorded_at: DateTime<Utc>,
}

impl Envelope {
    /// Decodes a stored event (upcasting old schema versions).
    pub fn decode(recorded: &RecordedEvent) -> Result<Envelope, Error> {
        let event = Event::from_stored_ref(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        );
        Self::with_event(recorded, event)
    }

    /// [`Envelope::decode`] taking the payload rather than copying it (a
    /// reader that keeps only the decoded event).
    pub fn decode_owned(mut recorded: RecordedEvent) -> Result<Envelope, Error> {
        let payload = std::mem::take(&mut recorded.payload);
        let event = Event::from_stored(&recorded.event_type, recorded.schema_version, payload);
        Self::with_event(&recorded, event)
    }

    /// [`Envelope::decode`] for an event read with its payload as JSON text
    /// ([`trellis_eventstore::EventStore::read_all_json`]): the payload is
    /// decoded straight into the domain event, the engine's hot path.
    pub fn decode_json(recorded: &RecordedEvent<String>) -> Result<Envelope, Error> {
        let event = Event::from_stored_json(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        );
        Self::with_event(recorded, event)
    }

    fn with_event<P>(
        recorded: &RecordedEvent<P>,
        event: Result<Event, trellis_domain::DecodeError>,
    ) -> Result<Envelope, Error> {
        let event = event.map_err(|e| Error::Decode {
            position: recorded.global_position,
            reason: e.to_string(),
        })?;
        Ok(Envelope {
            event,
            event_id: recorded.event_id,
            stream_id: recorded.stream_id.as_str().to_owned(),
            stream_version: recorded.stream_version,
            actor: recorded.metadata.actor.clone(),
            occurred_at: recorded.metadata.occurred_at,
            recorded_at: recorded.metadata.recorded_at,
        })
    }

    /// The entity id of the stream (`rep-<uuid>` → the uuid), if it has one.
    pub fn stream_uuid(&self) -> Option<Uuid> {
        trellis_eventstore::entity_uuid(&self.stream_id)
    }
}

/// A document a batch wrote (`Some`) or removed (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct DocChange {
    /// The kind of document, e.g. `rep_profile`; a read model's table of rows.
    pub kind: &'static str,
    /// The document's key within its kind, e.g. a rep id.
    pub key: String,
    /// The document as JSON text, serialized straight from its struct (keys
    /// in declaration order; documents are large, and a detour through
    /// `serde_json::Value` doubled the cost of writing them). PostgreSQL
    /// keeps it as written (`json`, checked to be JSON); the embedded file
    /// keeps the text of the equivalent `serde_json::Value` (sorted keys).
    pub doc: Option<String>,
}

/// A projection: a fold over the log into documents.
///
/// # Rules
/// - `apply` is pure and deterministic: no I/O, no clock, no randomness, no
///   iteration over hash maps. Time comes from the events.
/// - The state must be fully recoverable from the documents of the kinds in
///   [`Projection::state_kinds`] (restored after a restart), so that folding
///   from a restored state gives the same documents as folding on.
/// - The documents written must not depend on how the log was cut into
///   batches: [`Projection::take_changes`] derives them from the state alone.
/// - A projection that says it is [`Projection::shardable`] must give the
///   same documents when a rebuild folds it in shards (see there).
pub trait Projection: Any + Send + Sync {
    /// The stable name, used as the `model` column and by `trellis replay --projection`.
    fn name(&self) -> &'static str;

    /// Changes whenever the documents this code writes would differ from
    /// what older code wrote (a new field, a fixed rule, a setting such as
    /// the quality gate's N). A runner that finds the active generation built
    /// with another fingerprint rebuilds it.
    fn fingerprint(&self) -> String;

    /// An empty instance with the same settings.
    fn fresh(&self) -> Box<dyn Projection>;

    /// The document kinds the fold reads back on restart; other kinds are
    /// outputs only.
    fn state_kinds(&self) -> &'static [&'static str];

    /// Restores one document of a state kind, from its JSON text.
    fn restore(&mut self, kind: &str, key: &str, doc: &str) -> Result<(), String>;

    /// Folds one event.
    fn apply(&mut self, event: &Envelope);

    /// The documents changed since the last call, in (kind, key) order.
    fn take_changes(&mut self) -> Vec<DocChange>;

    /// How many entities' documents the next [`Projection::take_changes`]
    /// derives (each rep's, say): what bounds the memory of a commit. The
    /// default says nothing waits, so a batch is never split.
    fn pending(&self) -> usize {
        0
    }

    /// The same documents as [`Projection::take_changes`], handed out in
    /// parts for bulk writes (a rebuild flushing everything it folded):
    /// each call derives the documents of about `limit` entities and says
    /// whether more remain. Calling it until it answers `false` gives the
    /// very documents one `take_changes` would have. The default hands out
    /// everything at once.
    fn take_changes_part(&mut self, limit: usize) -> (Vec<DocChange>, bool) {
        let _ = limit;
        (self.take_changes(), false)
    }

    /// Whether a rebuild may fold this projection in shards, on several
    /// threads at once. A shardable projection promises that this gives the
    /// very documents of one fold over the whole log:
    ///
    /// 1. each shard, a [`Projection::fresh`] instance, folds in log order
    ///    the events [`Projection::route`] sends it: those routed to it and
    ///    every [`Route::Every`] event;
    /// 2. each shard hands out the documents of its own entities
    ///    ([`Projection::take_own_part`] until it answers `false`);
    /// 3. the first shard [`Projection::merge`]s every other one, then
    ///    [`Projection::take_changes`] gives the documents the shards share.
    ///
    /// The default is `false`: the rebuild folds on one thread.
    fn shardable(&self) -> bool {
        false
    }

    /// Where a sharded rebuild sends `event` (asked of the template, for
    /// every event, in log order; only when [`Projection::shardable`]).
    fn route(&self, event: &Envelope) -> Route {
        let _ = event;
        Route::Every
    }

    /// A shard's documents of the entities that are its own, in parts as
    /// [`Projection::take_changes_part`], leaving out the documents every
    /// shard contributes to: those come from [`Projection::take_changes`]
    /// once the shards are merged.
    fn take_own_part(&mut self, limit: usize) -> (Vec<DocChange>, bool) {
        self.take_changes_part(limit)
    }

    /// Takes in what another shard (of the same projection, its own
    /// documents already taken) contributes to the shared documents.
    fn merge(&mut self, shard: Box<dyn Projection>) -> Result<(), String> {
        let _ = shard;
        Err(format!("{} cannot be folded in shards", self.name()))
    }
}

/// Where a sharded rebuild sends an event ([`Projection::route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To the one shard that owns the entity the event is about, by a hash
    /// of its id: no other shard's documents depend on it.
    Shard(u64),
    /// To every shard, in log order: what every entity is judged against
    /// (e.g. the catalogue of standards).
    Every,
    /// To no shard: the fold ignores it.
    Skip,
}
