//! One recorded event as one NATS message: subject, headers, body.
//!
//! The subject grammar, the CloudEvents type and the content type come from
//! `trellis-contracts`, so publishers and subscribers share one definition.

use std::collections::HashMap;

use async_nats::{HeaderMap, HeaderValue, Subject};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use prost::Message as _;
use trellis_contracts::CONTENT_TYPE;
use trellis_eventstore::{Checkpoint, RecordedEvent, StreamId, TraceParent};
use uuid::Uuid;

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

/// A recorded event that cannot be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event_id} cannot be encoded: {reason}")]
pub struct EncodeError {
    pub event_id: uuid::Uuid,
    pub reason: String,
}

/// The protobuf envelope of a recorded event (upcast to the current schema).
pub fn body(event: &RecordedEvent) -> Result<Bytes, EncodeError> {
    let envelope = trellis_contracts::envelope_from_stored(event).map_err(|e| EncodeError {
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
    /// The CloudEvents distributed-tracing extension's attribute, in binary
    /// mode under its own name (no `ce-` prefix), as W3C Trace Context has it.
    pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    pub const CONTENT_TYPE: HeaderName = HeaderName::from_static("Content-Type");
}

/// `Nats-Msg-Id`, the CloudEvents binary-mode attributes and the content type,
/// and `traceparent` when the event was recorded with one.
/// The relay adds [`EXPECTED_LAST_MSG_ID`] when it publishes.
pub fn headers<P>(event: &RecordedEvent<P>, source: &str) -> HeaderMap {
    let mut headers = constant_headers(source);
    add_event_headers(
        &mut headers,
        id_value(event.event_id),
        HeaderValue::from(trellis_contracts::ce_type(&event.event_type)),
        event.stream_id.as_str(),
        event.metadata.recorded_at,
        event.metadata.traceparent.as_ref(),
    );
    headers
}

/// An event id as a header value (`Nats-Msg-Id`, `ce-id`,
/// `Nats-Expected-Last-Msg-Id`): lowercase, hyphenated.
fn id_value(event_id: Uuid) -> HeaderValue {
    HeaderValue::from(trellis_contracts::uuid_text(event_id))
}

/// The headers every message of a source carries.
fn constant_headers(source: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(names::CE_SPECVERSION, "1.0");
    headers.insert(names::CE_SOURCE, source);
    headers.insert(names::CONTENT_TYPE, CONTENT_TYPE);
    headers
}

/// The headers of one event. Values are taken as [`HeaderValue`]s, which
/// the client checked when they were made: a copy of one is not checked
/// again, and the relay copies each id and `ce-type` rather than remake it.
/// `traceparent`: the W3C trace context the event was recorded with, so a
/// subscriber continues the trace of the request that appended it.
fn add_event_headers(
    headers: &mut HeaderMap,
    id: HeaderValue,
    ce_type: HeaderValue,
    stream_id: &str,
    recorded_at: DateTime<Utc>,
    traceparent: Option<&TraceParent>,
) {
    headers.insert(names::MSG_ID, id.clone());
    headers.insert(names::CE_ID, id);
    headers.insert(names::CE_TYPE, ce_type);
    headers.insert(names::CE_SUBJECT, stream_id);
    headers.insert(names::CE_TIME, rfc3339_micros(recorded_at));
    if let Some(traceparent) = traceparent {
        headers.insert(names::TRACEPARENT, traceparent.as_str());
    }
}

/// `at` in RFC 3339, UTC, with microseconds (`2026-03-02T09:30:00.250000Z`):
/// what `to_rfc3339_opts(SecondsFormat::Micros, true)` writes, without the
/// formatting machinery, which cost the encoder several times as much.
fn rfc3339_micros(at: DateTime<Utc>) -> String {
    use chrono::{Datelike as _, Timelike as _};
    // One conversion, not one per field.
    let (date, time) = (at.date_naive(), at.time());
    let (year, nanos) = (date.year(), time.nanosecond());
    // Years of other than four digits, and leap seconds: chrono's own way.
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let fields = [
        (0, year.unsigned_abs(), 4),
        (5, date.month(), 2),
        (8, date.day(), 2),
        (11, time.hour(), 2),
        (14, time.minute(), 2),
        (17, time.second(), 2),
        (20, nanos / 1_000, 6),
    ];
    for (start, mut value, digits) in fields {
        for i in (start..start + digits).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from(std::str::from_utf8(&text).expect("ASCII digits and separators"))
}

/// Encodes events into messages for one subject prefix and source.
///
/// Holds the headers every message shares, in a map already sized for all
/// of a message's headers: each message's map is a copy that never grows.
#[derive(Debug, Clone)]
pub struct Encoder {
    prefix: String,
    template: HeaderMap,
    /// The `ce-type` of every event type this build knows, by event type.
    ce_types: HashMap<&'static str, HeaderValue>,
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
        let ce_types = trellis_domain::Event::types()
            .map(|(event_type, _)| {
                let ce_type = trellis_contracts::ce_type(event_type);
                (event_type, HeaderValue::from(ce_type))
            })
            .collect();
        Encoder {
            prefix: prefix.into(),
            template,
            ce_types,
        }
    }

    /// Encodes an event read as JSON text ([`trellis_eventstore::EventStore::read_all_json`]),
    /// consuming it: this is the relay's hot path.
    pub fn encode(&self, event: RecordedEvent<String>) -> Result<Outgoing, EncodeError> {
        let domain = trellis_domain::Event::from_stored_json(
            &event.event_type,
            event.schema_version,
            &event.payload,
        )
        .map_err(|e| EncodeError {
            event_id: event.event_id,
            reason: e.to_string(),
        })?;
        let body = Bytes::from(trellis_contracts::envelope(&event, &domain).encode_to_vec());
        let id = id_value(event.event_id);
        // Every type the domain decodes is in the table.
        let ce_type = match self.ce_types.get(domain.event_type()) {
            Some(ce_type) => ce_type.clone(),
            None => HeaderValue::from(trellis_contracts::ce_type(&event.event_type)),
        };
        let mut headers = self.template.clone();
        add_event_headers(
            &mut headers,
            id.clone(),
            ce_type,
            event.stream_id.as_str(),
            event.metadata.recorded_at,
            event.metadata.traceparent.as_ref(),
        );
        Ok(Outgoing {
            event_id: event.event_id,
            id,
            checkpoint: event.checkpoint,
            subject: Subject::from(subject(&self.prefix, &event)),
            body,
            headers: Some(headers),
            event_type: event.event_type,
            stream_id: event.stream_id,
            recorded_at: event.metadata.recorded_at,
            traceparent: event.metadata.traceparent,
        })
    }
}

/// The messages an erasure obliges the relay to delete from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// Every message about the erased rep but the last (the erasure
    /// itself): `<prefix>.rep.<id>.*`.
    Entity(String),
    /// Every team's `LeaderAssigned` naming this leader (their name is its
    /// personal data); the teams' other messages stay.
    LeaderNamed(Uuid),
}

/// One event, encoded and ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event_id: Uuid,
    /// `event_id` as a header value.
    id: HeaderValue,
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
    traceparent: Option<TraceParent>,
}

impl Outgoing {
    /// What publishing this event obliges the relay to delete, when it
    /// erases a person's personal data ([`Erasure`]).
    pub fn erasure(&self) -> Option<Erasure> {
        let person =
            trellis_domain::event::erased_person(self.stream_id.as_str(), &self.event_type)?;
        if self.stream_id.category() == trellis_domain::leader::LeaderEvent::CATEGORY {
            return Some(Erasure::LeaderNamed(person));
        }
        let (entity, _) = self.subject.as_str().rsplit_once('.')?;
        Some(Erasure::Entity(format!("{entity}.*")))
    }

    /// This event's message id, to name it as the previous message of the
    /// next one ([`Outgoing::take_headers`]).
    pub fn msg_id(&self) -> MsgId {
        MsgId(self.id.clone())
    }

    /// The headers to publish with: ours, plus the id of the message that
    /// must be the stream's last one (the previous event in this chain).
    pub fn take_headers(&mut self, source: &str, previous: Option<MsgId>) -> HeaderMap {
        let mut headers = self.headers.take().unwrap_or_else(|| {
            let mut headers = constant_headers(source);
            add_event_headers(
                &mut headers,
                self.id.clone(),
                HeaderValue::from(trellis_contracts::ce_type(&self.event_type)),
                self.stream_id.as_str(),
                self.recorded_at,
                self.traceparent.as_ref(),
            );
            headers
        });
        if let Some(MsgId(previous)) = previous {
            headers.insert(names::EXPECTED_LAST_MSG_ID, previous);
        }
        headers
    }
}

/// The message id of a published event ([`Outgoing::msg_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgId(HeaderValue);

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat, TimeZone as _, Utc};

    use super::rfc3339_micros;

    fn chrono_way(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    #[test]
    fn ce_time_is_written_as_chrono_writes_it() {
        let mut instants: Vec<DateTime<Utc>> = vec![
            Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            // Outside four-digit years.
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0).unwrap(),
        ];
        // Sub-microsecond parts are cut, not rounded, as chrono does.
        let base = Utc.with_ymd_and_hms(2026, 11, 27, 13, 5, 9).unwrap();
        for nanos in [0, 1, 999, 1_000, 123_456_789, 999_999_999] {
            instants.push(base + chrono::Duration::nanoseconds(nanos));
        }
        // A spread of ordinary instants.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Up to the end of year 9999, with any nanoseconds.
            let seconds = i64::try_from((state >> 16) % 253_402_300_800).expect("in range");
            let nanos = u32::try_from(state % 1_000_000_000).expect("in range");
            instants.push(DateTime::from_timestamp(seconds, nanos).expect("in range"));
        }
        for at in instants {
            assert_eq!(rfc3339_micros(at), chrono_way(at), "{at:?}");
        }
    }

    #[test]
    fn an_event_recorded_with_a_traceparent_carries_it_as_the_traceparent_header() {
        use trellis_eventstore::{
            Checkpoint, Hash, Metadata, RecordedEvent, StreamId, TraceParent,
        };
        let traceparent =
            TraceParent::new("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let mut event = RecordedEvent {
            global_position: 1,
            checkpoint: Checkpoint::START,
            event_id: uuid::Uuid::now_v7(),
            stream_id: StreamId::new("rep-1").unwrap(),
            stream_version: 1,
            event_type: "FeedbackGiven".to_owned(),
            schema_version: 1,
            payload: (),
            metadata: Metadata {
                actor: "leader-1".to_owned(),
                command_id: uuid::Uuid::now_v7(),
                correlation_id: uuid::Uuid::now_v7(),
                causation_id: None,
                occurred_at: Utc::now(),
                recorded_at: Utc::now(),
                traceparent: Some(traceparent.clone()),
            },
            prev_hash: Hash::GENESIS,
            hash: Hash::GENESIS,
            seal: None,
            content_digest: Default::default(),
        };
        let headers = super::headers(&event, "trellis");
        assert_eq!(
            headers.get("traceparent").map(|v| v.as_str()),
            Some(traceparent.as_str())
        );
        event.metadata.traceparent = None;
        assert!(
            super::headers(&event, "trellis")
                .get("traceparent")
                .is_none()
        );
    }

    #[test]
    fn a_leap_second_is_written_as_chrono_writes_it() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 1_500_000)
            .unwrap()
            .and_utc();
        assert_eq!(rfc3339_micros(leap), chrono_way(leap));
        assert!(rfc3339_micros(leap).contains(":60."));
    }
}
