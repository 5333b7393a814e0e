//! One recorded event as one NATS message: subject, headers, body.
//!
//! The subject grammar, the CloudEvents type and the content type come from
//! `trellis-contracts`, so publishers and subscribers share one definition.

use async_nats::{HeaderMap, HeaderValue, Subject};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use prost::Message as _;
use trellis_contracts::CONTENT_TYPE;
use trellis_eventstore::{Checkpoint, RecordedEvent, StreamId};
use uuid::Uuid;

use crate::relay::RelayError;

/// JetStream drops a message whose id it has seen within the duplicate window.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// JetStream refuses a message unless the stream's last message has this id.
pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";

/// The subject of an event: [`trellis_contracts::subject`] with its
/// `trellis.events` prefix replaced by `prefix` (tests and side-by-side
/// deployments use their own prefix; production uses the default).
pub fn subject<P>(prefix: &str, event: &RecordedEvent<P>) -> String {
    trellis_contracts::subject_under(prefix, event.stream_id.as_str(), &event.event_type)
}

/// The protobuf envelope of a recorded event (upcast to the current schema).
pub fn body(event: &RecordedEvent) -> Result<Bytes, RelayError> {
    let envelope =
        trellis_contracts::envelope_from_stored(event).map_err(|e| RelayError::Encode {
            event_id: event.event_id,
            reason: e.to_string(),
        })?;
    Ok(Bytes::from(envelope.encode_to_vec()))
}

mod names {
    use async_nats::header::HeaderName;
    pub const MSG_ID: HeaderName = HeaderName::from_static(super::MSG_ID);
    pub const EXPECTED_LAST_MSG_ID: HeaderName =
        HeaderName::from_static(super::EXPECTED_LAST_MSG_ID);
    pub const CE_SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
    pub const CE_ID: HeaderName = HeaderName::from_static("ce-id");
    pub const CE_SOURCE: HeaderName = HeaderName::from_static("ce-source");
    pub const CE_TYPE: HeaderName = HeaderName::from_static("ce-type");
    pub const CE_SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
    pub const CE_TIME: HeaderName = HeaderName::from_static("ce-time");
    pub const CONTENT_TYPE: HeaderName = HeaderName::from_static("Content-Type");
}

/// `Nats-Msg-Id`, the CloudEvents binary-mode attributes and the content type.
/// The relay adds [`EXPECTED_LAST_MSG_ID`] when it publishes.
pub fn headers<P>(event: &RecordedEvent<P>, source: &str) -> HeaderMap {
    let mut headers = constant_headers(source);
    add_event_headers(
        &mut headers,
        event.event_id,
        &event.event_type,
        event.stream_id.as_str(),
        event.metadata.recorded_at,
    );
    headers
}

/// The headers every message of a source carries.
fn constant_headers(source: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(names::CE_SPECVERSION, "1.0");
    headers.insert(names::CE_SOURCE, source);
    headers.insert(names::CONTENT_TYPE, CONTENT_TYPE);
    headers
}

fn add_event_headers(
    headers: &mut HeaderMap,
    event_id: Uuid,
    event_type: &str,
    stream_id: &str,
    recorded_at: DateTime<Utc>,
) {
    let mut buffer = Uuid::encode_buffer();
    // Checked once (the client checks every value it is given), copied for the second.
    let id = HeaderValue::from(&*event_id.hyphenated().encode_lower(&mut buffer));
    headers.insert(names::MSG_ID, id.clone());
    headers.insert(names::CE_ID, id);
    headers.insert(names::CE_TYPE, trellis_contracts::ce_type(event_type));
    headers.insert(names::CE_SUBJECT, stream_id);
    headers.insert(
        names::CE_TIME,
        recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    );
}

/// Encodes events into messages for one subject prefix and source.
///
/// Holds the headers every message shares, in a map already sized for all
/// of a message's headers: each message's map is a copy that never grows.
#[derive(Debug, Clone)]
pub struct Encoder {
    prefix: String,
    template: HeaderMap,
}

impl Encoder {
    pub fn new(prefix: impl Into<String>, source: impl Into<String>) -> Self {
        let source = source.into();
        // The per-event headers hold empty values (cloned without
        // allocating) until each message writes its own over them; with
        // all eight the map has room for the ninth, the expected last id.
        let mut template = constant_headers(&source);
        for name in [
            names::MSG_ID,
            names::CE_ID,
            names::CE_TYPE,
            names::CE_SUBJECT,
            names::CE_TIME,
        ] {
            template.insert(name, String::new());
        }
        Encoder {
            prefix: prefix.into(),
            template,
        }
    }

    /// Encodes an event read as JSON text ([`trellis_eventstore::EventStore::read_all_json`]),
    /// consuming it: this is the relay's hot path.
    pub fn encode(&self, event: RecordedEvent<String>) -> Result<Outgoing, RelayError> {
        let domain = trellis_domain::Event::from_stored_json(
            &event.event_type,
            event.schema_version,
            &event.payload,
        )
        .map_err(|e| RelayError::Encode {
            event_id: event.event_id,
            reason: e.to_string(),
        })?;
        let body = Bytes::from(trellis_contracts::envelope(&event, &domain).encode_to_vec());
        let mut headers = self.template.clone();
        add_event_headers(
            &mut headers,
            event.event_id,
            &event.event_type,
            event.stream_id.as_str(),
            event.metadata.recorded_at,
        );
        Ok(Outgoing {
            event_id: event.event_id,
            checkpoint: event.checkpoint,
            subject: Subject::from(subject(&self.prefix, &event)),
            body,
            headers: Some(headers),
            event_type: event.event_type,
            stream_id: event.stream_id,
            recorded_at: event.metadata.recorded_at,
        })
    }
}

/// One event, encoded and ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event_id: Uuid,
    /// Where the log stands once this event is acknowledged.
    pub checkpoint: Checkpoint,
    /// Cheap to clone (shared bytes): a retry publishes the same subject again.
    pub subject: Subject,
    pub body: Bytes,
    /// Built ahead of time, taken by the first publish; a retry rebuilds them.
    headers: Option<HeaderMap>,
    event_type: String,
    stream_id: StreamId,
    recorded_at: DateTime<Utc>,
}

impl Outgoing {
    /// The headers to publish with: ours, plus the id of the message that
    /// must be the stream's last one (the previous event in this chain).
    pub fn take_headers(&mut self, source: &str, previous: Option<Uuid>) -> HeaderMap {
        let mut headers = self.headers.take().unwrap_or_else(|| {
            let mut headers = constant_headers(source);
            add_event_headers(
                &mut headers,
                self.event_id,
                &self.event_type,
                self.stream_id.as_str(),
                self.recorded_at,
            );
            headers
        });
        if let Some(previous) = previous {
            let mut buffer = Uuid::encode_buffer();
            let previous: &str = previous.hyphenated().encode_lower(&mut buffer);
            headers.insert(names::EXPECTED_LAST_MSG_ID, previous);
        }
        headers
    }
}
