//! Domain → protobuf bytes → domain is the identity, for every event type.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use prost::Message as _;
use trellis_contracts::proto::envelope::Payload;
use trellis_contracts::{
    Envelope, decode_envelope, envelope, envelope_from_stored, from_wire, payload_type, to_wire,
};
use trellis_domain::Event;
use trellis_eventstore::{Checkpoint, Hash, Metadata, RecordedEvent, StreamId};
use uuid::Uuid;

use crate::samples::samples;

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<&str> = samples().iter().map(Event::event_type).collect();
    let missing: Vec<&str> = Event::types()
        .map(|(name, _)| name)
        .filter(|name| !sampled.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "add a sample to tests/samples.rs for each of {missing:?}"
    );
}

#[test]
fn every_event_round_trips_through_protobuf_bytes() {
    for event in samples() {
        let wire = Envelope {
            event_type: event.event_type().to_owned(),
            payload: Some(to_wire(&event)),
            ..Envelope::default()
        };
        let bytes = wire.encode_to_vec();
        let (decoded, back) = decode_envelope(&bytes)
            .unwrap_or_else(|e| panic!("{} did not decode: {e}", event.event_type()));
        assert_eq!(decoded, wire, "{}", event.event_type());
        assert_eq!(back, event, "{}", event.event_type());
    }
}

#[test]
fn every_payload_names_its_event_type() {
    for event in samples() {
        let payload = to_wire(&event);
        assert_eq!(payload_type(&payload), event.event_type());
        assert_eq!(from_wire(&payload).unwrap(), event);
    }
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

fn recorded(event: &Event, causation: Option<Uuid>) -> RecordedEvent {
    RecordedEvent {
        global_position: 4711,
        checkpoint: Checkpoint {
            tx: 9,
            position: 4711,
        },
        event_id: Uuid::from_u128(1),
        stream_id: StreamId::new(format!("rep-{}", Uuid::from_u128(20))).unwrap(),
        stream_version: 7,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        payload: event.to_payload(),
        metadata: Metadata {
            actor: "leader:ada".to_owned(),
            command_id: Uuid::from_u128(2),
            correlation_id: Uuid::from_u128(3),
            causation_id: causation,
            occurred_at: at("2026-01-15T00:00:00Z"),
            recorded_at: at("2026-01-15T09:30:12.123456Z"),
            traceparent: None,
        },
        prev_hash: Hash::GENESIS,
        hash: Hash([7; 32]),
        seal: None,
        content_digest: Default::default(),
    }
}

#[test]
fn envelope_carries_the_record_metadata() {
    let event = samples()
        .into_iter()
        .find(|e| e.event_type() == "FeedbackGiven")
        .unwrap();
    let record = recorded(&event, Some(Uuid::from_u128(4)));
    let wire = envelope(&record, &event);

    assert_eq!(wire.event_id, Uuid::from_u128(1).to_string());
    assert_eq!(wire.stream_id, record.stream_id.as_str());
    assert_eq!(wire.stream_version, 7);
    assert_eq!(wire.global_position, 4711);
    assert_eq!(wire.event_type, "FeedbackGiven");
    assert_eq!(wire.schema_version, 2);
    let occurred = wire.occurred_at.unwrap();
    assert_eq!((occurred.seconds, occurred.nanos), (1_768_435_200, 0));
    let recorded_at = wire.recorded_at.unwrap();
    assert_eq!(
        (recorded_at.seconds, recorded_at.nanos),
        (1_768_469_412, 123_456_000)
    );
    assert_eq!(wire.actor, "leader:ada");
    assert_eq!(wire.command_id, Uuid::from_u128(2).to_string());
    assert_eq!(wire.correlation_id, Uuid::from_u128(3).to_string());
    assert_eq!(wire.causation_id, Some(Uuid::from_u128(4).to_string()));

    let (decoded, back) = decode_envelope(&wire.encode_to_vec()).unwrap();
    assert_eq!(decoded, wire);
    assert_eq!(back, event);
    assert_eq!(
        trellis_contracts::from_timestamp("Envelope", "recorded_at", decoded.recorded_at).unwrap(),
        record.metadata.recorded_at
    );

    let without_cause = envelope(&recorded(&event, None), &event);
    assert_eq!(without_cause.causation_id, None);
}

#[test]
fn envelope_from_stored_upcasts_old_schema_versions() {
    let current = samples()
        .into_iter()
        .find(|e| e.event_type() == "FeedbackGiven")
        .unwrap();
    let mut record = recorded(&current, None);
    record.schema_version = 1;
    record.payload = serde_json::json!({
        "feedback_id": Uuid::from_u128(9).to_string(),
        "leader_id": Uuid::from_u128(2).to_string(),
        "competency_id": Uuid::from_u128(3).to_string(),
        "sentiment": "negative",
        "text": "Slow down on pricing.",
        "given_on": "2026-01-15",
    });
    let wire = envelope_from_stored(&record).unwrap();
    assert_eq!(wire.schema_version, 2);
    let Some(Payload::FeedbackGiven(feedback)) = &wire.payload else {
        panic!("expected FeedbackGiven, got {:?}", wire.payload);
    };
    assert_eq!(
        feedback.kind(),
        trellis_contracts::proto::FeedbackKind::Constructive
    );
    assert_eq!(
        feedback.visibility(),
        trellis_contracts::proto::Visibility::Shared
    );
    assert_eq!(feedback.note, "Slow down on pricing.");

    for event in samples() {
        let record = recorded(&event, None);
        assert_eq!(
            envelope_from_stored(&record).unwrap(),
            envelope(&record, &event)
        );
    }
}
